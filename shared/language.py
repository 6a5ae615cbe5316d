"""The language an article is written in (py3langid), shared by the poller and the classifier."""

from __future__ import annotations

import py3langid

_MIN_LANGUAGE_CHARS = 20
# py3langid's names for the two Kurdish standards Vigil reads: Latin-script Kurmanji comes out
# as the macrolanguage "ku", Arabic-script Sorani as its neighbour "sdh". Vigil uses the
# ISO 639-3 codes of the standards themselves.
_KURDISH = {"ku": "kmr", "sdh": "ckb"}


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (``kmr``/``ckb`` for Kurdish); None if too short."""
    if len(text) < _MIN_LANGUAGE_CHARS:
        return None
    language, _ = py3langid.classify(text)
    return _KURDISH.get(str(language), str(language))
