"""Keyword search in the scripts LanceDB's word tokenizer cannot cut: a Japanese, Chinese,
Korean, Thai or Arabic word inside a longer run of text is found (ingest.store_terms), and
every question of tests/languages.py finds its article in the top 5, by keyword and hybrid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import HashingEmbedder
from ingest.pipeline import ingest_paths
from ingest.store import LibraryStore
from tests.builders import Chapter, make_epub
from tests.languages import KEYWORD_QUESTIONS, TOPICS


def build(folder: Path, languages: list[str]) -> list[Path]:
    books = []
    for lang in languages:
        chapters = [
            Chapter(title, f"<h1>{title}</h1><p>{text}</p>", file_name=f"c{i}.xhtml")
            for i, (title, text) in enumerate(TOPICS[lang])
        ]
        books.append(
            make_epub(
                folder / f"{lang}.epub",
                chapters,
                title=f"{lang} book",
                language=lang,
                identifier=f"keyword-{lang}",
            )
        )
    return books


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("languages")
    lib = root / "lib"
    list(ingest_paths(build(root, list(TOPICS)), lib, embedder_factory=HashingEmbedder()))
    return lib


@pytest.mark.parametrize("lang", sorted(KEYWORD_QUESTIONS))
@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_every_question_finds_its_article_in_the_top_5(library: Path, lang: str, mode: str) -> None:
    store = LibraryStore(library, HashingEmbedder())
    for question, topic in KEYWORD_QUESTIONS[lang]:
        title, text = TOPICS[lang][topic]
        hits = store.search(question, k=5, mode=mode)  # type: ignore[arg-type]
        assert any(h.locator.title == title for h in hits), (
            question,
            [h.locator.title for h in hits],
        )


def test_a_word_inside_a_run_of_japanese_is_found(library: Path) -> None:
    """The issue's case: 組版 and ルビ inside sentences, found by keyword alone."""
    store = LibraryStore(library)
    for word in ("組版", "ルビ", "禁則処理"):
        hits = store.search(word, k=3, mode="keyword")
        assert hits and word in hits[0].text


def test_only_passages_in_those_scripts_get_a_terms_row(library: Path) -> None:
    store = LibraryStore(library)
    terms = store._terms_table()
    assert terms is not None
    assert terms.count_rows() == store.chunk_count()  # every passage here needs one
    english = Path(library).parent / "english"
    from tests.builders import sample_corpus

    book = make_epub(english / "en.epub", sample_corpus().chapters)
    lib = english / "lib"
    list(ingest_paths([book], lib, embedder_factory=HashingEmbedder()))
    assert LibraryStore(lib)._terms_table() is None  # an English library never has the table


def test_removing_a_source_removes_its_terms(library: Path, tmp_path: Path) -> None:
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(library, lib)
    store = LibraryStore(lib)
    before = store._terms_table().count_rows()
    removed = store.remove("ja.epub")
    assert store._terms_table().count_rows() == before - removed.chunks
    assert not store.search("組版", k=3, mode="keyword")


def test_sources_read_before_the_terms_index_get_their_terms_at_the_next_run(
    library: Path, tmp_path: Path
) -> None:
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(library, lib)
    store = LibraryStore(lib)
    with store.writing():  # as a library of the previous version left it
        store._db.drop_table("terms")
        store._terms = None
        store._meta.delete("key LIKE 'terms_version:%'")
        for record in store.sources():
            store.update_source(record.source_id, chunker="2")
    old = LibraryStore(lib)
    assert not old.search("組版", k=3, mode="keyword")
    assert old.maintenance_due() and len(old.terms_backfill_pending()) == len(TOPICS)

    events = list(ingest_paths([], lib, embedder_factory=HashingEmbedder()))
    steps = {e.step for e in events if getattr(e, "stage", "") == "indexing"}
    assert "keyword index (words of other scripts)" in steps
    new = LibraryStore(lib)
    assert not new.maintenance_due() and new.terms_backfill_pending() == []
    assert new._terms_table().count_rows() == new.chunk_count()
    hits = new.search("組版", k=3, mode="keyword")
    assert hits and "組版" in hits[0].text


def test_a_book_that_does_not_say_its_language_gets_it_from_its_text(tmp_path: Path) -> None:
    chapters = [Chapter(t, f"<h1>{t}</h1><p>{x}</p>") for t, x in TOPICS["ja"]]
    book = make_epub(tmp_path / "silent.epub", chapters, language="", identifier="silent-ja")
    lib = tmp_path / "lib"
    list(ingest_paths([book], lib, embedder_factory=HashingEmbedder(), keyword_only=True))
    (record,) = LibraryStore(lib).sources()
    assert record.language == "ja"


