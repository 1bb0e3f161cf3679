"""Citation parsing and mapping: what the user sees under an answer."""

from __future__ import annotations

import pytest

from app.chat.citations import numbers_in, parse_citations, resolve
from app.chat.retrieval import Passage
from ingest.documents import Locator


def passages(n: int) -> list[Passage]:
    return [
        Passage(
            number=i,
            chunk_id=f"src:{i}:0",
            text=f"text {i}",
            locator=Locator("src", f"Doc_{i}", f"Doc {i}", f"Section {i}", i, 0, 0, 6),
            source_title="Test Wiki",
        )
        for i in range(1, n + 1)
    ]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Paris is the capital [1].", [1]),
        ("Both [1, 3] agree.", [1, 3]),
        ("Adjacent [1][2].", [1, 2]),
        ("A range [1-3].", [1, 2, 3]),
        ("An en dash [2–4].", [2, 3, 4]),
        ("Spaced [ 2 ] and [Source 4].", [2, 4]),
        ("Repeated [2] then [1] then [2].", [2, 1]),
        ("No citation here.", []),
        ("Not a citation: [a] or [] or [1.5 km].", []),
    ],
)
def test_parse_citations_forms(answer: str, expected: list[int]) -> None:
    assert parse_citations(answer) == expected


def test_absurd_range_is_not_expanded() -> None:
    assert numbers_in("1-3000") == [1]
    assert numbers_in("3-1") == [3]


def test_citations_to_numbers_not_given_are_removed_from_the_answer() -> None:
    result = resolve("Etna is active [7]. It is in Sicily [2][9]. See [1-4].", passages(3))
    assert result.text == "Etna is active. It is in Sicily [2]. See [1][2][3]."
    assert result.citations == [2, 1, 3]
    assert result.dropped == [7, 9, 4]


def test_sources_list_cited_first_in_citation_order_then_uncited() -> None:
    result = resolve("First [3], then [1].", passages(4))
    assert [(s.number, s.cited) for s in result.sources] == [
        (3, True),
        (1, True),
        (2, False),
        (4, False),
    ]
    first = result.sources[0]
    assert (first.title, first.section, first.locator.doc_id) == ("Doc 3", "Section 3", "Doc_3")


def test_valid_citations_are_left_untouched() -> None:
    answer = "Honey bees dance [1, 2]."
    assert resolve(answer, passages(2)).text == answer


def test_answer_without_citations_lists_all_sources_uncited() -> None:
    result = resolve("I am not sure.", passages(2))
    assert result.citations == []
    assert [s.cited for s in result.sources] == [False, False]


def test_streamed_pieces_show_no_invalid_citation_even_when_split_across_pieces() -> None:
    from app.chat.citations import CitationFilter

    pieces = ["Etna is ", "active [", "1", ", 7]", ". Lava [", "9] flows", " [2", "]."]
    shown = CitationFilter([1, 2])
    text = "".join(shown.feed(p) for p in pieces) + shown.flush()
    assert text == "Etna is active [1]. Lava  flows [2]."


def test_stream_filter_releases_a_bracket_that_is_not_a_citation() -> None:
    from app.chat.citations import CitationFilter

    shown = CitationFilter([1])
    first = shown.feed("a list [note: " + "x" * 30)
    assert first.startswith("a list [note: ")
    assert shown.flush() == ""
