"""Building valid messages for tests."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.models import Alert, Article, Claim, Classification, Stance, Theater


def make_alert(
    article_id: str = "a1",
    *,
    story_id: str | None = None,
    source: str = "wire",
    score: float = 0.9,
    theaters: tuple[Theater, ...] = ("libya",),
    stances: tuple[Stance, ...] = ("acknowledgment",),
    title: str = "Turkey sends troops to Libya",
    claimant: str = "Turkish defence ministry",
) -> Alert:
    """A flagged alert with one claim; every field can be varied."""
    evidence = "Turkish troops arrived in Tripoli, the Turkish defence ministry said."
    stance = stances[0] if stances else "report"
    article = Article(
        id=article_id,
        url=f"https://wire.example/{article_id}",
        title=title,
        text=evidence,
        source=source,
        published_at=datetime(2026, 11, 24, 8, tzinfo=UTC),
        language="en",
        story_id=story_id,
    )
    verdict = Classification(
        id=article_id,
        flagged=True,
        score=score,
        theaters=list(theaters),
        stances=list(stances),
        claims=[Claim(claimant=claimant, stance=stance, evidence=evidence)],
        evidence=[evidence],
    )
    return Alert(alert_id=f"alert_{article_id}", article=article, classification=verdict)
