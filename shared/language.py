"""The language an article is written in (py3langid), shared by the poller and the classifier."""

from __future__ import annotations

import py3langid

_MIN_LANGUAGE_CHARS = 20


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language; None when there is too little text to tell."""
    if len(text) < _MIN_LANGUAGE_CHARS:
        return None
    language, _ = py3langid.classify(text)
    return str(language)
