"""Passage selection: relevance floor, near-duplicates, diversity across documents, numbering."""

from __future__ import annotations

import numpy as np

from app.chat.retrieval import PassageRetriever, RetrievalConfig
from ingest.terms import content_words


def test_passages_are_numbered_from_one_in_rank_order(retriever) -> None:
    found = PassageRetriever(retriever).retrieve("Which volcano in Sicily is active?")
    assert [p.number for p in found] == list(range(1, len(found) + 1))
    assert found[0].title == "Volcano"
    assert "Etna" in found[0].text


def test_unrelated_question_finds_nothing_even_though_the_store_returns_hits(retriever) -> None:
    # The fake, like vector search, ranks every chunk; none shares the question's topic.
    assert len(retriever.search("recipe for chocolate cake", k=5)) == 5
    assert PassageRetriever(retriever).retrieve("What is the recipe for chocolate cake?") == []


def test_one_shared_common_word_is_not_enough(retriever) -> None:
    # "world" occurs in two articles; the question is about something else.
    assert PassageRetriever(retriever).retrieve("Who won the football world cup?") == []


def test_question_of_only_stopwords_finds_nothing(retriever) -> None:
    assert PassageRetriever(retriever).retrieve("What is it?") == []


def test_near_duplicates_are_dropped(make_hit, make_retriever) -> None:
    text = "Mount Etna in Sicily is one of the most active volcanoes in the world today."
    hits = [
        make_hit("Etna", text, source="wiki2020", ordinal=1),
        make_hit("Etna", text.replace("today.", "now."), source="wiki2024", ordinal=1),
        make_hit(
            "Sicily",
            "Sicily is the largest island in the Mediterranean; Etna rises above Catania.",
            ordinal=2,
        ),
    ]
    found = PassageRetriever(make_retriever(hits)).retrieve("Is Etna in Sicily active?")
    assert [p.locator.source_id for p in found] == ["wiki2020", "wiki"]


def test_one_long_article_does_not_crowd_out_other_documents(make_hit, make_retriever) -> None:
    hits = [
        make_hit(
            "Etna",
            f"Etna volcano eruption number {i} covered Sicily in ash {'x' * i}.",
            ordinal=1,
            chunk=i,
        )
        for i in range(8)
    ]
    hits.append(
        make_hit("Stromboli", "Stromboli is another volcano near Sicily with eruptions.", ordinal=2)
    )
    hits.append(
        make_hit(
            "Vesuvius", "Vesuvius is a volcano whose eruption buried Pompeii in ash.", ordinal=3
        )
    )
    config = RetrievalConfig(passages=4, per_document=2)
    found = PassageRetriever(make_retriever(hits), config=config).retrieve(
        "Etna volcano eruption Sicily ash"
    )
    titles = [p.title for p in found]
    assert titles.count("Etna") == 2
    assert {"Stromboli", "Vesuvius"} <= set(titles)


def test_a_single_relevant_document_still_fills_the_passages(make_hit, make_retriever) -> None:
    hits = [
        make_hit(
            "Etna",
            f"Etna volcano eruption {i} in Sicily, year {1600 + i * 37}.",
            ordinal=1,
            chunk=i,
        )
        for i in range(5)
    ]
    config = RetrievalConfig(passages=4, per_document=2)
    found = PassageRetriever(make_retriever(hits), config=config).retrieve("Etna eruption Sicily")
    assert len(found) == 4


def test_over_fetches_and_passes_source_filter(retriever) -> None:
    PassageRetriever(retriever, config=RetrievalConfig(passages=3)).retrieve(
        "honey bee", sources=["wiki"]
    )
    query, k, mode, sources = retriever.queries[-1]
    assert k >= 3 * 4 and mode == "hybrid" and sources == ("wiki",)


class KeywordBlindEmbedder:
    """Vectors by topic: 'bee'-ish texts point one way, everything else another."""

    def embed(self, texts):
        topics = [
            "bee" in t.lower() or "pollinat" in t.lower() or "hive" in t.lower() for t in texts
        ]
        return np.array([[1.0, 0.0] if t else [0.0, 1.0] for t in topics], dtype=np.float32)


