"""The whole pipeline, fetch to webhook, beside the raw speed of a Redis stream on the same run.

    .venv/bin/python bench/pipeline_bench.py [--articles 3000] [--feeds 30] [--rate 100] \
        [--seconds 30] [--ceiling 20000]

What runs, all on this machine and each in its own process, as compose runs them:
- a private redis-server (EmbeddedRedis);
- a feed server (aiohttp, a child process) with ``--feeds`` RSS feeds on one host; article k
  goes to feed k mod M; the articles are generated: 85 % general news that never mentions
  Turkey in eight languages, 10 % about Turkey but not military and 5 % relevant (both from
  the classifier's labeled corpus, English, Turkish, Russian and French);
- ``vigil classifier``, ``vigil notifier`` (one webhook subscriber, no rate limit) and
  ``vigil poller`` (each feed polled every second), started as separate processes;
- the webhook receiver, in this process.

1. ceiling: one Python process pushes ``--ceiling`` messages of an article's size through a
   stream and a consumer group of the same Redis (XADD one by one; XREADGROUP and XACK in
   batches of 32): messages per second; measured before the services start and again at the
   end, with the services idle.
2. burst: ``--articles`` articles are in the feeds when the poller starts: articles per
   second from the first fetch until the classifier has acknowledged the last one, and the
   ratio to the higher of the two ceilings (other load on the machine moves both).
3. steady: new articles appear at ``--rate`` per second for ``--seconds``: latency from each
   article's fetch to the articles stream, to the alerts stream and to the receiver (p50, p99).
Then the peak resident memory (VmHWM) and CPU seconds of each service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from shared.connection import connect
from shared.embedded_redis import EmbeddedRedis, free_port
from shared.metrics import STAGES
from shared.models import Alert, Article
from shared.streams import ALERTS, ARTICLES, CLASSIFIER_GROUP, decode, encode

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "services" / "classifier" / "corpus"
VIGIL = Path(sys.executable).parent / "vigil"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FEED_WINDOW = 100  # items a feed shows, newest first
SERVICES = ("classifier", "notifier", "poller")

# General news that never mentions Turkey, by language.
GENERAL = {
    "en": [
        "The central bank of Brazil left its benchmark rate unchanged on Wednesday.",
        "Heavy rain caused flooding across parts of southern Spain, officials said.",
        "Shares in European carmakers rose after better-than-expected quarterly sales.",
        "The city council approved a new budget for public transport and schools.",
        "Scientists reported progress on a vaccine against a common tropical disease.",
        "Farmers in Kenya warned that a long drought could hurt the coming harvest.",
    ],
    "fr": [
        "Le gouvernement a présenté mercredi un projet de loi sur la réforme des retraites.",
        "De fortes pluies ont provoqué des inondations dans le sud-ouest du pays.",
        "La banque centrale européenne a maintenu ses taux directeurs inchangés.",
        "Le festival de cinéma a dévoilé la composition de son jury cette semaine.",
        "Les agriculteurs manifestent contre la baisse des prix du lait.",
    ],
    "de": [
        "Die Bundesregierung hat am Mittwoch einen neuen Haushaltsentwurf vorgelegt.",
        "Starker Regen hat in Teilen Bayerns zu Überschwemmungen geführt.",
        "Die Aktien der Autobauer stiegen nach besseren Quartalszahlen deutlich.",
        "Forscher berichten über Fortschritte bei einem Impfstoff gegen Malaria.",
        "Der Stadtrat beschloss den Ausbau des öffentlichen Nahverkehrs.",
    ],
    "es": [
        "El banco central mantuvo sin cambios los tipos de interés este miércoles.",
        "Las fuertes lluvias provocaron inundaciones en varias provincias del sur.",
        "El ayuntamiento aprobó un nuevo presupuesto para el transporte público.",
        "Los agricultores advierten de que la sequía afectará a la próxima cosecha.",
        "La selección nacional ganó su partido de clasificación por dos goles.",
    ],
    "ru": [
        "Центральный банк сохранил ключевую ставку без изменений в среду.",
        "Сильные дожди вызвали наводнения в нескольких южных регионах страны.",
        "Городской совет утвердил новый бюджет на общественный транспорт.",
        "Учёные сообщили о прогрессе в разработке вакцины от малярии.",
        "Акции автопроизводителей выросли после публикации квартальной отчётности.",
    ],
    "ar": [
        "أبقى البنك المركزي على أسعار الفائدة دون تغيير يوم الأربعاء.",
        "تسببت الأمطار الغزيرة في فيضانات في عدة مناطق جنوبية من البلاد.",
        "وافق المجلس البلدي على ميزانية جديدة للنقل العام والمدارس.",
        "أعلن العلماء عن تقدم في تطوير لقاح ضد مرض الملاريا.",
        "حذر المزارعون من أن الجفاف الطويل قد يضر بالمحصول القادم.",
    ],
    "pt": [
        "O banco central manteve a taxa básica de juros inalterada nesta quarta-feira.",
        "Chuvas fortes provocaram enchentes em várias cidades do litoral.",
        "A câmara municipal aprovou um novo orçamento para o transporte público.",
        "Os agricultores alertam que a seca pode prejudicar a próxima colheita.",
        "Cientistas relataram avanços numa vacina contra a malária.",
    ],
    "el": [
        "Η κεντρική τράπεζα διατήρησε αμετάβλητα τα επιτόκια την Τετάρτη.",
        "Ισχυρές βροχοπτώσεις προκάλεσαν πλημμύρες σε περιοχές της νότιας χώρας.",
        "Το δημοτικό συμβούλιο ενέκρινε νέο προϋπολογισμό για τις συγκοινωνίες.",
        "Οι αγρότες προειδοποιούν ότι η ξηρασία θα βλάψει τη σοδειά.",
        "Επιστήμονες ανακοίνωσαν πρόοδο σε ένα εμβόλιο κατά της ελονοσίας.",
    ],
}


@dataclass(frozen=True)
class Generated:
    kind: str  # general, turkey-other, relevant
    title: str
    text: str


class Generator:
    """Article k, the same every time it is asked for (the feeds are rebuilt on each poll)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        relevant: list[tuple[str, str]] = []
        other: list[tuple[str, str]] = []
        for path in sorted(CORPUS.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                if "flagged" in item:
                    (relevant if item["flagged"] else other).append((item["title"], item["text"]))
        if not relevant or not other:
            raise SystemExit(f"no labeled items under {CORPUS}")
        random.Random(seed).shuffle(relevant)
        random.Random(seed + 1).shuffle(other)
        self.relevant, self.other = relevant, other

    def article(self, k: int) -> Generated:
        rng = random.Random(self.seed * 1_000_003 + k)
        draw = rng.random()
        if draw < 0.05:  # each corpus item once before any repeats
            title, text = self.relevant[(k // 20) % len(self.relevant)]
            return Generated("relevant", title, text)
        if draw < 0.15:
            title, text = self.other[rng.randrange(len(self.other))]
            return Generated("turkey-other", title, text)
        language = rng.choice(sorted(GENERAL))
        sentences = rng.sample(GENERAL[language], k=min(4, len(GENERAL[language])))
        # A number per article keeps general news from being one story.
        return Generated("general", f"{sentences[0][:60]} ({k})", f"{k}. " + " ".join(sentences))


# Feed server (child process) --------------------------------------------------------------


def serve_feeds(port: int, feeds: int, burst: int, rate: float, seconds: float, seed: int) -> None:
    """RSS feeds /f/<m>.xml; POST /steady starts adding ``rate`` articles per second."""
    generator = Generator(seed)
    state = {"steady_at": math.inf}
    cache: dict[int, tuple[int, bytes]] = {}

    def available() -> int:
        extra = max(0.0, time.time() - state["steady_at"]) * rate
        return burst + int(min(extra, rate * seconds))

    def render(m: int, count: int) -> bytes:
        last = count - 1 - (count - 1 - m) % feeds if count > m else -1
        items = []
        for k in range(last, max(-1, last - FEED_WINDOW * feeds), -feeds):
            article = generator.article(k)
            items.append(
                f"<item><title>{escape(article.title)}</title>"
                f"<link>http://news.test/{k}</link><guid>http://news.test/{k}</guid>"
                f"<pubDate>Tue, 24 Nov 2026 08:00:00 GMT</pubDate>"
                f"<description>{escape(article.text)}</description></item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Feed {m}</title><link>http://news.test/</link><description>d</description>"
            + "".join(items)
            + "</channel></rss>"
        ).encode()

    async def feed(request: web.Request) -> web.Response:
        m = int(request.match_info["m"])
        count = available()
        etag = f'"{count}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        if cache.get(m, (-1, b""))[0] != count:
            cache[m] = (count, render(m, count))
        return web.Response(body=cache[m][1], content_type="application/rss+xml",
                            headers={"ETag": etag})  # fmt: skip

    async def steady(_: web.Request) -> web.Response:
        state["steady_at"] = time.time()
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/f/{m}.xml", feed)
        app.router.add_post("/steady", steady)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await asyncio.Event().wait()

    asyncio.run(main())


# Measurements -------------------------------------------------------------------------------


async def ceiling(redis: Redis, count: int) -> float:
    """Messages per second one process pushes through a stream and a consumer group."""
    stream, group = "bench:ceiling", "bench"
    await redis.delete(stream)
    await redis.xgroup_create(stream, group, id="0", mkstream=True)
    fields = encode(Article(id="x", url="http://news.test/x", title="t" * 60, text="w " * 400,
                            source="s"))  # fmt: skip
    done = 0

    async def produce() -> None:
        for _ in range(count):
            await redis.xadd(stream, fields)  # type: ignore[arg-type]

    async def consume() -> None:
        nonlocal done
        while done < count:
            reply: list[tuple[str, list[tuple[str, object]]]] = await redis.xreadgroup(
                group, "c", {stream: ">"}, count=32, block=100
            )  # type: ignore[assignment]
            ids = [entry_id for _, entries in reply or () for entry_id, _ in entries]
            if ids:
                await redis.xack(stream, group, *ids)
                done += len(ids)

    started = time.perf_counter()
    await asyncio.gather(produce(), consume())
    elapsed = time.perf_counter() - started
    await redis.delete(stream)
    return count / elapsed


class Receiver:
    """The webhook subscriber: when each article's alert arrived (wall clock)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrived.setdefault(body["data"]["article"]["id"], time.time())
        return web.Response(status=204)


def _entry_seconds(entry_id: str) -> float:
    return int(entry_id.split("-", maxsplit=1)[0]) / 1000


async def classified_all(redis: Redis, expected: int) -> bool:
    """Every one of ``expected`` articles delivered to the classifier group and acknowledged."""
    if int(await redis.xlen(ARTICLES)) < expected:
        return False
    info = await redis.xinfo_stream(ARTICLES)
    for group in await redis.xinfo_groups(ARTICLES):
        if group["name"] == CLASSIFIER_GROUP:
            done = group["last-delivered-id"] == info["last-generated-id"]
            return bool(done and int(group["pending"]) == 0)
    return False


async def stories_delivered(redis: Redis, receiver: Receiver) -> bool:
    """Every story on the alerts stream has reached the receiver (one delivery per story)."""
    stories = {a.article.story_id or a.article.id for a in await _alerts(redis)}
    return len(receiver.arrived) >= len(stories)


async def _alerts(redis: Redis) -> list[_OnStream]:
    rows: list[tuple[str, dict[str, str]]] = await redis.xrange(ALERTS)  # type: ignore[assignment]
    return [_OnStream(str(i), decode(Alert, f).article) for i, f in rows]


@dataclass(frozen=True)
class _OnStream:
    entry_id: str
    article: Article


async def until(probe: Callable[[], Awaitable[bool]], deadline_seconds: float, what: str) -> float:
    """Poll ``probe()`` every 20 ms until true; return when it became true (wall clock)."""
    deadline = time.monotonic() + deadline_seconds
    while not await probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return time.time()


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _proc(pid: int) -> tuple[float, float]:
    """Peak resident MiB and CPU seconds of a process so far (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return hwm / 1024, cpu


def _write_config(folder: Path, feeds: int, port: int, hook: str) -> dict[str, str]:
    sources = "\n".join(
        f"  - {{id: feed{m}, url: 'http://127.0.0.1:{port}/f/{m}.xml', interval: 1}}"
        for m in range(feeds)
    )
    (folder / "sources.yaml").write_text(f"sources:\n{sources}\n")
    (folder / "subscriptions.yaml").write_text(
        f"subscriptions:\n  - {{id: bench, channel: webhook, url: '{hook}', secret: {SECRET}}}\n"
    )
    return {
        "VIGIL_SOURCES_FILE": str(folder / "sources.yaml"),
        "VIGIL_SUBSCRIPTIONS_FILE": str(folder / "subscriptions.yaml"),
        "VIGIL_ALLOW_PRIVATE_TARGETS": "true",
        "VIGIL_LOG__LEVEL": "warning",
        "VIGIL_LOG__FORMAT": "json",
    }


async def run(args: argparse.Namespace, redis_url: str, folder: Path) -> None:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=serve_feeds,
        args=(port, args.feeds, args.articles, args.rate, args.seconds, args.seed),
        daemon=True,
    )
    server.start()
    redis = connect(redis_url)
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    processes: dict[str, asyncio.subprocess.Process] = {}
    ports: dict[str, int] = {}
    try:
        rate = await ceiling(redis, args.ceiling)
        print(f"ceiling: {rate:,.0f} messages/s through one stream group (one process)")
        hook = f"http://127.0.0.1:{hook_port}/hook"
        env = {**os.environ, "VIGIL_REDIS_URL": redis_url,
               **_write_config(folder, args.feeds, port, hook)}  # fmt: skip
        async with aiohttp.ClientSession() as http:
            for name in SERVICES:  # consumers first: the poller's first fetch starts the clock
                http_port = ports[name] = free_port()
                with (folder / f"{name}.log").open("wb") as log:
                    processes[name] = await asyncio.create_subprocess_exec(
                        str(VIGIL),
                        name,
                        env={
                            **env,
                            "VIGIL_HTTP__PORT": str(http_port),
                            "VIGIL_CONSUMER_NAME": name,
                        },
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                await _ready(http, http_port, name)
            total = args.articles
            done_at = await until(lambda: classified_all(redis, total), 600, "the burst")
            articles = await _articles(redis)
            first = min(a.article.fetched_at.timestamp() for a in articles.values())
            burst_rate = total / (done_at - first)
            print(f"burst: {total} articles on {args.feeds} feeds: {burst_rate:,.0f} articles/s; "
                  "CPU s so far: " + ", ".join(f"{n} {_proc(p.pid)[1]:.1f}"
                                               for n, p in processes.items()))  # fmt: skip
            await until(lambda: stories_delivered(redis, receiver), 120, "burst deliveries")
            print("  where the time went (sum of vigil_stage_duration_seconds per stage):")
            for stage, (count, seconds) in (await _stages(http, ports)).items():
                print(f"    {stage:<9} {count:>6.0f} observations {seconds:>8.2f} s")
            steady_from = time.time()
            async with http.post(f"http://127.0.0.1:{port}/steady") as response:
                response.raise_for_status()
            total += int(args.rate * args.seconds)
            await until(lambda: classified_all(redis, total), args.seconds + 120, "steady")
            await until(lambda: stories_delivered(redis, receiver), 120, "steady deliveries")
        report_steady(args, await _articles(redis), await _alerts(redis), receiver, steady_from)
        print(f"{'service':<11} {'peak RSS MiB':>13} {'CPU s':>7}")
        for name, process in processes.items():
            peak, cpu = _proc(process.pid)
            print(f"{name:<11} {peak:>13.0f} {cpu:>7.1f}")
        # Again with the services idle: the machine's load may have changed since the first.
        again = await ceiling(redis, args.ceiling)
        print(f"ceiling again: {again:,.0f} messages/s; burst / the higher ceiling: "
              f"{burst_rate / max(rate, again):.3f}")  # fmt: skip
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            await asyncio.wait_for(process.wait(), timeout=30)
        server.terminate()
        server.join()
        await runner.cleanup()
        await redis.aclose()


async def _stages(
    http: aiohttp.ClientSession, ports: dict[str, int]
) -> dict[str, tuple[float, float]]:
    """Count and sum of each stage's histogram, over every service's /metrics."""
    totals: dict[str, list[float]] = {stage: [0.0, 0.0] for stage in STAGES}
    for port in ports.values():
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            if family.name != "vigil_stage_duration_seconds":
                continue
            for sample in family.samples:
                column = {"_count": 0, "_sum": 1}.get(sample.name.removeprefix(family.name))
                if column is not None:
                    totals[sample.labels["stage"]][column] += sample.value
    return {stage: (count, seconds) for stage, (count, seconds) in totals.items()}


async def _ready(http: aiohttp.ClientSession, port: int, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"vigil {name} not ready within 60 s")


async def _articles(redis: Redis) -> dict[str, _OnStream]:
    """Every article on the stream by id, with its entry id (when it reached the stream)."""
    rows: list[tuple[str, dict[str, str]]] = await redis.xrange(ARTICLES)  # type: ignore[assignment]
    entries = [_OnStream(str(i), decode(Article, f)) for i, f in rows]
    return {entry.article.id: entry for entry in entries}


def report_steady(
    args: argparse.Namespace,
    articles: dict[str, _OnStream],
    alerts: list[_OnStream],
    receiver: Receiver,
    steady_from: float,
) -> None:
    def fetched(entry: _OnStream) -> float:
        return entry.article.fetched_at.timestamp()

    steady = [a for a in articles.values() if fetched(a) >= steady_from]
    on_stream = [_entry_seconds(a.entry_id) - fetched(a) for a in steady]
    flagged = [a for a in alerts if a.article.id in articles and fetched(articles[a.article.id])
               >= steady_from]  # fmt: skip
    to_alert = [_entry_seconds(a.entry_id) - fetched(articles[a.article.id]) for a in flagged]
    delivered = [receiver.arrived[a.article.id] - fetched(articles[a.article.id])
                 for a in flagged if a.article.id in receiver.arrived]  # fmt: skip
    print(f"steady: {len(steady)} articles at {args.rate:.0f}/s for {args.seconds:.0f} s; "
          f"{len(flagged)} flagged, {len(delivered)} delivered (one per story)")  # fmt: skip
    for label, values in (("fetch -> articles stream", on_stream),
                          ("fetch -> alerts stream", to_alert),
                          ("fetch -> webhook receiver", delivered)):  # fmt: skip
        if values:
            print(f"  {label:<26} p50 {statistics.median(values) * 1000:7.0f} ms   "
                  f"p99 {_percentile(values, 0.99) * 1000:7.0f} ms   "
                  f"max {max(values) * 1000:7.0f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--feeds", type=int, default=30)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--ceiling", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, EmbeddedRedis(Path(folder), persist=False) as rd:
        print(f"started {datetime.now().isoformat(timespec='seconds')}; "
              f"{os.cpu_count()} CPUs; redis {rd.url}")  # fmt: skip
        asyncio.run(run(args, rd.url, Path(folder)))


if __name__ == "__main__":
    main()
