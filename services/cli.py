"""The ``vigil`` command line: run services, classify offline, and operate the system.

Every failure the user can fix is reported as one line naming the problem, with exit code 2;
no traceback reaches the terminal.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from services.classifier.cli import classify, evaluate
from services.dlq import dlq
from services.notifier.cli import subscriptions
from services.poller.cli import sources
from services.settings import Settings, load_settings
from services.status import status
from services.terminal import TerminalView
from shared import signals
from shared.embedded_redis import EmbeddedRedis, RedisServerError
from shared.logging import configure_logging
from shared.resilience import TRANSIENT_ERRORS
from shared.settings import ConfigError, LogSettings

EXIT_USAGE = 2


class VigilGroup(click.Group):
    """A click group that turns expected errors into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, RedisServerError) as error:
            _fail(str(error))
        except OSError as error:  # e.g. the HTTP port is taken
            _fail(f"{error.strerror or error}" + (f": {error.filename}" if error.filename else ""))
        except TRANSIENT_ERRORS as error:  # unreachable, or failing over right now
            _fail(f"cannot reach Redis: {error}")
        except KeyboardInterrupt:
            sys.exit(130)


def _fail(message: str) -> None:
    click.echo(f"vigil: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(cls=VigilGroup)
@click.version_option(package_name="vigil")
def main() -> None:
    """Vigil: alerts within seconds when news reports Turkish military involvement abroad."""
    # Operator commands print their results on stdout; only warnings go to stderr. The
    # services reconfigure logging from settings when they start.
    configure_logging(LogSettings(format="console", level="warning"))


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.log)
    return settings


def _run(names: Sequence[str], settings: Settings, terminal: TerminalView | None = None) -> None:
    from services.runner import run_services  # noqa: PLC0415 - imports every service

    asyncio.run(run_services(settings, names, terminal=terminal))  # type: ignore[arg-type]


@main.command()
def up() -> None:
    """Run the whole system in one process.

    On a terminal, alerts print as blocks above one live status line, and a source's
    repeated failures are summarised; elsewhere the logs are complete JSON lines.

    Without VIGIL_REDIS_URL a private redis-server is started (data under VIGIL_DATA_DIR)
    and stopped on exit. Without VIGIL_SOURCES_FILE / VIGIL_SUBSCRIPTIONS_FILE the bundled
    defaults are used: real news feeds, an offline sample feed and a console subscriber.
    """
    settings = _settings()
    terminal = TerminalView.open(settings.log)
    names = ("poller", "classifier", "notifier")
    if settings.redis_url is not None:
        _run(names, settings, terminal)
        return
    with EmbeddedRedis(settings.data_dir / "redis") as server:
        signals.on_forced_exit(server.stop)  # a stuck process never leaves Redis behind
        click.echo(f"vigil: embedded Redis at {server.url} (data in {server.data_dir})", err=True)
        _run(names, settings.model_copy(update={"redis_url": server.url}), terminal)


def _service_command(name: str) -> Callable[[], None]:
    def command() -> None:
        _run((name,), _settings())

    command.__doc__ = f"Run the {name} service alone (needs VIGIL_REDIS_URL)."
    return command


for _name in ("poller", "classifier", "notifier"):
    main.command(name=_name)(_service_command(_name))

main.add_command(classify)
main.add_command(evaluate)
main.add_command(dlq)
main.add_command(status)
main.add_command(sources)
main.add_command(subscriptions)
