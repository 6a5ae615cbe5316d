"""structlog set-up: JSON lines in production, a readable console renderer on a terminal.

Logs go to stderr, so that stdout carries only program output (alerts, JSON Lines).

Event names are stable identifiers (``poll.fetched``, ``bus.dead_lettered``...): dashboards
and tests match on them. Values of keys that look secret are masked before rendering.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping, Sequence
from typing import Any, TextIO

import structlog

from shared.settings import LogSettings

_SECRET_MARKERS = ("secret", "password", "token", "authorization", "api_key")


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of any key that names a secret, whatever called the logger."""
    for key in event:
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            event[key] = "***"
    return event


def configure_logging(
    settings: LogSettings,
    stream: TextIO | None = None,
    processors: Sequence[structlog.types.Processor] = (),
) -> None:
    """Configure structlog and route the standard library's logging through it; ``processors``
    run before rendering (the terminal view's summary)."""
    out = stream or sys.stderr
    use_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    shared_processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
        *processors,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.format_exc_info if use_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.WARNING))


def get_logger(component: str) -> structlog.stdlib.BoundLogger:
    """The logger of every module: each line it writes carries ``component``."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(component=component)
    return logger
