"""The shape of the code, read from its source with ``ast`` (nothing is imported or run).

- Modules under ``services/`` and ``shared/`` stay small and their functions short.
- No import cycle among those modules. An import under ``if TYPE_CHECKING:`` runs only for
  the type checker: a cycle through one is still a cycle, allowed only where
  :data:`TYPE_ONLY_IMPORTS` says why.
- ``shared/`` (infrastructure) never imports ``services/``.
- A service package (``services/poller``, ``services/notifier``...) imports another one only
  where :data:`CROSSINGS` says why. The modules directly in ``services/`` (the command line,
  the runner, ``vigil status``...) assemble the packages and may import any of them.
- Every module logs through :func:`shared.logging.get_logger`, which binds ``component``.

Files that others are reshaping while these rules land sit in :data:`PENDING`, which only
shrinks: an entry that keeps every rule must leave it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 50

PENDING: dict[str, str] = {}

CROSSINGS: dict[tuple[str, str], str] = {
    ("console", "archive"): "the console shows the archive, read through ArchiveReader",
    ("console", "notifier"): (
        "the console is the notifier's web UI, served by its process: it edits subscriptions "
        "with the notifier's own model, checks and store, and sends tests through its Protocol"
    ),
    ("console", "poller"): "the Sources view shows the sources file and the pollers' health",
}

TYPE_ONLY_IMPORTS: dict[tuple[str, str], str] = {
    ("shared.consumer", "shared.bus"): "a Consumer is made by, and works through, its StreamBus",
    ("services.notifier.channels", "services.notifier.subscriptions"): (
        "a channel sends to a Subscription, whose validation reads the channels' table"
    ),
    ("services.poller.adapters", "services.poller.sources"): (
        "an adapter polls a Source, whose type is checked against the adapters' registry"
    ),
}


@dataclass(frozen=True)
class Import:
    """One import of a project module by another."""

    importer: str
    imported: str
    type_only: bool
    line: int


@dataclass(frozen=True)
class Module:
    name: str
    path: str
    tree: ast.Module
    lines: int


@cache
def modules() -> dict[str, Module]:
    """Every module under services/ and shared/, by dotted name."""
    found = {}
    for path in sorted([*ROOT.glob("services/**/*.py"), *ROOT.glob("shared/**/*.py")]):
        relative = path.relative_to(ROOT)
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        text = path.read_text(encoding="utf-8")
        name = ".".join(parts)
        found[name] = Module(name, relative.as_posix(), ast.parse(text), len(text.splitlines()))
    return found


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _targets(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif node.module is not None:
        yield node.module
        yield from (f"{node.module}.{alias.name}" for alias in node.names)


@cache
def imports() -> list[Import]:
    """Every import, module-level or inside a function, of one project module by another."""
    known = modules()
    found = []
    for module in known.values():
        type_only = _type_checking_blocks(module.tree)
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = [t for t in _targets(node) if t in known and t != module.name]
            # ``from shared import metrics`` imports shared.metrics, not the package's body.
            deepest = {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
            found += [
                Import(module.name, target, node.lineno in type_only, node.lineno)
                for target in sorted(deepest)
            ]
    return found


def _cycle(edges: list[Import]) -> list[str] | None:
    """One import cycle among ``edges``, as the modules along it, if there is one."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def _package(name: str) -> str | None:
    """The service package of a module (``services.poller.fetch`` -> ``poller``)."""
    parts = name.split(".")
    return parts[1] if parts[0] == "services" and len(parts) > 2 else None


def _allowed_type_only(edge: Import) -> bool:
    return edge.type_only and any(
        (edge.importer == importer or edge.importer.startswith(importer + "."))
        and edge.imported == imported
        for importer, imported in TYPE_ONLY_IMPORTS
    )


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _length(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return (function.end_lineno or function.lineno) - function.lineno + 1


def _logs_directly(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.Call) and ast.unparse(node.func) == "structlog.get_logger"
        for node in ast.walk(tree)
    )


def _problems(module: Module) -> list[str]:
    """What in one module breaks the per-file rules."""
    problems = []
    if module.lines > MAX_MODULE_LINES:
        problems.append(f"{module.path}: {module.lines} lines (at most {MAX_MODULE_LINES})")
    problems += [
        f"{module.path}:{function.lineno}: {function.name}() is {_length(function)} lines "
        f"(at most {MAX_FUNCTION_LINES})"
        for function in _functions(module.tree)
        if _length(function) > MAX_FUNCTION_LINES
    ]
    if _logs_directly(module.tree) and module.path != "shared/logging.py":
        problems.append(f"{module.path}: calls structlog.get_logger, not shared.logging's")
    return problems


def test_modules_are_small_functions_short_and_logs_named() -> None:
    problems = [
        problem
        for module in modules().values()
        if module.path not in PENDING
        for problem in _problems(module)
    ]
    assert not problems, "\n".join(problems)


def test_pending_files_still_need_their_place() -> None:
    paths = {module.path: module for module in modules().values()}
    done = [path for path in PENDING if path not in paths or not _problems(paths[path])]
    assert not done, f"these keep every rule now: take them out of PENDING: {done}"


def test_no_import_cycles() -> None:
    running = [edge for edge in imports() if not edge.type_only]
    assert _cycle(running) is None, " -> ".join(_cycle(running) or [])
    checked = [edge for edge in imports() if not _allowed_type_only(edge)]
    assert _cycle(checked) is None, "(types) " + " -> ".join(_cycle(checked) or [])


def test_type_only_allowances_are_still_needed() -> None:
    used = {
        (importer, imported)
        for edge in imports()
        if _allowed_type_only(edge)
        for importer, imported in TYPE_ONLY_IMPORTS
        if edge.importer.startswith(importer) and edge.imported == imported
    }
    assert set(TYPE_ONLY_IMPORTS) == used, set(TYPE_ONLY_IMPORTS) - used


def test_shared_never_imports_services() -> None:
    wrong = [
        f"{edge.importer}:{edge.line} imports {edge.imported}"
        for edge in imports()
        if edge.importer.startswith("shared") and edge.imported.startswith("services")
    ]
    assert not wrong, "\n".join(wrong)


def test_service_packages_import_each_other_only_where_allowed() -> None:
    crossings: dict[tuple[str, str], list[str]] = {}
    for edge in imports():
        importer, imported = _package(edge.importer), _package(edge.imported)
        if importer and imported and importer != imported:
            where = f"{edge.importer}:{edge.line} imports {edge.imported}"
            crossings.setdefault((importer, imported), []).append(where)
    unexplained = [w for pair, where in crossings.items() if pair not in CROSSINGS for w in where]
    assert not unexplained, "\n".join(unexplained)
    stale = set(CROSSINGS) - set(crossings)
    assert not stale, f"no longer imported: take them out of CROSSINGS: {stale}"
