"""The instant answer and the sentence checks, with the hashing embedder (no weights)."""

from __future__ import annotations

from app.chat.checking import check_answer
from app.chat.evidence import Evidence, passage_sentences
from app.chat.extract import MAX_SENTENCES, MAX_WORDS, instant_answer, without_stray_quotes
from app.chat.retrieval import Passage
from ingest.documents import Locator
from ingest.embedding import HashingEmbedder


def _passage(number: int, title: str, text: str) -> Passage:
    loc = Locator("wiki", title.replace(" ", "_"), title, "", number, 0, 0, len(text))
    return Passage(number, f"wiki:{number}:0", text, loc, "Test Wiki")


PASSAGES = [
    _passage(
        1,
        "Lighthouse of Alexandria",
        "The Lighthouse of Alexandria was built by the Ptolemaic Kingdom on the island of Pharos. "
        "It stood over one hundred metres tall. Earthquakes between 956 and 1323 ruined it.",
    ),
    _passage(
        2,
        "Honey bee",
        "The honey bee is a eusocial flying insect. Foragers perform the waggle dance to tell "
        "nestmates the direction of flowers. A colony has a single queen.",
    ),
]


def _evidence() -> Evidence:
    return Evidence(PASSAGES, HashingEmbedder(dim=256))


def test_the_instant_answer_quotes_the_sentence_that_answers_with_its_number() -> None:
    quotes = instant_answer("Who built the Lighthouse of Alexandria?", _evidence())
    assert quotes and quotes[0].number == 1
    assert "Ptolemaic Kingdom" in quotes[0].text
    when = instant_answer("When did earthquakes ruin the lighthouse?", _evidence())
    assert when and "1323" in when[0].text


def test_no_instant_answer_when_no_sentence_answers() -> None:
    assert instant_answer("What is the recipe for chocolate cake?", _evidence()) == []


def test_the_instant_answer_stays_short() -> None:
    long = [
        _passage(i + 1, "Bees", "Bees make honey in the hive every day. " * 20) for i in range(4)
    ]
    quotes = instant_answer("Do bees make honey in the hive?", Evidence(long, None))
    assert 1 <= len(quotes) <= MAX_SENTENCES
    assert sum(len(q.text.split()) for q in quotes) <= MAX_WORDS


def test_headings_and_fragments_are_not_evidence() -> None:
    frag = _passage(1, "Angler", "Pisc.\n\nThe trout is a fish of clear cold streams in spring.")
    assert [s.text for s in passage_sentences([frag])] == [
        "The trout is a fish of clear cold streams in spring."
    ]


def test_a_supported_sentence_without_a_citation_gets_its_passage() -> None:
    checked = check_answer("Foragers perform the waggle dance to tell nestmates.", _evidence())
    (s,) = checked.sentences
    assert s.supported and s.citations == [2]
    assert checked.text == "Foragers perform the waggle dance to tell nestmates [2]."


def test_a_citation_to_the_wrong_passage_is_moved_to_the_right_one() -> None:
    checked = check_answer("The lighthouse stood over one hundred metres tall [2].", _evidence())
    assert checked.sentences[0].citations == [1]
    assert checked.text == "The lighthouse stood over one hundred metres tall [1]."


def test_a_sentence_no_passage_supports_is_marked_and_loses_its_citation() -> None:
    checked = check_answer(
        "The lighthouse was finished in 1280 [1]. Bees perform the waggle dance [2-3].",
        _evidence(),
    )
    first, second = checked.sentences
    assert not first.supported and first.citations == [] and "[1]" not in first.text
    assert second.supported and second.citations == [2]  # a range form, checked like [2]
    assert [s.text for s in checked.unsupported] == ["The lighthouse was finished in 1280."]


def test_saying_the_library_has_no_answer_is_not_a_claim() -> None:
    checked = check_answer("The sources do not mention the lighthouse keeper's name.", _evidence())
    assert checked.sentences[0].claim is False and checked.unsupported == []


def test_a_name_no_passage_mentions_makes_a_sentence_unsupported() -> None:
    checked = check_answer(
        "The Lighthouse of Alexandria was built by the Ptolemaic Kingdom on the island of "
        "Pharos [1]. The Lighthouse of Alexandria was built by the Roman Empire on the island "
        "of Pharos [1].",
        _evidence(),
    )
    right, invented = checked.sentences
    assert right.supported and right.citations == [1]
    assert not invented.supported and invented.citations == []


def test_a_quoted_sentence_loses_the_quotation_mark_its_cut_left_open() -> None:
    # The Devil's Dictionary's preface quotes its publishers over two sentences.
    opened = '"This more reverent title had previously been forced upon him.'
    closed = "Among them, they brought the word 'cynic' into disfavor.\""
    assert (
        without_stray_quotes(opened)
        == "This more reverent title had previously been forced upon him."
    )
    assert (
        without_stray_quotes(closed) == "Among them, they brought the word 'cynic' into disfavor."
    )
    assert (
        without_stray_quotes("“Nay,” the philanthropist replied.")
        == "“Nay,” the philanthropist replied."
    )
    assert without_stray_quotes('"Ho!" cried the cynic.') == '"Ho!" cried the cynic.'
    assert without_stray_quotes("“It was a dark night.") == "It was a dark night."
    assert without_stray_quotes('"') == '"'
