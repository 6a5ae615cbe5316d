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
    claims: tuple[tuple[str, Stance, Theater], ...] | None = None,
    language: str = "en",
    evidence: str = "Turkish troops arrived in Tripoli, the Turkish defence ministry said.",
) -> Alert:
    """A flagged alert with one claim (or ``claims``: claimant, stance, theater); every field
    can be varied."""
    stance = stances[0] if stances else "report"
    article = Article(
        id=article_id,
        url=f"https://wire.example/{article_id}",
        title=title,
        text=evidence,
        source=source,
        published_at=datetime(2026, 11, 24, 8, tzinfo=UTC),
        language=language,
        story_id=story_id,
    )
    listed = (
        [Claim(claimant=c, stance=s, theater=t, evidence=evidence) for c, s, t in claims]
        if claims is not None
        else [Claim(claimant=claimant, stance=stance, evidence=evidence)]
    )
    verdict = Classification(
        id=article_id,
        flagged=True,
        score=score,
        theaters=list(theaters),
        stances=list(stances),
        claims=listed,
        evidence=[evidence],
        language=language,
    )
    return Alert(alert_id=f"alert_{article_id}", article=article, classification=verdict)
