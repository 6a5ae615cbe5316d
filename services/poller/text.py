"""Clean text from feed HTML."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser

_SPACE = re.compile(r"\s+")


def html_to_text(value: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed; plain text passes through."""
    if "<" not in value and "&" not in value:
        return _SPACE.sub(" ", value).strip()
    tree = LexborHTMLParser(value)
    for node in tree.css("script, style, noscript, iframe"):
        node.decompose()
    root = tree.body or tree.root
    text = root.text(separator=" ") if root is not None else ""
    return _SPACE.sub(" ", text).strip()
