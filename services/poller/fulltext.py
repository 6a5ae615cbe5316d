"""Full text of an article from its own page (trafilatura), for sources with ``full_text``.

Feeds often carry a headline and one sentence; the detector does better with the story.
Pages are fetched through the poller's :class:`Fetcher` (same timeouts, size limit, redirect
limit and per-host concurrency). Any failure keeps the feed's summary: the article is never
held back or lost because its page could not be read.
"""

from __future__ import annotations

import asyncio

import trafilatura

from services.poller import metrics
from services.poller.articles import MAX_TEXT_CHARS
from services.poller.fetch import Fetcher, FetchError
from shared.logging import get_logger
from shared.models import Article

log = get_logger("poller")


def extract_text(html: bytes, url: str) -> str | None:
    """The main text of an HTML page, without navigation, ads or comments."""
    return trafilatura.extract(
        html, url=url, include_comments=False, include_tables=False, favor_precision=True
    )


async def with_full_text(fetcher: Fetcher, article: Article) -> Article:
    """``article`` with the text of its page when that is longer than the feed's summary."""
    try:
        page = await fetcher.fetch(article.url)
    except FetchError as error:
        metrics.POLLER_FULL_TEXT.labels("failed").inc()
        log.info("poll.full_text_failed", article_id=article.id, url=article.url,
                 outcome=error.outcome, error=str(error))  # fmt: skip
        return article
    text = await asyncio.to_thread(extract_text, page.body, page.url)
    if not text or len(text) <= len(article.text):
        metrics.POLLER_FULL_TEXT.labels("empty").inc()
        return article
    metrics.POLLER_FULL_TEXT.labels("extracted").inc()
    return article.model_copy(update={"text": text[:MAX_TEXT_CHARS]})
