"""A real ``vigil poller`` process against hostile feeds: bounded memory, a loop that answers.

The team's corpus of real feeds (``../shared/testdata/feeds``, read in place) is served next to
entity bombs, a 60 MB body, a gzip bomb, a drip-fed body, a redirect loop and giant valid
feeds, many sources at once, with the poller's default settings. Throughout, ``/healthz`` must
answer within a second; the process's peak resident memory must stay under 400 MiB.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from redis.asyncio import Redis

from services.settings import Settings
from shared.embedded_redis import free_port
from tests.helpers import wait_for
from tests.poller_support import FEEDS, published, state

PEAK_RSS_LIMIT_MIB = 400
HEALTH_LIMIT_SECONDS = 1.0
COPIES = 4  # sources per hostile document, polled at once
BIG_COPIES = 2  # giant valid feeds: each is seconds of parsing and thousands of articles
BIG_ITEMS = 2_000  # a valid feed just under the 10 MB default body limit

pytestmark = pytest.mark.slow

# Asks /healthz every 0.1 s (a second's timeout) until stdin closes; prints
# [answers, failures, slowest seconds], ignoring failures before the first answer (start-up).
PROBER = """
import json, sys, threading, time, urllib.request
stopped = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stopped.set()), daemon=True).start()
answers, failures, slowest = 0, 0, 0.0
while not stopped.wait(0.1):
    started = time.monotonic()
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2.0) as response:
            ok = response.status == 200
    except OSError as error:
        ok, why = False, repr(error)
    if ok:
        answers += 1
        slowest = max(slowest, time.monotonic() - started)
    elif answers:
        failures += 1
        print(time.time(), why, file=sys.stderr)
