"""Smoke test of a running compose stack: is it healthy, and does an alert get through?

    docker compose --profile dev --profile observability up -d --build
    python3 deploy/smoke.py            # waits up to --timeout seconds for each check

Checks, each waiting on its condition until the deadline:
  1. every container of the project runs and, if it has a health check, is healthy;
  2. the notifier's /readyz on 127.0.0.1:8080 answers ready;
  3. `vigil status --json` in the notifier: every stream has its consumer group, nothing is
     dead-lettered, and (with --expect-alerts, the dev profile's demo feed) every subscriber
     has had a delivery;
  4. if Prometheus answers on 127.0.0.1:9090: every Vigil scrape target is up and every query
     of the Grafana dashboard evaluates without error.
Standard library only; `docker compose` honours COMPOSE_FILE and COMPOSE_PROFILES as usual.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy/grafana/dashboards/vigil.json"
NOTIFIER = "http://127.0.0.1:8080"
PROMETHEUS = "http://127.0.0.1:9090"


class CheckFailedError(Exception):
    """A check that did not pass before its deadline."""


def wait(what: str, check: Callable[[], str | None], timeout: float) -> None:
    """Call ``check`` until it returns None (passed) or ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    problem: str | None = "not checked"
    while time.monotonic() < deadline:
        try:
            problem = check()
        except (OSError, ValueError, subprocess.SubprocessError) as error:
            problem = str(error)
        if problem is None:
            print(f"ok    {what}")
            return
        time.sleep(2)
    raise CheckFailedError(f"{what}: {problem}")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def compose(*args: str) -> str:
    return subprocess.run(
        ["docker", "compose", *args], cwd=ROOT, check=True, capture_output=True, text=True,
        timeout=60,
    ).stdout  # fmt: skip


def containers_healthy() -> str | None:
    rows = [json.loads(line) for line in compose("ps", "-a", "--format", "json").splitlines()]
    if not rows:
        return "no containers running (docker compose up -d first)"
    # A container without a health check (Grafana) only has to be running.
    unhealthy = [
        f"{row['Name']} ({row['Status']})"
        for row in rows
        if row.get("Health") not in ("healthy", "") or row.get("State") != "running"
    ]
    return f"not healthy: {', '.join(unhealthy)}" if unhealthy else None


def notifier_ready() -> str | None:
    body = get_json(f"{NOTIFIER}/readyz")
    return None if body.get("ready") else f"not ready: {body}"


def pipeline_status(expect_alerts: bool) -> Callable[[], str | None]:
    def check() -> str | None:
        status = json.loads(compose("exec", "-T", "notifier", "vigil", "status", "--json"))
        missing = [s["stream"] for s in status["streams"]
                   if s["stream"] != "vigil:dead" and not s["groups"]]  # fmt: skip
        if missing:
            return f"streams without a consumer group: {missing}"
        dead = next((s["length"] for s in status["streams"] if s["stream"] == "vigil:dead"), 0)
        if dead:
            return f"{dead} dead letter(s): see `vigil dlq list`"
        waiting = [s["id"] for s in status["subscriptions"] if not s["state"]["delivered"]]
        if expect_alerts and waiting:
            return f"no delivery yet to: {', '.join(waiting)}"
        return None

    return check


def prometheus_targets() -> str | None:
    targets = get_json(f"{PROMETHEUS}/api/v1/targets")["data"]["activeTargets"]
    vigil = [t for t in targets if t["labels"].get("job", "").startswith("vigil")]
    down = [f"{t['labels']['instance']}: {t['lastError']}" for t in vigil if t["health"] != "up"]
    if not vigil:
        return "no vigil targets"
    return f"targets down: {down}" if down else None


def dashboard_queries() -> str | None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    failed = []
    for expr in exprs:
        query = urllib.parse.urlencode({"query": expr.replace("$__rate_interval", "5m")})
        body = get_json(f"{PROMETHEUS}/api/v1/query?{query}")
        if body.get("status") != "success":
            failed.append(expr)
    return f"queries failing: {failed}" if failed else None


def prometheus_up() -> bool:
    try:
        with urllib.request.urlopen(f"{PROMETHEUS}/-/ready", timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=120, help="seconds per check")
    parser.add_argument(
        "--expect-alerts",
        action="store_true",
        help="require a delivery to every subscriber (the dev profile's demo feed)",
    )
    args = parser.parse_args()
    try:
        wait("containers healthy", containers_healthy, args.timeout)
        wait("notifier /readyz", notifier_ready, args.timeout)
        wait("streams, groups, dead letters, deliveries", pipeline_status(args.expect_alerts),
             args.timeout)  # fmt: skip
        if prometheus_up():
            wait("prometheus scrapes every vigil target", prometheus_targets, args.timeout)
            wait("grafana dashboard queries evaluate", dashboard_queries, args.timeout)
        else:
            print("skip  prometheus checks (nothing on 127.0.0.1:9090: observability profile off)")
    except CheckFailedError as failure:
        print(f"FAIL  {failure}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
