"""Chunking: passages fit the embedder's window, cover the text, and point back at it exactly."""

from __future__ import annotations

import random

import pytest

from ingest import chunking
from ingest.chunking import chunk_document, embedding_text, estimate_tokens
from ingest.documents import DocumentText, Section


def _doc(sections: list[tuple[str, list[str]]], title: str = "Doc") -> DocumentText:
    text = ""
    secs = []
    for heading, paragraphs in sections:
        start = len(text)
        text += "\n\n".join(paragraphs)
        secs.append(Section(heading, start, len(text)))
        text += "\n\n"
    return DocumentText(title, text.rstrip("\n"), secs)


LONG = " ".join(
    f"Sentence {i} says the harbour of Bristol saw ship number {i} leave." for i in range(80)
)


def test_every_chunk_is_the_exact_slice_its_locator_names() -> None:
    doc = _doc([("Intro", ["Short lead.", LONG]), ("History", ["Another part.", "And more."])])
    chunks = chunk_document("src", 7, "A/Doc", doc)
    assert len(chunks) > 2
    for i, c in enumerate(chunks):
        assert doc.text[c.locator.start : c.locator.end] == c.text
        assert c.locator.ordinal == 7 and c.locator.chunk_index == i
        assert c.chunk_id == f"src:7:{i}"


def test_chunks_fit_the_window_and_cover_every_sentence() -> None:
    doc = _doc([("", [LONG, LONG.replace("Bristol", "Leith")])])
    chunks = chunk_document("s", 0, "d", doc, max_tokens=120, overlap_tokens=20)
    assert all(estimate_tokens(c.text) <= 120 for c in chunks)
    covered = "\n".join(c.text for c in chunks)
    for sentence in LONG.split(". "):
        assert sentence.rstrip(".") in covered


def test_consecutive_chunks_of_a_long_paragraph_overlap() -> None:
    doc = _doc([("", [LONG])])
    chunks = chunk_document("s", 0, "d", doc, max_tokens=100, overlap_tokens=30)
    assert len(chunks) >= 3
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.locator.start < a.locator.end  # shares the tail of the previous chunk
        assert b.locator.end > a.locator.end  # but always moves on


def test_chunks_never_cross_sections_and_carry_their_heading() -> None:
    doc = _doc(
        [("Lead", ["Bees make honey."]), ("Communication", ["Bees dance to point at flowers."])]
    )
    chunks = chunk_document("s", 0, "d", doc)
    assert [(c.locator.section, c.text) for c in chunks] == [
        ("Lead", "Bees make honey."),
        ("Communication", "Bees dance to point at flowers."),
    ]


def test_text_outside_any_section_is_kept() -> None:
    text = "Before any heading.\n\nInside."
    doc = DocumentText("T", text, [Section("H", text.index("Inside"), len(text))])
    chunks = chunk_document("s", 0, "d", doc)
    assert [(c.locator.section, c.text) for c in chunks] == [
        ("", "Before any heading."),
        ("H", "Inside."),
    ]


def test_a_giant_word_run_without_punctuation_is_still_cut() -> None:
    doc = _doc([("", [" ".join(["word"] * 1000)])])
    chunks = chunk_document("s", 0, "d", doc, max_tokens=200)
    assert len(chunks) >= 5
    assert all(estimate_tokens(c.text) <= 200 for c in chunks)


@pytest.mark.parametrize("alphabet", ["ascii", "mixed"])
def test_the_token_estimate_follows_its_rule_on_any_text(alphabet: str) -> None:
    """Chunk boundaries (and so chunk ids) depend on the estimate: the fast path for ASCII text
    must count exactly what the rule says, control characters and marks included."""
    pool = (
        "".join(chr(i) for i in range(128))
        if alphabet == "ascii"
        else "abcXYZ019_ .,;:!?'\"-()\n\téüñДжзعربيहिंदी日本語。！…—“”\u0301\u200b\x85\xa0"
    )
    rng = random.Random(alphabet)
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 120)))
        assert estimate_tokens(text) == chunking._word_by_word_estimate(text), repr(text)
    assert estimate_tokens("a bb ccccccc dddddddddddd.") == 1 + 1 + 2 + 3 + 1


def test_empty_document_gives_no_chunks() -> None:
    assert chunk_document("s", 0, "d", DocumentText("T", "", [])) == []


def test_embedded_text_names_title_and_section() -> None:
    assert embedding_text("Honey bee", "Communication", "They dance.") == (
        "Honey bee — Communication: They dance."
    )
    assert embedding_text("Honey bee", "Honey bee", "Lead.") == "Honey bee: Lead."


@pytest.mark.parametrize(
    "paragraph",
    [
        LONG,
        " ".join(
            ["Беларуская мова — нацыянальная мова беларусаў, адна з усходнеславянскіх моў."] * 30
        ),
        " ".join(
            ["اللغة العربية هي أكثر اللغات السامية تحدثاً وإحدى أكثر اللغات انتشاراً في العالم."] * 30
        ),
    ],
)
def test_chunks_stay_under_the_models_256_word_piece_limit(paragraph: str) -> None:
    """The real tokenizer (when installed) never sees a chunk it would truncate."""
    tokenizers = pytest.importorskip("tokenizers")
    from ingest.embedding import EmbedderUnavailable, default_model_dir

    try:
        folder = default_model_dir()
    except EmbedderUnavailable:
        pytest.skip("all-MiniLM-L6-v2 package not installed")
    tok = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    doc = _doc([("Section heading", [paragraph])], title="Some article title")
    for c in chunk_document("s", 0, "d", doc):
        text = embedding_text(doc.title, c.locator.section, c.text)
        assert len(tok.encode(text).ids) <= 256


def test_sentences_do_not_end_at_abbreviations_initials_or_quoted_questions() -> None:
    from ingest.chunking import sentence_spans

    text = (
        'Dr. Smith met J. R. R. Tolkien in 1954. "Is it far?" he asked. The U.S. Army left.'
        "\n\nA new paragraph starts here."
    )
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Dr. Smith met J. R. R. Tolkien in 1954.",
        '"Is it far?" he asked.',
        "The U.S. Army left.",
        "A new paragraph starts here.",
    ]
