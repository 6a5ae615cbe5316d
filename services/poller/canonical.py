"""Canonical article URLs and the stable ids derived from them."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote_plus

from yarl import URL

_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "oly_", "_hs")
_TRACKING_NAMES = frozenset({
    "fbclid", "gclid", "gbraid", "wbraid", "dclid", "msclkid", "yclid", "igshid", "twclid",
    "mc_cid", "mc_eid", "mkt_tok", "_ga", "_gl", "vero_id", "vero_conv", "ncid", "cmpid",
    "spm", "s_cid", "at_medium", "at_campaign", "ito", "rss_src",
})  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_NAMES or lowered.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str, base: str | None = None) -> str:
    """The URL without tracking parameters or fragment, host lower-cased, default port dropped.

    Relative references are resolved against ``base``. Other schemes (``tag:``, ``urn:``) are
    returned stripped of whitespace only.
    """
    text = url.strip()
    try:
        parsed = URL(text)
        if base and not parsed.absolute:
            parsed = URL(base).join(parsed)
    except ValueError:
        return text
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or not parsed.host:
        return text
    pairs = [p for p in parsed.raw_query_string.split("&") if p]
    query = sorted(p for p in pairs if not _is_tracking(unquote_plus(p.split("=", 1)[0])))
    port = parsed.explicit_port
    clean = URL.build(
        scheme=scheme,
        user=parsed.raw_user,
        password=parsed.raw_password,
        host=parsed.host.lower().rstrip("."),
        port=None if port == _DEFAULT_PORTS[scheme] else port,
        path=parsed.raw_path or "/",
        query_string="&".join(query),
        encoded=True,
    )
    return str(clean)


def article_id(canonical: str | None, *, guid: str | None = None, source: str = "") -> str:
    """A stable id: from the canonical URL, else from the source's guid (guids are per feed)."""
    if canonical:
        key = f"url:{canonical}"
    elif guid:
        key = f"guid:{source}:{guid.strip()}"
    else:
        raise ValueError("an article needs a link or a guid")
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
