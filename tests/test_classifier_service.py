"""The classifier service on a real Redis: batches, alerts, dead letters, live lexicon reload."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis

from services.classifier.lexicon import DEFAULT_LEXICON
from services.classifier.service import ClassifierService
from services.settings import Settings
from shared.bus import StreamBus
from shared.models import Alert, Article
from shared.streams import ALERTS, ARTICLES
from tests.helpers import background, group_done, wait_for


def article(article_id: str, title: str, text: str) -> Article:
    return Article(id=article_id, url=f"https://wire.example/{article_id}", title=title,
                   text=text, source="wire", language="en")  # fmt: skip


@asynccontextmanager
async def running(service: ClassifierService) -> AsyncIterator[ClassifierService]:
    async with background(service):
        await wait_for(service.is_ready, message="classifier ready")
        yield service


async def alerts(redis: Redis) -> list[Alert]:
    entries: list[tuple[str, dict[str, str]]] = await redis.xrange(ALERTS)  # type: ignore[assignment]
    return [Alert.model_validate_json(fields["data"]) for _, fields in entries]


async def test_flagged_articles_become_alerts_and_others_do_not(
    settings: Settings, redis: Redis
) -> None:
    bus = StreamBus(redis)
    async with running(ClassifierService(settings, redis)):
        await bus.publish(
            ARTICLES,
            article(
                "a1",
                "Turkish troops deploy to Libya",
                "Turkish troops arrived in Tripoli on Monday.",
            ),
        )
        await bus.publish(ARTICLES, article("a2", "Lira slides", "The Turkish lira fell."))
        await redis.xadd(ARTICLES, {"type": "Article", "v": "1", "data": "{not json"})
        await wait_for(bus.dead_letters, message="the poison entry dead-lettered")
        await wait_for(lambda: group_done(redis, ARTICLES), message="every entry handled")
    [alert] = await alerts(redis)
    assert alert.alert_id == "alert_a1"
    assert alert.classification.theaters == ["libya"]
    [(_, letter)] = await bus.dead_letters()
    assert letter.reason.startswith("decode:")


async def test_sighup_reloads_the_lexicon_and_a_bad_one_keeps_the_old(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    lexicon = shutil.copytree(DEFAULT_LEXICON, tmp_path / "lexicon")
    good = (lexicon / "en.yaml").read_text(encoding="utf-8")
    config = settings.model_copy(
        update={"classifier": settings.classifier.model_copy(update={"lexicon_dir": lexicon})}
    )
    async with running(ClassifierService(config, redis)) as service:
        original = service.detector
        (lexicon / "en.yaml").write_text("language: en\nturkey: [", encoding="utf-8")
        assert service.reload() is False
        assert service.detector is original, "a bad lexicon leaves the running detector alone"
        (lexicon / "en.yaml").write_text(good, encoding="utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: service.detector is not original, message="the reload")
