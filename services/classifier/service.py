"""The classifier service: reads ``vigil:articles``, publishes flagged ones to ``vigil:alerts``.

The detector is immutable; a reload (SIGHUP, or :meth:`ClassifierService.reload`) builds a new
one from the lexicon file and swaps it in between two messages, so nothing is lost. The
lexicon's vocabulary (its theaters and stances) is published at start and after each reload,
for new subscriptions to be checked against (:mod:`shared.vocabulary`).
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from redis.asyncio import Redis

from services.classifier import metrics
from services.classifier.detector import Detector
from services.classifier.lexicon import LexiconError, load_lexicon
from services.settings import Settings
from shared.aio import Wakeup
from shared.bus import Receipt, StreamBus
from shared.logging import get_logger
from shared.models import Alert, Article
from shared.resilience import TRANSIENT_ERRORS, Backoff
from shared.signals import on_hangup
from shared.streams import ALERTS, ARTICLES, CLASSIFIER_GROUP
from shared.vocabulary import publish_vocabulary

log = get_logger("classifier")


def alert_id_for(article: Article) -> str:
    """Deterministic, so a re-classified article yields the same alert (idempotent)."""
    return f"alert_{article.id}"


def build_detector(lexicon_dir: Path | None, threshold: float) -> Detector:
    """A detector from a lexicon file, or from the bundled lexicon when none is given."""
    return Detector(load_lexicon(lexicon_dir), threshold=threshold)


class ClassifierService:
    """Classify every new article; publish an alert for each flagged one."""

    name = "classifier"

    def __init__(self, settings: Settings, redis: Redis, detector: Detector | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.bus = StreamBus(redis, settings.bus)
        self.detector = detector or build_detector(
            settings.classifier.lexicon_dir, settings.classifier.threshold
        )
        self.consumer = self.bus.consumer(
            stream=ARTICLES,
            group=CLASSIFIER_GROUP,
            name=settings.consumer_name,
            model=Article,
            handler=self.handle,
        )
        self._reloaded = Wakeup()

    def is_ready(self) -> bool:
        return self.consumer.ready

    def reload(self) -> bool:
        """Rebuild the detector from the lexicon file; keep the old one if the file is bad."""
        try:
            self.detector = build_detector(
                self.settings.classifier.lexicon_dir, self.settings.classifier.threshold
            )
        except LexiconError as error:
            log.error("classifier.reload_failed", error=str(error))
            return False
        log.info("classifier.reloaded", lexicon=str(self.settings.classifier.lexicon_dir))
        self._reloaded.set()
        return True

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, on_hangup(self.reload))
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._publish_vocabulary(stop))
                await self.consumer.run(stop)
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    async def _publish_vocabulary(self, stop: asyncio.Event) -> None:
        """Publish the lexicon's vocabulary now and after each reload, retrying while Redis
        is away."""
        backoff = Backoff(self.redis, log, "classifier.redis_error")
        while not stop.is_set():
            vocabulary = self.detector.lexicon.vocabulary
            try:
                await publish_vocabulary(self.redis, vocabulary)
            except TRANSIENT_ERRORS as error:
                await backoff.pause(stop, error)
                continue
            backoff.reset()
            log.info("classifier.vocabulary_published", theaters=list(vocabulary.theaters))
            await self._reloaded.wait(stop)

    async def handle(self, article: Article, delivery: Receipt) -> None:
        started = time.perf_counter()
        result = self.detector.classify(
            article.id, article.title, article.text, language=article.language
        )
        metrics.CLASSIFY_SECONDS.observe(time.perf_counter() - started)
        metrics.CLASSIFY_SCORE.observe(result.score)
        metrics.CLASSIFICATIONS.labels("flagged" if result.flagged else "not_flagged").inc()
        if not result.flagged:
            log.debug("classify.not_flagged", article_id=article.id, score=result.score)
            return
        alert = Alert(alert_id=alert_id_for(article), article=article, classification=result)
        await self.bus.publish(ALERTS, alert)
        log.info(
            "classify.flagged",
            article_id=article.id,
            alert_id=alert.alert_id,
            score=result.score,
            theaters=result.theaters,
            stances=result.stances,
        )
