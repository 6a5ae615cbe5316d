"""Where the archive lives in Redis, and the arithmetic of its ids and scores.

Keys, all under one hash tag (``vigil:{archive}:``) so that a transaction may touch several
on Redis Cluster:

- ``alerts``: hash, short id -> the alert's JSON (article text dropped);
- ``stored``: every kept alert by arrival (trimming walks it);
- ``time``: the stories' first alerts by arrival (the alerts view, newest first);
- ``idx:{theater|stance|language|source|claimant}:{value}``: first alerts of the stories
  holding that value in any of their copies (the alerts view's filters);
- ``claims:{theater}`` and ``claims:{theater}:{stance}``, ``claims:claimant:{name}``: claim
  references ``{short id}.{n}`` by arrival (the claims ledger);
- ``claimants``: normalised claimant name -> the name as first written;
- ``story:{story}``: the story's first alert, its sources and the stances seen per theater
  (``contested``: an assertion and a denial in one theater), expiring with the retention;
- ``indexes``: every index key above, so that trimming reaches them all.

Scores are the arrival in microseconds (entry milliseconds * 1000 + sequence): exact in a
double, unique per entry; an alert's short id is its score in base 36.
"""

from __future__ import annotations

PREFIX = "vigil:{archive}:"
ALERTS = PREFIX + "alerts"
STORED = PREFIX + "stored"
TIME = PREFIX + "time"
CLAIMANTS = PREFIX + "claimants"
INDEXES = PREFIX + "indexes"


def entry_score(entry_id: str) -> int:
    """The arrival of a stream entry in microseconds: ``1700000000000-3`` -> ...000003."""
    millis, _, sequence = entry_id.partition("-")
    return int(millis) * 1000 + min(int(sequence or 0), 999)


def score_at(epoch: float) -> int:
    """The score of an arrival at ``epoch`` seconds."""
    return int(epoch * 1_000_000)


def short_id(score: int) -> str:
    """A compact id (base 36 of the score): index members stay small."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while score:
        score, rest = divmod(score, 36)
        text = digits[rest] + text
    return text or "0"


def normal_claimant(name: str) -> str:
    """How claimants are grouped: case and spacing do not matter."""
    return " ".join(name.casefold().split())


def story(story_id: str) -> str:
    """The hash of one story (the poller's story id, else the article's)."""
    return f"{PREFIX}story:{story_id}"


def index(kind: str, value: str) -> str:
    """The first alerts of the stories holding ``value`` of one filter."""
    return f"{PREFIX}idx:{kind}:{value}"


def claims(theater: str, stance: str | None = None) -> str:
    """The ledger of one theater (of one stance)."""
    return f"{PREFIX}claims:{theater}" + (f":{stance}" if stance else "")


def claimant_claims(name: str) -> str:
    """The ledger of one claimant, whatever the case and spacing of its name."""
    return f"{PREFIX}claims:claimant:{normal_claimant(name)}"
