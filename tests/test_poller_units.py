"""Poller building blocks: sources YAML, canonical URLs, formats, text, time, stories."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from simhash import Simhash  # type: ignore[import-untyped]

from services.poller.adapters import auto, sitemap
from services.poller.adapters.base import ParseError
from services.poller.articles import normalise_time
from services.poller.canonical import article_id, canonical_url
from services.poller.sources import DEFAULT_SOURCES_FILE, load_sources
from services.poller.stories import Assigned, StoryIndex, fingerprint, group, simhash64
from services.poller.text import html_to_text
from shared.language import detect_language
from shared.models import Article
from shared.settings import ConfigError
from shared.streams import ARTICLES, companion
from tests.poller_support import GDELT, SITEMAP


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("sources:\n  - {id: a, url: 'ftp://x/y'}\n",
         "sources.yaml:2: sources[0].url: not an http(s) or file URL"),
        ("sources:\n  - {id: a, url: 'http://x/'}\n  - {id: a, url: 'http://y/'}\n",
         "sources.yaml:3: sources[1].id: duplicate id 'a'"),
        ("sources:\n  - {id: a}\n", "sources.yaml:2: sources[0].url: Field required"),
        ("sources:\n  - {id: a, url: 'http://x/', interval: -1}\n",
         "sources.yaml:2: sources[0].interval: Input should be greater than 0"),
        ("sources:\n  - {id: a, url: 'http://x/', colour: red}\n",
         "sources.yaml:2: sources[0].colour: Extra inputs are not permitted"),
        ("sources:\n  - id: a\n    url: [unclosed\n", "sources.yaml:3: not valid YAML: "),
        ("feeds: []\n", "sources.yaml:1: sources: expected a list"),
    ],
)  # fmt: skip
def test_yaml_errors_are_one_line(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path}{os.sep}{expected}"), message


def test_relative_file_urls_resolve_against_the_yaml_folder(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - {id: s, url: 'file:feeds/x.xml'}\n"
                    "  - {id: g, type: gdelt, query: 'turkish army'}\n")  # fmt: skip
    local, gdelt = load_sources(path)
    assert local.url == (tmp_path / "feeds" / "x.xml").as_uri()
    assert gdelt.url.startswith("https://api.gdeltproject.org/api/v2/doc/doc?query=turkish%20army")
    assert "mode=artlist" in gdelt.url
    assert "format=json" in gdelt.url


def test_bundled_defaults_load_and_the_sample_feed_parses() -> None:
    sources = load_sources(DEFAULT_SOURCES_FILE)
    assert len(sources) >= 12
    sample = next(s for s in sources if s.id == "sample")
    body = Path(sample.url.removeprefix("file://")).read_bytes()
    feed = auto.parse(body, sample.url, {})
    assert len(feed.entries) == 12
    assert all(e.published and e.published.year == 2026 for e in feed.entries)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM:80/a?utm_source=x&b=2&a=1#frag", "http://example.com/a?a=1&b=2"),
        ("https://x.test:443", "https://x.test/"),
        ("https://x.test:8443/p?fbclid=1&gclid=2&q=a%20b", "https://x.test:8443/p?q=a%20b"),
        ("/rel/path?utm_medium=rss", "http://base.test/rel/path"),
        ("tag:example.org,2026:1", "tag:example.org,2026:1"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url, "http://base.test/feeds/f.xml") == expected


def test_article_ids_are_stable_and_scoped() -> None:
    one = article_id(canonical_url("http://a.test/x?utm_source=1"))
    assert one == article_id("http://a.test/x")
    assert article_id(None, guid="g", source="s1") != article_id(None, guid="g", source="s2")
    with pytest.raises(ValueError, match="link or a guid"):
        article_id(None)


JSON_FEED = b"""{"version": "https://jsonfeed.org/version/1.1", "title": "J",
 "hubs": [{"type": "WebSub", "url": "https://hub.test/"}],
 "items": [{"id": 7, "url": "https://j.test/1", "title": "One",
            "content_html": "<p>Hi <b>there</b></p>",
            "date_published": "2026-01-02T03:04:05+01:00"},
           {"id": "2", "title": "No url", "date_published": "Fri, 31 May 2019 12:17:58 -0700"}]}"""


def test_json_feed() -> None:
    feed = auto.parse(JSON_FEED, "https://j.test/feed.json", {})
    assert feed.kind == "jsonfeed"
    assert feed.hub == "https://hub.test/"
    first, second = feed.entries
    assert (first.guid, first.link, first.title) == ("7", "https://j.test/1", "One")
    assert first.published == datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert second.link is None
    assert second.published is not None


def test_news_sitemap_keeps_only_news_entries() -> None:
    feed = auto.parse(SITEMAP, "https://s.test/news.xml", {})
    assert feed.kind == "sitemap"
    assert [(e.link, e.title, e.language) for e in feed.entries] == [
        ("https://s.test/a", "Sitemap story", "en")
    ]


def test_gdelt_article_list() -> None:
    feed = auto.parse(GDELT, "https://api.gdeltproject.org/api/v2/doc/doc?x", {})
    assert feed.kind == "gdelt"
    assert feed.entries[0].published == datetime(2026, 2, 3, 10, 15, tzinfo=UTC)


def test_sitemap_entity_expansion_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaaaaaaaa">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">&a;</urlset>'
    )
    with pytest.raises(ParseError, match="invalid sitemap XML"):
        sitemap.parse(bomb, "https://s.test/x", {})


def test_encoding_declared_only_in_http_header() -> None:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        "<title>Caf\xe9 t\xfcrk</title><link>http://e.test/1</link></item></channel></rss>"
    )
    feed = auto.parse(body.encode("windows-1252"), "http://e.test/f",
                      {"content-type": "text/xml; charset=windows-1252"})  # fmt: skip
    assert feed.entries[0].title == "Café türk"


def test_wrong_declared_encoding_is_recovered_with_a_warning() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>Caf\xe9</title><link>http://e.test/1</link></item></channel></rss>"
    )
    feed = auto.parse(body.encode("latin-1"), "http://e.test/f", {})
    assert feed.entries[0].link == "http://e.test/1"
    assert feed.warning


@pytest.mark.parametrize("body", [b"", b"   \n", b"{not json", b"[1, 2]", b"<html><p>hi</p>"])
def test_not_a_feed(body: bytes) -> None:
    with pytest.raises(ParseError):
        auto.parse(body, "http://e.test/f", {})


def test_html_to_text_and_language() -> None:
    html = "<p>Turkish <b>drones</b> struck&nbsp;targets.</p><script>x()</script>"
    assert html_to_text(html) == "Turkish drones struck targets."
    assert detect_language("Türk insansız hava araçları Kuzey Irak'ta hedefleri vurdu") == "tr"
    assert detect_language("short") is None


def test_publication_time_is_utc_clamped_and_defaulted() -> None:
    fetched = datetime(2026, 3, 1, 12, tzinfo=UTC)
    skew = timedelta(minutes=10)
    assert normalise_time(None, fetched, skew) == fetched
    assert normalise_time(fetched + timedelta(days=2), fetched, skew) == fetched
    plus3 = datetime(2026, 3, 1, 14, tzinfo=UTC).astimezone(tz=None)
    assert normalise_time(plus3, fetched, skew).tzinfo == UTC


def _article(n: str, url: str, title: str, text: str) -> Article:
    return Article(id=n, url=url, title=title, text=text, source="s")


async def test_syndicated_copies_share_a_story(redis: Redis) -> None:
    index = StoryIndex(redis, ttl_seconds=3600)
    text = ("Turkish armed drones struck PKK positions in the Qandil mountains of northern "
            "Iraq on Tuesday, the Turkish defence ministry said in a statement.")  # fmt: skip
    first = _article("a1", "https://wire.test/1", "Turkish drones strike PKK in Iraq", text)
    copy = _article("a2", "https://paper.test/9", "Turkish drones strike PKK in Iraq",
                    text + " (Reuters)")  # fmt: skip
    other = _article("a3", "https://paper.test/10", "Lira steadies as bank holds rates",
                     "The Turkish lira was little changed after the central bank kept its "
                     "policy rate unchanged on Thursday.")  # fmt: skip
    # Within one batch, a copy joins the story of an earlier item of the same batch.
    items = [(a.id, fingerprint(a)) for a in (first, copy, other)]
    batch = group(items, await index.buckets([v for _, v in items]))
    assert [a.story_id for a in batch] == ["a1", "a1", "a3"]
    async with redis.pipeline(transaction=True) as pipe:
        index.remember(pipe, batch[:1])
        await pipe.execute()
    # Across batches, through Redis: the remembered first article's story is found again.
    later = _article("a4", "https://other.test/4", "Turkish drones strike PKK in Iraq",
                     text + " (AP)")  # fmt: skip
    value = fingerprint(later)
    assert group([("a4", value)], await index.buckets([value])) == [Assigned("a1", value)]
    # Buckets are capped and expire.
    key = next(k for k in await redis.keys(companion(ARTICLES, "story:*")))
    assert 0 < await redis.ttl(key) <= 3600
    # Too little text for a fingerprint: the article is its own story.
    short = fingerprint(_article("a5", "u", "Short", ""))
    assert group([("a5", short)], await index.buckets([short])) == [Assigned("a5", None)]


def test_feed_entity_bombs_and_external_entities_are_contained() -> None:
    """A billion-laughs DTD is cut off by the parser's amplification limit; files stay unread."""
    entities = b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(8)
    )
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">' + entities + b"]>"
        b'<rss version="2.0"><channel><title>t</title><item><title>&i;</title>'
        b"<link>http://e.test/1</link><description>&i;</description></item></channel></rss>"
    )
    feed = auto.parse(bomb, "http://e.test/f", {})
    assert feed.warning is not None
    assert all(len(e.title or "") + len(e.summary or "") < 1_000 for e in feed.entries)
    external = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<rss version="2.0"><channel><title>t</title><item><title>&x;</title>'
        b"<link>http://e.test/1</link></item></channel></rss>"
    )
    [entry] = auto.parse(external, "http://e.test/f", {}).entries
    assert "root:" not in (entry.title or "")


@pytest.mark.parametrize("count", [1, 2, 3, 57, 199, 200, 201, 450])
def test_simhash_is_the_simhash_packages_bit_for_bit(count: int) -> None:
    rng = random.Random(count)
    words = ["türk", "ordusu", "قوات", "drone", "Qandil", *(f"w{n}" for n in range(40))]
    features = [" ".join(rng.choices(words, k=3)) for _ in range(count)]
    assert simhash64(features) == Simhash(features, f=64).value
