"""The ``vigil`` entry point: service commands hold stop signals during their slow start."""

from __future__ import annotations

import sys

from shared import signals

SERVICE_COMMANDS = frozenset({"up", "poller", "classifier", "notifier"})


def main() -> None:
    """Run the ``vigil`` command line."""
    if SERVICE_COMMANDS.intersection(sys.argv[1:2]):
        signals.hold()
    from services.cli import main as cli  # noqa: PLC0415 - imported after the signals are held

    cli()
