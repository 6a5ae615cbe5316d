"""The fast RSS 2.0 / Atom 1.0 reader reads what feedparser reads, or declines the document."""

from __future__ import annotations

import pytest

from services.poller.adapters import auto
from services.poller.adapters.feed import read_with_feedparser
from services.poller.adapters.xmlfeed import read_plain_feed
from services.poller.entries import Feed
from services.poller.text import html_to_text
from tests.poller_support import FEEDS

URL = "http://feeds.test/dir/feed.xml"

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:atom="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>Wire</title><link>http://wire.test/</link><language>tr</language>
<atom:link rel="hub" href="http://hub.test/"/><atom:link rel="self" href="/dir/feed.xml"/>
<item><title>  Türk &amp;amp; <![CDATA[<b>drones</b>]]> </title><guid>abc</guid>
  <pubDate>Tue, 24 Nov 2026 08:00:00 +0300</pubDate><dc:language>tr</dc:language></item>
<item><title>b</title><link>/relative/2</link><guid isPermaLink="false">id-2</guid>
  <description>&lt;p&gt;Body&lt;/p&gt;</description><content:encoded>full</content:encoded>
  <dc:date>2002-09-28T20:01:19Z</dc:date><media:content url="http://m.test/x.jpg"/></item>
<item><title>c</title><guid isPermaLink="true">http://wire.test/3</guid>
  <pubDate>not a date</pubDate><content:encoded><![CDATA[<p>only content</p>]]></content:encoded>
  <category>World</category><enclosure url="http://m.test/a.mp3" type="audio/mpeg"/></item>
<item><description>no title, no link</description></item>
</channel></rss>""".encode()

ATOM = b"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de"><title>t</title>
<link rel="hub" href="http://hub.test/"/><link rel="self" href="/self"/>
<entry><id>tag:wire.test,2026:1</id><title type="html">A &amp;lt;b&amp;gt;</title>
  <link rel="enclosure" href="/m.mp3"/><link href="/a/1"/>
  <updated>2026-01-01T00:00:00+02:00</updated><summary>s</summary>
  <content type="html">&lt;p&gt;c&lt;/p&gt;</content><author><name>N</name></author></entry>
<entry><id>relative-id</id><title>no link</title><published>2026-02-01T00:00:00Z</published>
  <updated>2026-03-01T00:00:00Z</updated><content>only content</content></entry>
</feed>"""


def _same(fast: Feed, slow: Feed) -> None:
    assert (fast.kind, fast.hub, fast.topic) == (slow.kind, slow.hub, slow.topic)
    assert len(fast.entries) == len(slow.entries)
    for mine, theirs in zip(fast.entries, slow.entries, strict=True):
        assert (mine.link, mine.guid, mine.published, mine.language) == (
            theirs.link, theirs.guid, theirs.published, theirs.language
        )  # fmt: skip
        # Markup and whitespace may differ; the article text built from them may not.
        assert html_to_text(mine.title) == html_to_text(theirs.title)
        assert html_to_text(mine.summary) == html_to_text(theirs.summary)


@pytest.mark.parametrize("body", [RSS, ATOM], ids=["rss", "atom"])
def test_reads_what_feedparser_reads(body: bytes) -> None:
    fast = read_plain_feed(body, URL, {"content-type": "application/rss+xml"})
    assert fast is not None
    assert fast.entries
    _same(fast, read_with_feedparser(body, URL, {"content-type": "application/rss+xml"}))


def test_agrees_with_feedparser_on_the_teams_feed_corpus() -> None:
    assert FEEDS.is_dir(), f"the team's feed corpus is missing: {FEEDS}"
    read = 0
    for path in sorted(FEEDS.glob("*.xml")):
        body, url = path.read_bytes(), f"http://feeds.test/{path.name}"
        for headers in ({"content-type": "application/xml"}, {"content-type": "text/xml"}):
            fast = read_plain_feed(body, url, headers)
            if fast is not None:
                read += 1
                _same(fast, read_with_feedparser(body, url, headers))
    assert read >= 20  # it takes the plain ones, under both content types


DECLINED = {
    "a DTD": RSS.replace(b"<rss ", b'<!DOCTYPE rss [<!ENTITY e "x">]><rss ', 1),
    "xml:base": RSS.replace(b"<channel>", b'<channel xml:base="http://other.test/">', 1),
    "another encoding": RSS.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-9"', 1),
    "a title feedparser takes from media:title": RSS.replace(
        b"<category>World</category>", b"<media:title>other</media:title>", 1
    ),
    "Atom elements in an RSS item": RSS.replace(b"<guid>abc</guid>", b"<id>abc</id>", 1),
    "RSS 0.91": RSS.replace(b'version="2.0"', b'version="0.91"', 1),
    "XHTML content": ATOM.replace(
        b'<content type="html">&lt;p&gt;c&lt;/p&gt;</content>',
        b'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">c</div></content>',
    ),
    "ill-formed XML": RSS[:-30],
    "RSS 1.0": b'<?xml version="1.0"?><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">'
    b"<item><title>t</title><link>http://x/</link></item></rdf:RDF>",
}


@pytest.mark.parametrize("body", DECLINED.values(), ids=DECLINED.keys())
def test_declines_what_only_feedparser_reads_right(body: bytes) -> None:
    assert read_plain_feed(body, URL, {"content-type": "application/xml"}) is None


def test_a_charset_header_other_than_utf8_is_declined() -> None:
    assert read_plain_feed(RSS, URL, {"Content-Type": "text/xml; charset=windows-1254"}) is None
    assert read_plain_feed(RSS, URL, {"Content-Type": "text/xml; charset=UTF-8"}) is not None


def test_auto_parse_falls_back_to_feedparser() -> None:
    ill_formed = auto.parse(DECLINED["ill-formed XML"], URL, {})
    assert ill_formed.warning  # feedparser recovered what it could, with a warning
    assert [e.guid for e in auto.parse(RSS, URL, {}).entries][:1] == ["http://feeds.test/dir/abc"]