def test_a_french_book_that_does_not_say_its_language_gets_stemmed_terms(tmp_path: Path) -> None:
    """Its language is told from its text once read; its terms are then made again in French, so
    "un cheval" finds the chevaux of the Camargue by keyword alone."""
    chapters = [
        Chapter(t, f"<h1>{t}</h1><p>{x}</p>", file_name=f"c{i}.xhtml")
        for i, (t, x) in enumerate(TOPICS["fr"])
    ]
    book = make_epub(tmp_path / "muet.epub", chapters, language="", identifier="silent-fr")
    lib = tmp_path / "lib"
    list(ingest_paths([book], lib, embedder_factory=HashingEmbedder(), keyword_only=True))
    store = LibraryStore(lib)
    (record,) = store.sources()
    assert record.language == "fr"
    if store.terms_backfill_pending():  # made at the next run's upkeep when not at this one
        list(ingest_paths([], lib, embedder_factory=HashingEmbedder(), keyword_only=True))
        store = LibraryStore(lib)
    assert store.terms_backfill_pending() == []
    hits = store.search("un cheval", k=1, mode="keyword")
    assert hits and hits[0].locator.title == "Camargue"


def test_a_french_library_of_the_previous_version_gets_stemmed_terms(
    library: Path, tmp_path: Path
) -> None:
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(library, lib)
    store = LibraryStore(lib)
    french = next(r for r in store.sources() if r.language == "fr")
    with store.writing():  # terms made before Latin stemming: none for French passages
        store.delete_terms(french.source_id)
        store._meta.delete(f"key = 'terms_version:{french.source_id}'")
    old = LibraryStore(lib)
    assert [r.source_id for r in old.terms_backfill_pending()] == [french.source_id]
    assert "Camargue" not in [h.locator.title for h in old.search("cheval", k=5, mode="keyword")]
    list(ingest_paths([], lib, embedder_factory=HashingEmbedder()))
    new = LibraryStore(lib)
    assert new.terms_backfill_pending() == []
    assert new.search("cheval", k=1, mode="keyword")[0].locator.title == "Camargue"


def test_an_arabic_library_of_the_previous_version_meets_broken_plurals(
    library: Path, tmp_path: Path
) -> None:
    """A king (ملك) is found in the passage on the pyramids, tombs of kings (الملوك): a broken
    plural, which stripping endings never reaches. A library whose terms were made before
    (version 2) has its Arabic terms made again; its French ones are left as they are."""
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(library, lib)
    store = LibraryStore(lib)
    arabic = next(r for r in store.sources() if r.language == "ar")
    with store.writing():  # as version 2 left it: no singular beside a broken plural
        store.delete_terms(arabic.source_id)
        store._set_meta(**{f"terms_version:{r.source_id}": "2" for r in store.sources()})
    old = LibraryStore(lib)
    assert [r.source_id for r in old.terms_backfill_pending()] == [arabic.source_id]
    pyramids = TOPICS["ar"][2][0]
    assert pyramids not in [h.locator.title for h in old.search("الملك", k=5, mode="keyword")]
    list(ingest_paths([], lib, embedder_factory=HashingEmbedder()))
    new = LibraryStore(lib)
    assert new.terms_backfill_pending() == []
    for question in ("الملك", "ملك"):
        assert new.search(question, k=1, mode="keyword")[0].locator.title == pyramids


class Misleading(HashingEmbedder):
    """Vectors that put one decoy passage (the coffee article) nearest to every Arabic question,
    as the cosines of an embedder that does not read the language rank passages at random; it
    counts the texts it is given."""

    DECOY = TOPICS["ar"][3][0]
    QUESTIONS = frozenset(q for q, _ in KEYWORD_QUESTIONS["ar"])

    def __init__(self, languages: frozenset[str] | None) -> None:
        super().__init__(dim=8, name="misleading", languages=languages)
        self.embedded = 0

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.embedded += len(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            out[row, 0 if self.DECOY in text or text in self.QUESTIONS else 1 + row % 7] = 1.0
        return out


def test_hybrid_search_counts_no_meaning_where_the_embedder_does_not_read_the_language(
    tmp_path: Path,
) -> None:
    """An embedder whose model card says English: its cosine counts for no Arabic question or
    passage (the vector half is not even asked), so BM25 and the question's words rank them; an
    embedder that reads Arabic (or does not say) has its cosine counted, decoy and all."""
    lib = tmp_path / "lib"
    list(ingest_paths(build(tmp_path, ["ar"]), lib, embedder_factory=Misleading(None)))
    decoy = Misleading.DECOY

    def top(embedder: Misleading, question: str) -> str:
        return LibraryStore(lib, embedder).search(question, k=5)[0].locator.title

    reads_any, reads_english = Misleading(None), Misleading(frozenset({"en"}))
    tops = {q: top(reads_any, q) for q, _ in KEYWORD_QUESTIONS["ar"]}
    assert sum(t == decoy for t in tops.values()) >= len(tops) // 2  # the decoy wins where counted
    for question, topic in KEYWORD_QUESTIONS["ar"]:
        assert top(reads_english, question) == TOPICS["ar"][topic][0], question
    assert reads_english.embedded == 0
    store, read = LibraryStore(lib, reads_english), []
    store.chunk_vectors = lambda ids: read.append(ids) or {}  # type: ignore[method-assign]
    assert store.search(KEYWORD_QUESTIONS["ar"][0][0], k=5) and read == []  # no vector read
    # A question in the Latin alphabet is taken as read: the vector half is asked again.
    LibraryStore(lib, reads_english).search("Cairo", k=5)
    assert reads_english.embedded == 1
