"""LibraryStore's second keyword index, for the scripts LanceDB's word tokenizer cannot cut
(Chinese, Japanese, Korean, Thai and its neighbours, Arabic) or stem (Cyrillic, Devanagari: the
main index stems English only): a `terms` table holding, for the passages written in them only,
the words ingest.terms.index_terms makes of their text, with a full-text index of its own that
splits on spaces and changes nothing. A query in those scripts is analysed the same way and
searched there beside the main index (SearchMixin._keyword). English-only libraries never get
the table."""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest import indexes as ix
from ingest.library_location import Location
from ingest.records import SourceRecord, source_rows
from ingest.tables import create_or_open, open_listed
from ingest.terms import LATIN_STEMMED, base_language, index_terms

if TYPE_CHECKING:
    from ingest.indexes import IndexWork

TERMS_INDEX = "terms_idx"
# The words are made already (index_terms): the index only splits them at spaces.
TERMS_INDEX_PARAMS: dict[str, Any] = {
    "with_position": False,
    "base_tokenizer": "whitespace",
    "language": "English",
    "max_token_length": 40,
    "lower_case": False,
    "stem": False,
    "remove_stop_words": False,
    "ascii_folding": False,
}


# Arabic, Persian and Urdu: their words are folded and stemmed as Arabic (ingest.terms)
_ARABIC_SCRIPT = frozenset({"ar", "ara", "fa", "fas", "per", "ur", "urd"})
# Languages whose text needs the terms index, as ZIM (ISO 639-3) and EPUB (BCP 47) metadata
# name them: a source in one of them read before the index existed gets its terms afterwards.
TERMS_LANGUAGES = frozenset(
    {"ja", "jpn", "zh", "zho", "chi", "ko", "kor", "th", "tha", "lo", "lao", "my", "mya", "bur"}
    | {"km", "khm"}
    | _ARABIC_SCRIPT
    | {"ru", "rus", "uk", "ukr", "be", "bel", "hi", "hin", "mr", "mar", "ne", "nep"}
    | LATIN_STEMMED
)
TERMS_SINCE_CHUNKER = 3  # sources read with an older chunker were read without terms
# 2: Latin-script languages other than English get stemmed words too. A source whose terms were
# all made by this version (its file named its language and it was read in one go) is marked
# with it; any other in a Latin-stemmed language has its terms made again from its passages.
# 3: Arabic-script words lose light10's endings and get the singular of a broken plural too
# (ingest.terms._arabic_root): sources in those languages have their terms made again.
TERMS_VERSION = "3"
# The version at which each language's terms last changed: a source marked with an older one
# has its terms made again (a French source marked "2" keeps its terms at version 3).
_TERMS_CHANGED = {code: 2 for code in LATIN_STEMMED} | {code: 3 for code in _ARABIC_SCRIPT}


def needs_backfill(record: SourceRecord, meta: dict[str, str] | None = None) -> bool:
    """Whether `record`'s terms have to be made (again) from its stored passages: it was read
    before the terms index existed, or before its language's terms last changed (Latin-script
    stemming, Arabic broken plurals: _TERMS_CHANGED), or its language was only told from its
    text after its passages were read."""
    meta = meta or {}
    languages = [base_language(c) for c in re.split(r"[\s,;]+", record.language) if c]
    if not record.visible or not any(code in TERMS_LANGUAGES for code in languages):
        return False
    marked = meta.get(f"terms_version:{record.source_id}", "")
    if marked == TERMS_VERSION:
        return False
    have = int(marked) if marked.isdigit() else 0
    if any(have < _TERMS_CHANGED.get(code, 0) for code in languages):
        return True
    try:
        old = int(record.chunker or 0) < TERMS_SINCE_CHUNKER
    except ValueError:
        old = False
    return old and meta.get(f"terms_backfilled:{record.source_id}") != "1"


def terms_schema() -> pa.Schema:
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("source_id", pa.string()),
            ("ordinal", pa.int64()),
            ("terms", pa.string()),
        ]
    )