def test_semantic_similarity_admits_a_paraphrase_without_shared_words(
    make_hit, make_retriever
) -> None:
    hits = [
        make_hit(
            "Honey bee", "Workers collect nectar and carry pollen back to the hive.", ordinal=1
        )
    ]
    question = "Which insects pollinate flowers?"
    assert PassageRetriever(make_retriever(hits)).retrieve(question) == []
    found = PassageRetriever(make_retriever(hits), embedder=KeywordBlindEmbedder()).retrieve(
        question
    )
    assert len(found) == 1 and found[0].similarity == 1.0


class EnglishReader(KeywordBlindEmbedder):
    """The same vectors, from a model whose card says English."""

    languages = frozenset({"en"})


def test_a_cosine_admits_no_passage_in_a_language_the_embedder_does_not_read(
    make_hit, make_retriever
) -> None:
    """An English embedder's cosine between an Arabic question and passage says nothing: the
    floor decides such passages by their words alone (the same passage in English is admitted,
    and an embedder that reads any language still admits the Arabic one)."""
    arabic = make_hit(
        "نحل العسل", "تجمع الشغالات الرحيق وتحمل حبوب اللقاح إلى الخلية.", language="ar"
    )
    english = make_hit(
        "Honey bee", "Workers collect nectar and carry pollen back to the hive.", ordinal=1
    )
    question = "Which insects pollinate flowers?"
    reader = EnglishReader()
    found = PassageRetriever(make_retriever([arabic, english]), embedder=reader).retrieve(question)
    assert [p.title for p in found] == ["Honey bee"]
    in_arabic = "أي حشرة تلقح الأزهار؟"  # no word of it in the passage; the cosine is 1.0
    assert PassageRetriever(make_retriever([arabic]), embedder=reader).retrieve(in_arabic) == []
    admitted = PassageRetriever(make_retriever([arabic]), embedder=KeywordBlindEmbedder())
    assert [p.title for p in admitted.retrieve(in_arabic)] == ["نحل العسل"]


def test_stems_match_plural_and_singular() -> None:
    assert content_words("volcanoes") == content_words("volcano")
    assert content_words("eruptions") == content_words("eruption")


def test_stored_vectors_are_used_instead_of_embedding_passages(make_hit, make_retriever) -> None:
    hits = [make_hit("Honey bee", "Workers collect nectar and carry pollen back to the hive.")]

    class StoreWithVectors(make_retriever):
        def chunk_vectors(self, chunk_ids):
            return {cid: np.array([1.0, 0.0], np.float32) for cid in chunk_ids}

    class QueryOnlyEmbedder:
        calls: list[list[str]] = []

        def embed(self, texts):
            self.calls.append(list(texts))
            return np.array([[1.0, 0.0]] * len(texts), np.float32)

    embedder = QueryOnlyEmbedder()
    found = PassageRetriever(StoreWithVectors(hits), embedder=embedder).retrieve(
        "Which insects pollinate flowers?"
    )
    assert len(found) == 1
    assert embedder.calls == [["Which insects pollinate flowers?"]]


def _book_chapters(make_hit, n: int) -> list:  # type: ignore[no-untyped-def]
    """`n` chapters of one book, each a document of its own, all about the question."""
    return [
        make_hit(
            f"Chapter {i}",
            "Etna volcano eruption in Sicily left ash "
            + " ".join(f"c{i}w{j}" for j in range(12))
            + ".",
            source="book",
            source_title="Volcanoes of Italy",
            ordinal=100 + i,
        )
        for i in range(n)
    ]


def _wiki_articles(make_hit, titles: list[str]) -> list:  # type: ignore[no-untyped-def]
    """Articles of another source: relevant, but ranked below every chapter of the book."""
    return [
        make_hit(
            title,
            f"{title} is a volcano in Sicily; Etna is its neighbour "
            + " ".join(f"a{i}w{j}" for j in range(12))
            + ".",
            source="wiki",
            ordinal=i,
        )
        for i, title in enumerate(titles)
    ]


QUERY = "Etna volcano eruption Sicily ash"