print(json.dumps([answers, failures, slowest]))
"""


def _bomb(levels: int) -> bytes:
    """A billion-laughs feed: each entity holds ten of the previous one."""
    entities = "".join(f'<!ENTITY e{n} "{f"&e{n - 1};" * 10}">' for n in range(1, levels + 1))
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY e0 "{"x" * 64}">{entities}]>'
        f'<rss version="2.0"><channel><title>bomb</title><item><title>&e{levels};</title>'
        f"<link>http://bomb.test/1</link></item></channel></rss>"
    ).encode()


def _quadratic() -> bytes:
    """One 100 KB entity referenced 10,000 times (a 1 GB expansion)."""
    refs = "&big;" * 10_000
    return (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY big "{"y" * 100_000}">]>'
        f'<rss version="2.0"><channel><title>q</title><item><title>{refs}</title>'
        f"<link>http://bomb.test/2</link></item></channel></rss>"
    ).encode()


def _big_feed(n: int) -> bytes:
    """A valid RSS feed of ``BIG_ITEMS`` items with long HTML summaries (about 9.5 MB)."""
    item = (
        "<item><title>Story {k} of feed {n}: the council votes on the budget</title>"
        "<link>http://big{n}.test/{k}</link><pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate>"
        "<description>&lt;p&gt;"
        + "The city council debated the transport budget. " * 90
        + "&lt;/p&gt;</description></item>"
    )
    items = "".join(item.format(k=k, n=n) for k in range(BIG_ITEMS))
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>big</title>'
    return f"{head}{items}</channel></rss>".encode()


class Hostile:
    """The hostile server's documents, built once."""

    def __init__(self) -> None:
        self.bomb = _bomb(9)
        self.quadratic = _quadratic()
        self.big = {n: _big_feed(n) for n in range(BIG_COPIES)}
        zeros = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
        chunk = b"\0" * (1 << 20)
        self.gzip_bomb = b"".join(zeros.compress(chunk) for _ in range(256)) + zeros.flush()

    async def feed(self, request: web.Request) -> web.Response:
        path = FEEDS / request.match_info["name"]
        kind = "application/json" if path.suffix == ".json" else "application/xml"
        return web.Response(body=path.read_bytes(), content_type=kind)

    async def document(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "bomb":
            return web.Response(body=self.bomb, content_type="application/rss+xml")
        if name == "quadratic":
            return web.Response(body=self.quadratic, content_type="application/rss+xml")
        if name.startswith("big"):
            return web.Response(body=self.big[int(name[3:])], content_type="application/rss+xml")
        if name == "loop":
            raise web.HTTPFound(f"/d/loop?{time.monotonic_ns()}")
        if name == "gzip":
            return web.Response(body=self.gzip_bomb, content_type="application/rss+xml",
                                headers={"Content-Encoding": "gzip"})  # fmt: skip
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.enable_chunked_encoding()  # no Content-Length: the cap must cut the stream
        await response.prepare(request)
        if name == "huge":  # 60 MB
            await response.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
            for _ in range(60):
                await response.write(b" " * (1 << 20))
        else:  # drip: one byte a second, never finished
            for _ in range(120):
                await response.write(b" ")
                await asyncio.sleep(1)  # a slow server, not synchronisation
        return response


@pytest.fixture(scope="module")
def hostile() -> Hostile:
    return Hostile()


def _paths() -> dict[str, str]:
    """Source id -> path: every real feed once, every hostile document ``COPIES`` times."""
    assert FEEDS.is_dir(), f"the team's feed corpus is missing: {FEEDS}"
    paths = {
        f"real-{n}": f"/feeds/{path.name}"
        for n, path in enumerate(sorted(FEEDS.glob("*.xml")) + sorted(FEEDS.glob("*.json")))
    }
    for name in ("bomb", "quadratic", "huge", "gzip", "drip", "loop"):
        paths.update({f"{name}-{c}": f"/d/{name}?copy={c}" for c in range(COPIES)})
    paths.update({f"big-{c}": f"/d/big{c}" for c in range(BIG_COPIES)})
    return paths


@pytest.fixture
async def sources(hostile: Hostile) -> AsyncIterator[dict[str, str]]:
    """Source id -> URL, each source on its own loopback address (its own host), as hostile
    sources are on the internet: the per-host limit does not queue one behind another."""
    app = web.Application()
    app.router.add_get("/feeds/{name}", hostile.feed)
    app.router.add_get("/d/{name}", hostile.document)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    urls = {}
    for n, (source_id, path) in enumerate(_paths().items(), start=2):
        await web.TCPSite(runner, f"127.0.0.{n}", port).start()
        urls[source_id] = f"http://127.0.0.{n}:{port}{path}"
    try:
        yield urls
    finally:
        await runner.cleanup()


def _memory(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rows = (line.split() for line in status.splitlines())
    return {
        row[0].rstrip(":"): int(row[1]) for row in rows if row and row[0] in ("VmHWM:", "VmRSS:")
    }


async def test_hostile_feeds_bounded_memory_and_a_loop_that_answers(
    settings: Settings, redis: Redis, sources: dict[str, str], tmp_path: Path
) -> None:
    urls = sources
    lines = [f"  - {{id: {sid}, url: '{url}', interval: 3600}}" for sid, url in urls.items()]
    (tmp_path / "sources.yaml").write_text("sources:\n" + "\n".join(lines) + "\n")
    port = free_port()
    env = {
        **os.environ,
        "VIGIL_REDIS_URL": settings.redis_url or "",
        "VIGIL_SOURCES_FILE": str(tmp_path / "sources.yaml"),
        "VIGIL_HTTP__PORT": str(port),
        "VIGIL_LOG__LEVEL": "info",
        "VIGIL_LOG__FORMAT": "json",
    }
    log = (tmp_path / "poller.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "poller", env=env, stdout=log, stderr=log,
    )  # fmt: skip
    # /healthz is asked every 0.1 s by a process of its own, so that this busy test process
    # (it serves every hostile document) adds nothing to the latency measured.
    prober = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PROBER, f"http://127.0.0.1:{port}/healthz",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:

        async def every_source_polled() -> bool:
            outcomes = [(await state(redis, sid)).last_outcome for sid in urls]
            return all(outcomes)

        try:
            await wait_for(every_source_polled, timeout=90, interval=0.2,
                           message="every source to be polled once")  # fmt: skip
        finally:
            memory = _memory(process.pid)
            waiting = [sid for sid in urls if not (await state(redis, sid)).last_outcome]
            print(f"{memory}, never polled: {waiting}; log: {tmp_path / 'poller.log'}")
    finally:
        report, _ = await prober.communicate(b"stop\n")  # closing stdin ends the prober
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)
        log.close()
    answered, failed, slowest = json.loads(report)
    outcomes = {sid: (await state(redis, sid)).last_outcome for sid in urls}
    for c in range(COPIES):
        assert outcomes[f"huge-{c}"] == "too_large"
        assert outcomes[f"gzip-{c}"] == "too_large"
        assert outcomes[f"drip-{c}"] == "timeout"
        assert outcomes[f"loop-{c}"] == "http_error"
        assert outcomes[f"bomb-{c}"] in ("ok", "parse_error")
        assert outcomes[f"quadratic-{c}"] in ("ok", "parse_error")
    assert all(outcomes[f"big-{c}"] == "ok" for c in range(BIG_COPIES))
    real = [o for sid, o in outcomes.items() if sid.startswith("real-")]
    assert real.count("ok") >= 50, outcomes  # the corpus's 50 well-formed feeds at least
    articles = await published(redis)
    assert sum(a.source.startswith("big-") for a in articles) == BIG_COPIES * BIG_ITEMS
    # No entity expansion reached an article (the entities hold runs of x and y).
    assert not [a.id for a in articles if "x" * 640 in a.title + a.text]
    assert not [a.id for a in articles if "y" * 100_000 in a.title + a.text]
    assert answered > 50
    assert failed == 0
    assert slowest < HEALTH_LIMIT_SECONDS, f"/healthz took {slowest:.2f} s"
    peak = memory["VmHWM"] / 1024
    assert peak < PEAK_RSS_LIMIT_MIB, f"peak RSS {peak:.0f} MiB"
    print(f"peak RSS {peak:.0f} MiB; slowest /healthz {slowest * 1000:.0f} ms; "
          f"{answered} answers; {len(articles)} articles")  # fmt: skip
