"""The JSON body subscribers receive (the design's webhook contract)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from services.notifier.jobs import Job
from services.notifier.render import safe_link
from shared.models import Alert

EVENT_TYPES = {
    "alert": "alert.created",
    "digest": "alert.digest",
    "overflow": "alert.digest",
    "test": "alert.test",
}


def alert_data(alert: Alert) -> dict[str, Any]:
    """``{"alert_id", "article": {...}, "classification": {...}}`` for one alert; an article
    link that is not http(s) is sent as an empty string."""
    article = alert.article
    return {
        "alert_id": alert.alert_id,
        "article": {
            "id": article.id,
            "url": safe_link(article.url) or "",
            "title": article.title,
            "source": article.source,
            "published_at": article.published_at.isoformat() if article.published_at else None,
        },
        "classification": alert.classification.model_dump(mode="json"),
    }


def event_body(job: Job, alerts: Sequence[Alert]) -> dict[str, Any]:
    """The whole event. Its timestamp is the job's creation time, so retries send the same body.

    An alert or test event carries one alert in ``data``; a digest carries ``data.alerts``.
    """
    timestamp = datetime.fromtimestamp(job.created_at, UTC).isoformat()
    if job.kind in ("digest", "overflow"):
        data: dict[str, Any] = {"alerts": [alert_data(alert) for alert in alerts]}
    else:
        data = alert_data(alerts[0])
    return {"type": EVENT_TYPES[job.kind], "timestamp": timestamp, "data": data}
