"""The shared language detector: the languages Vigil watches, one model per process."""

from __future__ import annotations

import threading

import pytest

from shared import language
from shared.language import detect_language, load_models

SAMPLES = {
    "tr": "Türk insansız hava araçları Kuzey Irak'ta PKK hedeflerini vurdu, bakanlık açıkladı.",
    "ckb": "هێزەکانی تورکیا بۆردومانی ناوچە سنوورییەکانی هەرێمی کوردستانیان کرد "
    "و چەند گوندێک چۆڵ کران.",
    "kmr": "Hêzên Tirkiyê herêmên sînorî yên Herêma Kurdistanê bombebaran kirin "
    "û gelek gund hatin valakirin.",
    "hy": "Թուրքիան զինվորներ է ուղարկել Ադրբեջան, հայտնում է Հայաստանի "
    "պաշտպանության նախարարությունը։",
    "az": "Azərbaycan Müdafiə Nazirliyi Türkiyə ilə birgə hərbi təlimlərin başladığını bildirib.",
    "so": "Ciidamada Turkiga ayaa sii wadaya tababarka askarta xoogga dalka Soomaaliya ee ku sugan "
    "xerada Turksom ee magaalada Muqdisho, sida ay sheegtay wasaaradda gaashaandhigga.",
    "he": "משרד החוץ הטורקי הודיע כי טורקיה תשלח כוחות צבא נוספים לצפון סוריה בשבוע הבא.",
    "fa": "ترکیه اعلام کرد که نیروهای نظامی بیشتری را به شمال سوریه اعزام خواهد کرد.",
    "ar": "أعلنت وزارة الدفاع التركية إرسال قوات إضافية إلى شمال سوريا الأسبوع المقبل.",
    "el": "Η Τουρκία έστειλε πολεμικά πλοία στην ανατολική Μεσόγειο, ανακοίνωσε το υπουργείο.",
    "en": "Turkish troops arrived in Tripoli, the Turkish defence ministry said on Tuesday.",
}


@pytest.mark.parametrize(("code", "text"), sorted(SAMPLES.items()))
def test_languages_vigil_watches(code: str, text: str) -> None:
    assert detect_language(text) == code


def test_too_little_text_or_unreadable_text() -> None:
    assert detect_language("short") is None
    assert detect_language("   \n\t  ") is None
    # Control characters and lone surrogates make CLD2 refuse the text: still an answer.
    unreadable = "Ciidamada \x01\x02 Turkiga ayaa \udc80 sii wadaya tababarka"
    assert detect_language(unreadable) is not None


def test_the_model_is_loaded_once_however_many_threads_ask() -> None:
    language._model = None
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def first_call() -> None:
        barrier.wait()
        detect_language(SAMPLES["en"])
        seen.append(language._model)

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8
    assert len({id(model) for model in seen}) == 1
    loaded = language._model
    load_models()
    assert language._model is loaded