class TermsMixin:
    """LibraryStore's terms table (the store's own attributes are declared for the checker)."""

    if TYPE_CHECKING:
        path: Path
        _db: Any
        _terms: Any

        def _table_path(self, name: str) -> Location: ...
        def _require_writer(self) -> None: ...
        def _table_names(self) -> list[str]: ...
        def sources(self) -> list[SourceRecord]: ...
        def meta(self) -> dict[str, str]: ...
        def _set_meta(self, **values: str) -> None: ...
        def scan_chunks(self, where: str, columns: list[str]) -> Iterator[pa.RecordBatch]: ...

    def _terms_table(self, create: bool = False) -> Any:
        if self._terms is None:
            if "terms" in self._table_names():
                self._terms = open_listed(self._db, "terms")
            if self._terms is None and create:
                self._terms = create_or_open(self._db, "terms", terms_schema())
        return self._terms

    def add_terms(self, rows: pa.Table) -> None:
        """Keep the `terms` of the chunk rows that have any (the parser processes add the
        column: ingest.parse_worker)."""
        if "terms" not in rows.column_names:
            return
        wanted = rows.filter(pc.not_equal(rows.column("terms"), ""))
        if wanted.num_rows:
            self._require_writer()
            table = self._terms_table(create=True)
            table.add(
                wanted.select(["chunk_id", "source_id", "ordinal", "terms"]).cast(terms_schema())
            )

    def delete_terms(self, source_id: str, from_ordinal: int = 0) -> None:
        table = self._terms_table()
        if table is None:
            return
        self._require_writer()
        table.delete(source_rows(source_id, from_ordinal))

    def terms_index_updates(self, cancel: threading.Event | None = None) -> Iterator[IndexWork]:
        """Index the terms no segment covers yet, as the main keyword index is (see
        ingest.indexes.update_scalar_index)."""
        table = self._terms_table()
        if table is None or table.count_rows() == 0:
            return
        yield from ix.update_full_text_index(
            self._table_path("terms"),
            TERMS_INDEX,
            "terms",
            TERMS_INDEX_PARAMS,
            what="keyword index (words of other scripts)",
            cancel=cancel,
        )

    def terms_backfill_pending(self) -> list[SourceRecord]:
        """Sources whose terms have to be made from their passages (needs_backfill)."""
        meta = self.meta()
        return [r for r in self.sources() if needs_backfill(r, meta)]

    def mark_terms_current(self, source_id: str) -> None:
        """Every passage of `source_id` got its terms from this version, in its language."""
        self._set_meta(**{f"terms_version:{source_id}": TERMS_VERSION})

    def terms_backfill(self, cancel: threading.Event | None = None) -> Iterator[IndexWork]:
        """Make the terms of those sources from their stored passages (read once, in batches,
        with progress); a stop keeps whole sources done and redoes the one it was in."""
        what = "keyword index (words of other scripts)"
        for record in self.terms_backfill_pending():
            self._require_writer()
            self.delete_terms(record.source_id)  # what a stopped backfill left of it
            done = 0
            columns = ["chunk_id", "source_id", "ordinal", "text"]
            for batch in self.scan_chunks(source_rows(record.source_id), columns):
                if cancel is not None and cancel.is_set():
                    raise ix.IndexCancelled("stopped while making terms")
                texts = batch.column("text").to_pylist()
                terms = pa.array([index_terms(t, (record.language,)) for t in texts], pa.string())
                self.add_terms(pa.Table.from_batches([batch]).append_column("terms", terms))
                done += batch.num_rows
                yield ix.IndexWork(what, done, record.chunks, "passages")
            self.mark_terms_current(record.source_id)

    def terms_maintenance(self, cancel: threading.Event | None = None) -> Iterator[IndexWork]:
        """Make the terms sources read before the terms index lack, compact the terms table's
        small fragments and bring its index up to date."""
        yield from self.terms_backfill(cancel)
        table = self._terms_table()
        if table is None or table.count_rows() == 0:
            return
        yield from ix.compact_small_fragments(
            self._table_path("terms"), [TERMS_INDEX], cancel=cancel
        )
        yield from self.terms_index_updates(cancel)

    def keyword_terms(
        self, query: str, limit: int, where: str | None, languages: Collection[str] = ()
    ) -> list[dict[str, Any]]:
        """chunk_id and BM25 _score of the best `limit` passages for `query` by its
        index_terms, analysed for the `languages` of the sources searched; [] when the query
        needs none or no passage has any."""
        words = index_terms(query, languages, question=True)
        table = self._terms_table() if words else None
        if table is None:
            return []
        try:
            q = table.search(words, query_type="fts", fts_columns="terms").fast_search()
            if where:
                q = q.where(where, prefilter=True)
            return q.select(["chunk_id", "_score"]).limit(limit).to_list()  # type: ignore[no-any-return]
        except (ValueError, RuntimeError, OSError):
            return []
