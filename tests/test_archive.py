"""The alert archive on a real Redis: stories, filters, paging, the claims ledger, trimming."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.archive.keys import CLAIMANTS, INDEXES, entry_score, short_id
from services.archive.records import Query
from services.archive.service import ArchiveService
from services.archive.settings import ArchiveSettings
from services.archive.store import AlertArchive
from services.settings import Settings
from shared.bus import StreamBus
from shared.streams import ALERTS, DEAD
from shared.vocabulary import DEFAULT_VOCABULARY
from tests.factories import make_alert
from tests.helpers import background, group_done, wait_for

T0_MS = 1_800_000_000_000


def entry(n: int) -> str:
    return f"{T0_MS + n * 1000}-0"


async def test_a_story_is_shown_once_with_its_sources_and_repeats_are_kept_once(
    redis: Redis,
) -> None:
    archive = AlertArchive(redis, ArchiveSettings())
    assert await archive.add(make_alert("a1", story_id="s1", source="wire"), entry(1))
    assert await archive.add(make_alert("a2", story_id="s1", source="post"), entry(2))
    assert not await archive.add(make_alert("a1", story_id="s1", source="wire"), entry(3))
    assert await archive.add(make_alert("b1", source="wire"), entry(4))

    stories, more = await archive.stories(Query())

    assert [s.lead.alert.alert_id for s in stories] == ["alert_b1", "alert_a1"]
    assert stories[1].sources == ["wire", "post"]
    assert [c.alert.alert_id for c in stories[1].copies] == ["alert_a2"]
    assert more is None
    assert await archive.count() == 3
    # The article text is not kept; the evidence is.
    assert stories[0].lead.alert.article.text == ""
    assert stories[0].lead.alert.classification.claims[0].evidence


async def test_filters_combine_and_a_copy_extends_its_story(redis: Redis) -> None:
    archive = AlertArchive(redis, ArchiveSettings())
    await archive.add(
        make_alert("k1", theaters=("karabakh",),
                   claims=(("Armenia's defence ministry", "assertion", "karabakh"),)),
        entry(1),
    )  # fmt: skip
    await archive.add(
        make_alert("k2", story_id="k1", source="baku-post", theaters=("karabakh",),
                   claims=(("Baku", "denial", "karabakh"),), language="az"),
        entry(2),
    )  # fmt: skip
    await archive.add(
        make_alert("l1", claims=(("Turkish defence ministry", "acknowledgment", "libya"),)),
        entry(3),
    )

    async def ids(query: Query) -> list[str]:
        return [s.lead.alert.alert_id for s in (await archive.stories(query))[0]]

    assert await ids(Query(theaters=["karabakh"])) == ["alert_k1"]
    assert await ids(Query(theaters=["karabakh", "libya"])) == ["alert_l1", "alert_k1"]
    assert await ids(Query(stances=["denial"])) == ["alert_k1"]  # the copy's claim
    assert await ids(Query(sources=["baku-post"])) == ["alert_k1"]
    assert await ids(Query(languages=["az"])) == ["alert_k1"]
    assert await ids(Query(claimant="DEFENCE")) == ["alert_l1", "alert_k1"]
    assert await ids(Query(claimant="defence", theaters=["libya"])) == ["alert_l1"]
    assert await ids(Query(claimant="nobody")) == []
    assert await ids(Query(theaters=["syria"])) == []
    [story] = (await archive.stories(Query(theaters=["karabakh"])))[0]
    assert story.contested == {"karabakh"}
    assert Query(stances=["denial"]).matches(story)
    assert not Query(theaters=["libya"]).matches(story)


async def test_pages_go_back_in_time_without_gaps_or_repeats(redis: Redis) -> None:
    archive = AlertArchive(redis, ArchiveSettings())
    for n in range(60):
        # Entries of the same millisecond differ by their sequence number.
        await archive.add(make_alert(f"a{n}"), f"{T0_MS + n // 2}-{n % 2}")
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        stories, before = await archive.stories(Query(), before=before, count=25)
        seen += [s.lead.alert.alert_id for s in stories]
        pages += 1
        if before is None:
            break
    assert pages == 3
    assert seen == [f"alert_a{n}" for n in reversed(range(60))]
    # With a filter the same way.
    stories, before = await archive.stories(Query(theaters=["libya"]), count=50)
    assert len(stories) == 50
    assert before is not None
    rest, last = await archive.stories(Query(theaters=["libya"]), before=before, count=50)
    assert len(rest) == 10
    assert last is None


async def test_the_ledger_by_theater_stance_and_claimant_marks_contested_stories(
    redis: Redis,
) -> None:
    archive = AlertArchive(redis, ArchiveSettings())
    await archive.add(
        make_alert("k1", claims=(("Armenia's defence ministry", "assertion", "karabakh"),
                                 ("Erdoğan", "threat", "israel-gaza"))),
        entry(1),
    )  # fmt: skip
    await archive.add(
        make_alert("k2", story_id="k1", source="apa", claims=(("Baku", "denial", "karabakh"),)),
        entry(2),
    )
    await archive.add(
        make_alert("k3", claims=(("ARMENIA'S  defence ministry", "assertion", "karabakh"),)),
        entry(3),
    )

    rows, total = await archive.claims(theater="karabakh")
    assert total == 3
    assert [(r.claim.claimant, r.claim.stance, r.contested) for r in rows] == [
        ("ARMENIA'S  defence ministry", "assertion", False),
        ("Baku", "denial", True),
        ("Armenia's defence ministry", "assertion", True),
    ]
    denials, total = await archive.claims(theater="karabakh", stance="denial")
    assert [r.claim.claimant for r in denials] == ["Baku"]
    assert total == 1
    threats, _ = await archive.claims(theater="israel-gaza")
    assert [r.claim.stance for r in threats] == ["threat"]
    assert threats[0].contested is False
    ministry, total = await archive.claims(claimant="armenia's defence ministry")
    assert total == 2
    assert {r.archived.alert.alert_id for r in ministry} == {"alert_k1", "alert_k3"}
    claimants = await archive.claimants()
    assert claimants[0] == ("Armenia's defence ministry", 2)
    assert sorted(claimants[1:]) == [("Baku", 1), ("Erdoğan", 1)]
    counts = await archive.claim_counts(DEFAULT_VOCABULARY.theaters)
    assert counts["karabakh"] == 3
    assert counts["israel-gaza"] == 1
    assert counts["libya"] == 0


async def test_trimming_drops_old_alerts_from_every_key(redis: Redis) -> None:
    archive = AlertArchive(redis, ArchiveSettings(days=1))
    now = T0_MS / 1000
    await archive.add(make_alert("old", claims=(("Baku", "denial", "karabakh"),)), entry(0))
    await archive.add(make_alert("new", theaters=("syria",)), entry(86_400 + 60))
    dropped = await archive.trim(now=now + 86_400 + 30)
    assert dropped == 1
    stories, _ = await archive.stories(Query())
    assert [s.lead.alert.alert_id for s in stories] == ["alert_new"]
    assert await archive.claims(claimant="Baku") == ([], 0)
    assert await redis.hget(CLAIMANTS, "baku") is None
    keys = await redis.smembers(INDEXES)
    assert not any("karabakh" in key or "baku" in key for key in keys)
    assert [key for key in keys if not await redis.zcard(key)] == []


async def test_the_archive_keeps_at_most_max_alerts(redis: Redis) -> None:
    archive = AlertArchive(redis, ArchiveSettings(max_alerts=100))
    for n in range(130):
        await archive.add(make_alert(f"a{n}"), entry(n))
    assert await archive.trim(now=T0_MS / 1000 + 200) == 30
    assert await archive.count() == 100
    stories, _ = await archive.stories(Query(theaters=["libya"]), count=200)
    assert len(stories) == 100
    assert stories[-1].lead.alert.alert_id == "alert_a30"


def test_scores_are_exact_and_short_ids_sort_like_arrivals() -> None:
    first, second = entry_score("1800000000000-0"), entry_score("1800000000000-1")
    assert second - first == 1
    assert float(second) == second  # exact in a double
    assert int(short_id(second), 36) == second


async def test_the_archive_component_stores_alerts_from_its_own_group(
    redis: Redis, settings: Settings
) -> None:
    stored = []
    service = ArchiveService(settings, redis, on_stored=lambda: stored.append(time.time()))
    await StreamBus(redis).publish(ALERTS, make_alert("x1"))
    async with background(service):
        await wait_for(lambda: stored, message="alert archived")
        await StreamBus(redis).publish(ALERTS, make_alert("x2"))
        await wait_for(lambda: len(stored) == 2, message="second alert archived")
    stories, _ = await service.archive.stories(Query())
    assert [s.lead.alert.alert_id for s in stories] == ["alert_x2", "alert_x1"]
    [group] = await redis.xinfo_groups(ALERTS)
    assert group["name"] == "archive"
    assert group["pending"] == 0


async def test_the_archive_skips_what_it_cannot_read_and_leaves_dead_letters_to_the_notifier(
    redis: Redis, settings: Settings
) -> None:
    labels = {"stream": ALERTS, "group": "archive", "outcome": "skipped"}
    before = REGISTRY.get_sample_value("vigil_bus_messages_total", labels) or 0
    stored: list[float] = []
    service = ArchiveService(settings, redis, on_stored=lambda: stored.append(time.time()))
    await redis.xadd(ALERTS, {"unexpected": "shape"})
    await StreamBus(redis).publish(ALERTS, make_alert("x1"))
    async with background(service):
        await wait_for(lambda: stored, message="the good alert archived")
        await wait_for(lambda: group_done(redis, ALERTS), message="the poison acknowledged")
    assert await redis.xlen(DEAD) == 0
    assert REGISTRY.get_sample_value("vigil_bus_messages_total", labels) == before + 1
