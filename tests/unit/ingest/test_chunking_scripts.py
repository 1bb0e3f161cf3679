"""Chunks sized and cut right in scripts other than Latin: sentence ends in Japanese, Chinese,
Hindi and Arabic; a paragraph without spaces cut into windows; token estimates per script."""

from __future__ import annotations

import pytest

from ingest.chunking import chunk_document, estimate_tokens, sentence_spans
from ingest.documents import DocumentText, Section
from tests.languages import SAMPLES


@pytest.mark.parametrize(
    ("lang", "first_sentence_end"),
    [
        ("ja", "配置される。"),
        ("zh", "追溯到西周时期。"),
        ("hi", "महाकाव्य है।"),
        ("ar", "غير طبيعي للخلايا."),
    ],
)
def test_sentences_end_at_each_scripts_full_stop(lang: str, first_sentence_end: str) -> None:
    text = SAMPLES[lang]
    spans = sentence_spans(text)
    assert len(spans) >= 4
    start, end = spans[0]
    assert text[start:end].endswith(first_sentence_end)
    assert "".join(text[a:b] for a, b in spans).replace(" ", "") == text.replace(" ", "")


def test_a_cjk_full_stop_needs_no_space_but_a_closing_quote_stays_with_its_sentence() -> None:
    text = "彼は「行こう。」と言った。雨が降っていた。"
    parts = [text[a:b] for a, b in sentence_spans(text)]
    assert parts == ["彼は「行こう。」", "と言った。", "雨が降っていた。"] or parts == [
        "彼は「行こう。」と言った。",
        "雨が降っていた。",
    ]


def test_the_devanagari_danda_and_the_urdu_full_stop_end_sentences() -> None:
    assert len(sentence_spans("यह पहला वाक्य है। यह दूसरा है॥ तीसरा।")) == 3
    assert len(sentence_spans("یہ پہلا جملہ ہے۔ یہ دوسرا ہے۔")) == 2


def test_vowel_signs_are_part_of_a_word_not_punctuation() -> None:
    # महाभारत: 4 letters + 3 vowel signs; the tokenizer keeps the spacing signs (ा) and drops
    # the others. Before, each sign counted as a mark of its own and split the word in pieces.
    assert estimate_tokens("महाभारत") <= 7
    assert estimate_tokens("महाभारत महाभारत") == 2 * estimate_tokens("महाभारत")


def test_arabic_points_are_not_counted() -> None:
    plain = "الغذاء الصحي يقوي جهاز المناعة"
    pointed = "الْغِذَاءُ الصِّحِّيُّ يُقَوِّي جِهَازَ الْمَنَاعَةِ"
    assert estimate_tokens(pointed) == estimate_tokens(plain)


def test_han_characters_cost_one_each_and_hangul_syllables_more() -> None:
    assert estimate_tokens("长城是中国古代的军事防御工程") == 14
    assert estimate_tokens("한글은") > 3


def _chunks(text: str) -> list[str]:
    doc = DocumentText("Title", text, [Section("", 0, len(text))])
    chunks = chunk_document("src", 0, "doc", doc, max_tokens=200, overlap_tokens=0)
    for c in chunks:
        assert c.text == text[c.locator.start : c.locator.end]
    return [c.text for c in chunks]


def test_a_long_paragraph_without_spaces_is_cut_into_windows_that_fit() -> None:
    text = SAMPLES["ja"].replace("。", "、") * 12  # one "sentence" of ~1,900 characters
    chunks = _chunks(text)
    assert len(chunks) >= 8
    assert all(estimate_tokens(c) <= 200 for c in chunks)


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_every_script_gives_passages_of_a_sensible_size(lang: str) -> None:
    """A 40-paragraph text in each script makes passages of 100-200 estimated tokens, not the
    hundreds of scraps (Devanagari) or the window-sized single pieces (Japanese) of before."""
    text = "\n\n".join([SAMPLES[lang]] * 40)
    sizes = [estimate_tokens(c) for c in _chunks(text)]
    assert max(sizes) <= 200
    assert sum(sizes) / len(sizes) >= 100, sizes[:10]
