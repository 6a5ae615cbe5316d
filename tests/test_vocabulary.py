"""Theaters and stances are data: the lexicon declares them, the classifier publishes them,
new subscriptions are checked against them, and a new theater flows end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from redis.asyncio import Redis
from structlog.testing import capture_logs

from services.classifier.detector import Detector
from services.classifier.lexicon import DEFAULT_LEXICON, LexiconError, load_lexicon
from services.classifier.service import ClassifierService
from services.notifier.store import SUBSCRIPTIONS, SubscriptionStore
from services.notifier.store import VERSION as SUBSCRIPTIONS_VERSION
from services.notifier.subscriptions import new_subscription
from services.settings import Settings
from shared.bus import StreamBus
from shared.models import Article
from shared.streams import ALERTS, ARTICLES
from shared.vocabulary import (
    DEFAULT_VOCABULARY,
    VOCABULARY_KEY,
    Vocabulary,
    publish_vocabulary,
    published_vocabulary,
)
from tests.console_support import console_settings, csrf_of, logged_in, running_console
from tests.factories import make_alert
from tests.helpers import background, wait_for
from tests.notifier_support import FakeClock, fast, publish, running, webhook
from tests.receivers import SECRET, Receiver

ZEMBLA = ("Turkish troops deploy to Zembla",
          "Turkish troops were deployed to Zembla, the Turkish defence ministry said.")  # fmt: skip


def add_theater(lexicon: Path, theater: str, place: str) -> None:
    """What adding a theater takes: one file, its name and its places by language."""
    (lexicon / "theaters").mkdir(exist_ok=True)
    (lexicon / "theaters" / f"{theater}.yaml").write_text(
        f"theater: {theater}\nplaces:\n  en: [{place}]\n  fr: [{place}]\n", encoding="utf-8"
    )


def test_the_lexicon_declares_the_vocabulary_and_is_checked_against_it(tmp_path: Path) -> None:
    assert load_lexicon().vocabulary == DEFAULT_VOCABULARY
    lexicon = shutil.copytree(DEFAULT_LEXICON, tmp_path / "lexicon")
    (lexicon / "xx.yaml").write_text("language: xx\ntheaters:\n  atlantis: [atlantis]\n")
    with pytest.raises(LexiconError, match=r"xx\.yaml:2: theaters: unknown theater 'atlantis'"):
        load_lexicon(lexicon)
    add_theater(lexicon, "atlantis", "poseidonis")
    assert "atlantis" in load_lexicon(lexicon).vocabulary.theaters

    core = lexicon / "core.yaml"
    declared = core.read_text(encoding="utf-8")
    core.write_text(declared.replace(", other]", "]"))
    with pytest.raises(LexiconError, match=r"core\.yaml:6: theaters: 'other' is missing"):
        load_lexicon(lexicon)
    core.write_text(declared.replace("media: assertion", "media: rumour"))
    with pytest.raises(LexiconError, match=r"core\.yaml:\d+: sides: stances \['rumour'\]"):
        load_lexicon(lexicon)
    core.write_text(declared.replace("stances: [assertion, denial,", "stances: [assertion,"))
    with pytest.raises(LexiconError, match=r"core\.yaml:7: stances: \['denial'\] are missing"):
        load_lexicon(lexicon)


def test_a_theater_file_is_checked_like_every_lexicon_file(tmp_path: Path) -> None:
    lexicon = shutil.copytree(DEFAULT_LEXICON, tmp_path / "lexicon")
    add_theater(lexicon, "zembla", "zembla")
    detector = Detector(load_lexicon(lexicon))
    assert detector.classify("z", *ZEMBLA).theaters == ["zembla"]
    theater = lexicon / "theaters" / "zembla.yaml"
    theater.rename(lexicon / "theaters" / "syldavia.yaml")
    with pytest.raises(LexiconError, match=r"syldavia\.yaml:1: theater: 'zembla' in a file named"):
        load_lexicon(lexicon)
    add_theater(lexicon, "libya", "tripoli")
    with pytest.raises(LexiconError, match=r"libya\.yaml:1: theater: 'libya' is declared in core"):
        load_lexicon(lexicon)
    (lexicon / "theaters" / "libya.yaml").unlink()
    (lexicon / "theaters" / "syldavia.yaml").unlink()
    add_theater(lexicon, "zembla", "zembla")
    add_theater(lexicon, "bordurie", "Zembla")  # the same place as folded, in another file
    with pytest.raises(LexiconError, match=r"zembla\.yaml:\d+: places\.en: 'zembla' is a place "):
        load_lexicon(lexicon)


async def test_a_lexicon_without_a_vocabulary_has_the_default(tmp_path: Path) -> None:
    lexicon = shutil.copytree(DEFAULT_LEXICON, tmp_path / "lexicon")
    core = lexicon / "core.yaml"
    lines = core.read_text(encoding="utf-8").splitlines(keepends=True)
    core.write_text("".join(line for line in lines if not line.startswith(("theaters", "stances"))))
    assert load_lexicon(lexicon).vocabulary == DEFAULT_VOCABULARY


async def test_the_published_vocabulary_falls_back_to_the_default(redis: Redis) -> None:
    assert await published_vocabulary(redis) == DEFAULT_VOCABULARY
    await redis.set(VOCABULARY_KEY, "{not json")
    assert await published_vocabulary(redis) == DEFAULT_VOCABULARY


def test_new_subscriptions_name_only_what_the_vocabulary_holds() -> None:
    data = {"id": "desk", "channel": "console", "filters": {"theaters": ["zembla"]}}
    with pytest.raises(ValidationError, match=r"filters\.theaters\n.*unknown theater 'zembla'"):
        new_subscription(data, DEFAULT_VOCABULARY)
    wider = Vocabulary(theaters=(*DEFAULT_VOCABULARY.theaters, "zembla"), stances=("report",))
    assert new_subscription(data, wider).filters.theaters == ["zembla"]
    data["filters"] = {"stances": ["denial"]}
    with pytest.raises(ValidationError, match="unknown stance 'denial': one of report"):
        new_subscription(data, wider)


async def test_a_theater_added_by_a_reload_flows_to_subscribers(
    settings: Settings, redis: Redis, tmp_path: Path, receiver: Receiver
) -> None:
    """No code and no wire contract changes: the classifier publishes the new vocabulary, a
    subscription may then name the theater, and its alerts reach the subscriber."""
    lexicon = shutil.copytree(DEFAULT_LEXICON, tmp_path / "lexicon")
    config = settings.model_copy(
        update={"classifier": settings.classifier.model_copy(update={"lexicon_dir": lexicon})}
    )
    wanted = {"id": "zembla-desk", "channel": "webhook", "url": receiver.url,
              "secret": SECRET,
              "filters": {"theaters": ["zembla"]}}  # fmt: skip
    classifier = ClassifierService(config, redis)
    async with background(classifier):
        await wait_for(lambda: redis.get(VOCABULARY_KEY), message="the vocabulary published")
        with pytest.raises(ValidationError, match="unknown theater 'zembla'"):
            new_subscription(wanted, await published_vocabulary(redis))
        add_theater(lexicon, "zembla", "zembla")
        assert classifier.reload()
        published = await wait_for(
            lambda: _holds(redis, "zembla"), message="the new vocabulary published"
        )
        subscription = new_subscription(wanted, published)
        async with running(fast(config), redis, [subscription], FakeClock()):
            await StreamBus(redis).publish(ARTICLES, Article(
                id="z1", url="https://wire.example/z1", title=ZEMBLA[0], text=ZEMBLA[1],
                source="wire", language="en"))  # fmt: skip
            [received] = await wait_for(lambda: receiver.requests, message="the alert delivered")
    assert received.payload["data"]["classification"]["theaters"] == ["zembla"]


async def _holds(redis: Redis, theater: str) -> Vocabulary | None:
    vocabulary = await published_vocabulary(redis)
    return vocabulary if theater in vocabulary.theaters else None


async def test_a_bad_stored_subscription_is_skipped_and_counted_never_fatal(
    settings: Settings, redis: Redis, receiver: Receiver
) -> None:
    """One row this version cannot read leaves every other subscriber served; a stored filter
    naming a theater no vocabulary knows is read as written (and simply matches it)."""
    zembla = {"id": "zembla", "channel": "console", "filters": {"theaters": ["zembla"]}}
    broken = {"id": "broken", "channel": "webhook", "filters": {"min_score": "high"}}
    await redis.hset(SUBSCRIPTIONS, mapping={
        "zembla": orjson.dumps(zembla), "broken": orjson.dumps(broken), "garbled": "{not json",
    })  # fmt: skip
    await redis.incr(SUBSCRIPTIONS_VERSION)
    with capture_logs() as logs:
        readable = await SubscriptionStore(redis).all()
    assert [s.id for s in readable] == ["zembla"]
    assert REGISTRY.get_sample_value("vigil_notifier_unreadable_subscriptions") == 2
    skipped = [e["subscription"] for e in logs if e["event"] == "notifier.subscription_unreadable"]
    assert sorted(skipped) == ["broken", "garbled"]
    async with running(fast(settings), redis, [webhook(receiver)], FakeClock()):
        await publish(redis, make_alert("a1"), make_alert("z1", theaters=("zembla",)))
        await wait_for(lambda: len(receiver.requests) == 2, message="both alerts delivered")
    assert readable[0].filters.matches(make_alert("z1", theaters=("zembla",)))


async def test_the_console_lists_and_checks_the_published_vocabulary(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    theaters = (*DEFAULT_VOCABULARY.theaters, "zembla")
    await publish_vocabulary(redis, DEFAULT_VOCABULARY.model_copy(update={"theaters": theaters}))
    await StreamBus(redis).publish(ALERTS, make_alert(
        "z1", title=ZEMBLA[0], theaters=("zembla",),
        claims=(("Turkish defence ministry", "acknowledgment", "zembla"),)))  # fmt: skip
    settings = console_settings(settings, tmp_path)
    async with running_console(settings, redis) as console, logged_in(console.url) as client:
        await wait_for(lambda: redis.zcard("vigil:{archive}:stored"), message="alert archived")
        async with client.get("/claims") as reply:  # the busiest theater
            assert ZEMBLA[0] in await reply.text()
        async with client.get("/subscriptions/new") as reply:
            html = await reply.text()
        assert 'value="zembla"' in html
        form = {"csrf": csrf_of(html), "id": "desk", "channel": "console",
                "theaters": ["atlantis"], "mode": "instant"}  # fmt: skip
        async with client.post("/subscriptions", data=form) as reply:
            assert reply.status == 422
            assert "unknown theater &#39;atlantis&#39;" in await reply.text()
