"""Vigil as its users run it: one-shot ``vigil`` commands and fleets of service processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.embedded_redis import free_port

VIGIL = [sys.executable, "-m", "services"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with no VIGIL_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update({"VIGIL_DATA_DIR": str(tmp_path / "data"), "VIGIL_HTTP__PORT": str(free_port())})
    env.update(extra)
    return env


def run_vigil(
    args: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """One ``vigil`` command to its end, its output captured."""
    return subprocess.run(
        [*VIGIL, *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Fleet:
    """Service replicas started with ``python -m services NAME``, each with its own consumer
    name, HTTP port and log file."""

    def __init__(self, base_env: dict[str, str], log_dir: Path) -> None:
        self.base_env = base_env
        self.log_dir = log_dir
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, replica: str) -> None:
        service = replica.rstrip("0123456789-")
        env = {**self.base_env, "VIGIL_CONSUMER_NAME": replica,
               "VIGIL_HTTP__PORT": str(free_port())}  # fmt: skip
        with (self.log_dir / f"{replica}.log").open("ab") as log:
            self.processes[replica] = await asyncio.create_subprocess_exec(
                *VIGIL, service, env=env,
                stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip

    async def kill(self, replica: str) -> None:
        process = self.processes.pop(replica)
        process.kill()
        await process.wait()

    async def terminate_all(self) -> dict[str, int]:
        codes = {}
        for process in list(self.processes.values()):
            process.send_signal(signal.SIGTERM)
        for replica, process in list(self.processes.items()):
            codes[replica] = await asyncio.wait_for(process.wait(), timeout=30)
        self.processes.clear()
        return codes
