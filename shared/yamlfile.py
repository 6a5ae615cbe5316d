"""One way to read a YAML document into a pydantic model, with errors that say where.

Every YAML file Vigil reads (sources, subscriptions, the lexicon, ``vigil subscriptions
apply``) goes through here: parse, validate, and on any problem one :class:`YamlError` whose
message is ``FILE:LINE: field.path: problem``. The document is composed into a node tree
before it is constructed, so a pydantic error location (``sources.2.url``) is walked down the
nodes to the line of the value it names, or of the nearest enclosing one when the value is
missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shared.settings import ConfigError

M = TypeVar("M", bound=BaseModel)
Location = Sequence[str | int]
# libyaml when built in (ten times faster on the lexicon); the same nodes and marks either way.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_WHOLE = object()  # validate() of the document itself


class YamlError(ConfigError):
    """A YAML document that cannot be used: ``FILE:LINE: field.path: problem``, one line."""


def field_path(location: Location) -> str:
    """``("sources", 2, "url")`` as it reads in a document: ``sources[2].url``."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


@dataclass(frozen=True)
class YamlDocument:
    """A parsed document: its data, and the node tree that knows each value's line."""

    name: str
    data: Any
    root: yaml.Node | None

    def line(self, location: Location) -> int:
        """The line (from 1) of the value at ``location``, or of the nearest one above it."""
        node = self.root
        if node is None:
            return 1
        line = node.start_mark.line
        for part in location:
            if isinstance(node, yaml.MappingNode):
                entry = next((e for e in node.value if e[0].value == str(part)), None)
                if entry is None:
                    break
                line, node = entry[0].start_mark.line, entry[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line
            else:
                break
        return line + 1

    def error(self, location: Location, problem: str) -> YamlError:
        """The error for ``problem`` at ``location``, naming file, line and field."""
        path = field_path(location)
        where = f"{self.name}:{self.line(location)}:"
        return YamlError(f"{where} {path}: {problem}" if path else f"{where} {problem}")

    def validate(
        self,
        model: type[M],
        data: Any = _WHOLE,
        *,
        at: Location = (),
        context: Mapping[str, Any] | None = None,
    ) -> M:
        """``data`` (the whole document by default; the part found ``at`` a location) as a
        ``model``; raise :class:`YamlError` naming every problem."""
        try:
            return model.model_validate(self.data if data is _WHOLE else data, context=context)
        except ValidationError as invalid:
            problems = [
                str(self.error([*at, *item["loc"]], item["msg"].removeprefix("Value error, ")))
                for item in invalid.errors()
            ]
            raise YamlError("; ".join(problems)) from invalid


def parse_yaml(text: str, name: str) -> YamlDocument:
    """Parse one YAML document (``name`` is how errors call it: a path, ``<stdin>``)."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        # The end of the stream is marked past the last line: name the last line instead.
        line = f"{min(mark.line + 1, len(text.splitlines()) or 1)}:" if mark else ""
        raise YamlError(f"{name}:{line} not valid YAML: {error.problem}") from error
    except yaml.YAMLError as error:
        raise YamlError(f"{name}: not valid YAML: {error}".replace("\n", " ")) from error
    finally:
        loader.dispose()
    return YamlDocument(name, data, root)


def read_yaml(path: Path) -> YamlDocument:
    """Read and parse a YAML file; an unreadable one raises :class:`YamlError` too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise YamlError(f"{path}: cannot read: {reason}") from error
    return parse_yaml(text, str(path))


def load_yaml(path: Path, model: type[M], *, context: Mapping[str, Any] | None = None) -> M:
    """Read a YAML file as one ``model``; raise :class:`YamlError` naming file, line, field."""
    return read_yaml(path).validate(model, context=context)
