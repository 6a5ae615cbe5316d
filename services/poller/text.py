"""Clean text from feed HTML, and the language it is written in."""

from __future__ import annotations

import re

import py3langid
from selectolax.lexbor import LexborHTMLParser

_SPACE = re.compile(r"\s+")
_MIN_LANGUAGE_CHARS = 20


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


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language; None when there is too little text to tell."""
    if len(text) < _MIN_LANGUAGE_CHARS:
        return None
    language, _ = py3langid.classify(text)
    return str(language)