def test_one_books_many_chapters_do_not_crowd_out_other_sources(make_hit, make_retriever) -> None:
    hits = _book_chapters(make_hit, 8) + _wiki_articles(
        make_hit, ["Stromboli", "Vulcano", "Pantelleria"]
    )
    config = RetrievalConfig(passages=6, per_document=2)
    found = PassageRetriever(make_retriever(hits), config=config).retrieve(QUERY)
    # Every chapter outranks every article, and each chapter is its own document: only the
    # per-source cap (half the passages, rounded up) keeps room for the other source.
    assert [p.locator.source_id for p in found] == ["book"] * 3 + ["wiki"] * 3
    assert [p.title for p in found[:3]] == ["Chapter 0", "Chapter 1", "Chapter 2"]
    assert {p.title for p in found[3:]} == {"Stromboli", "Vulcano", "Pantelleria"}
    assert [p.number for p in found] == [1, 2, 3, 4, 5, 6]


def test_a_source_fills_the_slots_another_source_cannot(make_hit, make_retriever) -> None:
    hits = _book_chapters(make_hit, 8) + _wiki_articles(make_hit, ["Stromboli"])
    hits.append(make_hit("Cake", "Chocolate cake needs butter and sugar.", source="wiki"))
    config = RetrievalConfig(passages=6, per_document=2)
    found = PassageRetriever(make_retriever(hits), config=config).retrieve(QUERY)
    sources = [p.locator.source_id for p in found]
    assert sources.count("book") == 5 and sources.count("wiki") == 1
    # Rank order is kept: the article, ranked below all chapters, comes last.
    assert found[-1].title == "Stromboli"


def test_a_single_relevant_source_still_fills_every_slot(make_hit, make_retriever) -> None:
    hits = _book_chapters(make_hit, 8)
    hits.append(make_hit("Cake", "Chocolate cake needs butter and sugar.", source="wiki"))
    config = RetrievalConfig(passages=6, per_document=2)
    found = PassageRetriever(make_retriever(hits), config=config).retrieve(QUERY)
    assert [p.title for p in found] == [f"Chapter {i}" for i in range(6)]


def test_a_passage_comes_with_the_sentences_around_it(make_hit) -> None:
    """A fact cut at a chunk's edge reaches the model whole, and the locator covers it."""
    from dataclasses import replace as dc_replace

    doc = (
        "The keep was built in 1150. It burned in 1405. "
        "Rebuilt in stone, the tower stood for centuries. Its bells were cast in 1620. "
        "The last bell rang in 1900."
    )
    second, third = doc.index("Rebuilt"), doc.index("The last")
    cuts = [(0, second - 1), (second, third - 1), (third, len(doc))]
    hits = []
    for i, (a, b) in enumerate(cuts):
        h = make_hit("Castle", doc[a:b], chunk=i, ordinal=5)
        hits.append(dc_replace(h, locator=dc_replace(h.locator, start=a, end=b)))

    class Store:
        def search(self, query, k=10, mode="hybrid", sources=None):  # type: ignore[no-untyped-def]
            return [hits[1]]

        def chunks_by_id(self, ids):  # type: ignore[no-untyped-def]
            return {h.chunk_id: h for h in hits if h.chunk_id in ids}

    (p,) = PassageRetriever(Store()).retrieve("stone tower bells cast")
    assert p.text == (
        "It burned in 1405. Rebuilt in stone, the tower stood for centuries. "
        "Its bells were cast in 1620. The last bell rang in 1900."
    )
    assert (p.locator.start, p.locator.end) == (doc.index("It burned"), len(doc))


def test_questions_in_other_languages_pass_the_relevance_floor(make_hit, make_retriever) -> None:
    from tests.languages import SAMPLES

    hits = [
        make_hit("組版", SAMPLES["ja"], source="ja", ordinal=1),
        make_hit("السرطان", SAMPLES["ar"], source="ar", ordinal=2),
        make_hit("Кремль", SAMPLES["ru"], source="ru", ordinal=3),
    ]
    retriever = PassageRetriever(make_retriever(hits))
    assert [p.title for p in retriever.retrieve("禁則処理とは何ですか")] == ["組版"]
    assert [p.title for p in retriever.retrieve("ما هو دور الْغِذَاء في الوقاية؟")] == ["السرطان"]
    assert [p.title for p in retriever.retrieve("Кто построил стены Кремля?")] == ["Кремль"]
    assert retriever.retrieve("寿司の作り方は？") == []
