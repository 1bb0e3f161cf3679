"""Content words in other languages: each text's own stop words, words cut apart where they are
not spaced, Arabic folded — so the relevance floor and the ranking work beyond English."""

from __future__ import annotations

import random

from ingest.terms import content_words, covered, text_language
from tests.languages import SAMPLES


def test_english_is_as_before() -> None:
    assert content_words("Who was the son of Zeus?") == {"son", "zeu"}
    assert content_words("What is it?") == set()


def test_each_text_drops_its_own_languages_function_words() -> None:
    # French words with their light stems too, without plural and gender endings (latin_stem)
    assert content_words("Qui était le fils de Zeus et où est son temple ?") == {
        "fil",
        "zeu",
        "temple",
        "templ",
    }
    assert content_words("Où vivent les chevaux ?") & content_words("un cheval blanc") == {"cheval"}
    assert content_words("Wer war der Sohn des Zeus und wo ist sein Tempel?") >= {"sohn", "tempel"}
    assert "der" not in content_words("Wer war der Sohn des Zeus?")
    assert content_words("Какие стены у Кремля?") == {"стены", "кремля"}


def test_the_language_of_a_text_comes_from_its_script_and_function_words() -> None:
    langs = {k: text_language(t) for k, t in SAMPLES.items()}
    assert langs["fr"] == "fr" and langs["ru"] == "ru" and langs["be"] == "be"
    assert langs["ar"] == "ar" and langs["hi"] == "hi" and langs["en"] == "en"


def test_a_japanese_question_meets_its_words_inside_a_sentence() -> None:
    asked = content_words("日本語の組版で禁則処理とは何ですか")
    assert {"組版", "禁則", "処理"} <= asked
    assert not any("と" in w or "で" in w for w in asked)  # particles are not topics
    assert asked <= content_words(SAMPLES["ja"])
    assert content_words("ルビとは") <= content_words(SAMPLES["ja"])


def test_a_chinese_question_meets_its_words_inside_a_sentence() -> None:
    asked = content_words("长城是什么时候列入世界文化遗产的？")
    held = content_words(SAMPLES["zh"])
    assert {"长城", "世界", "文化", "遗产"} <= asked & held


def test_a_korean_word_with_its_particle_meets_the_bare_word() -> None:
    assert "한글" in content_words("한글은") & content_words("한글을 누가 만들었나?")


def test_arabic_is_folded_so_every_spelling_of_a_word_meets() -> None:
    plain = content_words("الغذاء الصحي")
    pointed = content_words("الْغِذَاءُ الصِّحِّيُّ")
    bare = content_words("غذاء صحي")
    assert plain == pointed == bare
    assert {"غذاء", "صحي"} <= plain  # the light stems (with the root of a فعال shape, غذء)
    assert content_words("ما هو دور الغذاء في الوقاية من السرطان؟") == {
        "دور",
        "غذاء",
        "غذء",  # the letters a broken plural of its shape would share
        "وقا",  # light stemming (the ending ية): a consistent stem, not a dictionary word
        "سرط",
    }


def test_arabic_case_and_number_endings_meet_the_bare_word() -> None:
    asked = content_words("ما دور التغذية في الوقاية من السرطان؟")
    said = content_words("تلعب التغذية السليمة دورًا مهمًا في الوقاية من السرطان.")
    assert asked <= said  # دورًا (accusative) is دور
    assert content_words("الخضروات") == content_words("خضروات") != content_words("خضر")


def test_devanagari_words_keep_their_vowel_signs() -> None:
    assert content_words("महाभारत के रचयिता कौन हैं?") == {"महाभारत", "रचयिता"}
    assert "महाभारत" in content_words(SAMPLES["hi"])


def test_a_texts_language_is_told_by_its_script_then_its_function_words() -> None:
    from ingest.terms import detect_language

    for lang in ("ja", "zh", "ko", "th", "ar", "ru", "be", "fr", "en", "hi"):
        sentences = [s for s in SAMPLES[lang].replace("。", "。\n").splitlines() if s.strip()]
        assert detect_language(sentences or [SAMPLES[lang]]) == lang, lang
    assert detect_language(["שלום עולם, זהו משפט בעברית."]) == "he"
    assert detect_language(["", "  ", "—"]) == ""
    # Most passages decide: a Japanese book quoting an English sentence is Japanese.
    assert detect_language([SAMPLES["ja"], SAMPLES["ja"], SAMPLES["en"]]) == "ja"


def test_covered_counts_what_content_words_would_in_every_language() -> None:
    """The hybrid search's shortcut (covered) gives the count of the full analysis, for English
    words and their stems, digits, stop words, accented and non-Latin text."""
    rng = random.Random(7)
    vocabulary = [
        "the",
        "studies",
        "study",
        "classes",
        "class",
        "running",
        "runs",
        "ran",
        "volcanoes",
        "volcano",
        "1999",
        "12",
        "7",
        "a_b",
        "x",
        "of",
        "and",
        "cities",
        "city's",
        "ocean",
        "oceans",
        "glasses",
        "glass",
        "sing",
        "sings",
        "sang",
        "Röntgen",
        "café",
        "cathédrale",
        "cathedrales",
        "Häuser",
        "Haus",
        "москва",
        "москвы",
        "東京の大学",
        "الكتاب",
        "بالكتب",
    ]
    for _ in range(400):
        passage = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 40)))
        question = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 4)))
        for language in ("en", "fr", "de", "ru", "ja", "ar", "xx"):
            asked = content_words(question, language)
            expected = len(asked & content_words(passage, language))
            assert covered(asked, passage, language) == expected, (question, passage, language)


def test_arabic_broken_plurals_meet_their_singulars() -> None:
    """Question and passage share a word although one has the singular and the other a broken
    plural (or the feminine, or the nisba), which no ending stripped reaches."""
    pairs = [
        ("الكتاب", "قرأت الكتب في المكتبة"),
        ("الرجل", "جاء الرجال"),
        ("المسجد", "زرنا المساجد القديمة"),
        ("المدرسة", "بنيت المدارس"),
        ("الولد", "لعب الأولاد"),
        ("المدينة", "أكبر مدنها"),
        ("القلب", "أمراض القلوب"),
        ("العربية", "الخط العربي"),
        ("السلاح", "مخازن الأسلحة"),
        ("الشهر", "بعد ستة أشهر"),
        ("كبير", "أكبر مدنها"),
    ]
    for question, passage in pairs:
        asked = content_words(question, "ar")
        assert asked & content_words(passage, "ar"), (question, passage)
    assert not content_words("الكتاب", "ar") & content_words("جاء الرجال", "ar")
