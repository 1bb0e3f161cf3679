"""Search over the library: keyword (BM25), meaning (vectors) and the hybrid of both, and the
rows behind the hits — LibraryStore's search half."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ingest import indexes as ix
from ingest.documents import Locator
from ingest.embedding import embed_with_query, reads_question
from ingest.errors import StoreError
from ingest.query_vectors import QueryVectors
from ingest.records import (
    READ_COLUMNS,
    Hit,
    SourceRecord,
    in_list,
    quote,
    source_of,
)
from ingest.store_fusion import FusionMixin
from ingest.store_indexes import VECTOR_REFINE_ROWS
from ingest.terms import base_language

if TYPE_CHECKING:
    from pathlib import Path

    from ingest.embedding import Embedder

log = logging.getLogger(__name__)

SearchMode = Literal["hybrid", "vector", "keyword"]

# Each of the keyword and vector searches gives HYBRID_DEPTH * k candidates (at least 40). On
# the question sets above 2, 3 and 4 gave the same hit@1 / hit@5; 2 reads half the rows.
HYBRID_DEPTH = 2
TIE_MARGIN = 10  # extra keyword hits fetched so passages tied at the cut are chosen by id
# Unindexed vectors a query still compares one by one (~1.6 ms per thousand): past this, only
# the indexed ones are searched until maintenance indexes the rest.
FLAT_VECTOR_SEARCH_MAX = 100_000

# Hybrid search runs its keyword and vector halves side by side (shared by every store).
_SEARCHES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="library-search")
# The Lance dataset of each table at the version last read (see _dataset).
_DATASETS: dict[str, tuple[int, Any]] = {}
_DATASETS_LOCK = threading.Lock()


class SearchMixin(FusionMixin):
    """LibraryStore's searches (the store's own attributes are declared for the checker)."""

    if TYPE_CHECKING:
        embedder: Embedder | None
        _chunks: Any
        _last_query: tuple[Any, np.ndarray] | None
        _kept: tuple[tuple[str, int], QueryVectors] | None
        path: Path
        _unindexed_cache: tuple[int, bool] | None

        def sources(self) -> list[SourceRecord]: ...
        def source(self, source_id: str) -> SourceRecord | None: ...
        def check_embedder(self, embedder: Embedder) -> None: ...
        def _vector_table(self, create_dim: int | None = None) -> Any: ...
        def _vector_index_kind(self) -> str: ...
        def _nprobes(self) -> int: ...
        def keyword_terms(
            self, query: str, limit: int, where: str | None, languages: Collection[str] = ()
        ) -> list[dict[str, Any]]: ...

    def visible_sources(self, only: Sequence[str] | None = None) -> dict[str, SourceRecord]:
        """Sources search may return: stage 1 complete, and among `only` (ids) when given."""
        wanted = set(only) if only is not None else None
        return {
            r.source_id: r
            for r in self.sources()
            if r.visible and (wanted is None or r.source_id in wanted)
        }

    def search(
        self,
        query: str,
        k: int = 10,
        mode: SearchMode = "hybrid",
        sources: Sequence[str] | None = None,
    ) -> list[Hit]:
        """The k best chunks for `query`.

        hybrid: vector top-N and BM25 top-N fused by reciprocal rank (vectors where they exist,
        keywords everywhere); vector: cosine similarity; keyword: BM25. `sources` limits the
        search to those source ids. Sources still in stage 1 are never returned.
        """
        if mode not in ("hybrid", "vector", "keyword"):
            raise ValueError(f"unknown search mode {mode!r}")
        self._last_query = None  # the query is embedded once per search, afresh each search
        records = self.sources()
        wanted = set(sources) if sources is not None else None
        visible = {
            r.source_id: r
            for r in records
            if r.visible and (wanted is None or r.source_id in wanted)
        }
        if not query.strip() or not visible or k <= 0:
            return []
        # Only the sources asked for are filtered before ranking (their bitmap index makes that
        # cheap). A source still being read is invisible: the keyword search never reaches its
        # rows (`fast_search` skips rows no index covers, and a source is indexed before it
        # becomes visible); what is left of it elsewhere is filtered out after ranking.
        where = None if wanted is None else f"source_id IN {in_list(sorted(visible))}"
        hidden = wanted is None and any(not r.visible and r.stage != "failed" for r in records)
        fetch = 2 * k if hidden else k

        def shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [r for r in rows if r["source_id"] in visible] if hidden else rows

        # The query's words are analysed as each searched source's language would have them.
        languages = sorted({r.language for r in visible.values() if r.language})

        if mode == "keyword":
            rows = shown(self._keyword(query, fetch, where, languages))[:k]
            return [self._hit(r, r["_score"], visible) for r in rows]
        if mode == "vector":
            if self.embedder is None:
                raise StoreError("Vector search needs an embedder.")
            rows = shown(self._vector(query, fetch, where))[:k]
            return [self._hit(r, 1.0 - r["_distance"], visible) for r in rows]
        depth = max(HYBRID_DEPTH * k, 40)
        # Meaning counts only where the embedder reads the question's language (the vector
        # half is not even asked otherwise) and, in _fuse, each passage's.
        meaning = reads_question(self.embedder, query)

        if meaning:
            keyword_rows, hits, by_id, stored = self._candidates(
                lambda: shown(self._keyword(query, depth, where, languages)),
                lambda: shown(self._vector_hits(query, depth, where)),
            )
        else:  # no vector is read: keywords and the question's words rank
            keyword_rows, hits, by_id, stored = (
                shown(self._keyword(query, depth, where, languages)),
                [],
                {},
                {},
            )
        vector_rows = [
            {**by_id[h["chunk_id"]], "_distance": h["_distance"]}
            for h in hits
            if h["chunk_id"] in by_id
        ]
        source_languages = {sid: base_language(r.language) for sid, r in visible.items()}
        fused = self._fuse(query, keyword_rows, vector_rows, stored, source_languages, meaning)
        best = sorted(fused, key=lambda cid: (-fused[cid][0], cid))[:k]
        return [self._hit(fused[cid][1], fused[cid][0], visible) for cid in best]

    def _candidates(
        self,
        keyword: Callable[[], list[dict[str, Any]]],
        vector: Callable[[], list[dict[str, Any]]],
    ) -> tuple[
        list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, np.ndarray]
    ]:
        """A hybrid search's candidates: the keyword rows, the vector hits, every candidate's
        row by chunk id, and the stored vectors of the keyword rows.

        The keyword search and the vector search (with the query's embedding) run side by side;
        what each lacks is read as soon as that search is done, while the other may still run:
        the rows of the vector hits, the stored vectors of the keyword rows. Scattered reads cost
        per row at 10 M passages (bench/scale.py), so what the search finished first already
        has is not read again; the one finished first reads all it lacks (a few rows or vectors
        both lists share may be read twice, as the wait would cost more)."""
        first_keyword = _SEARCHES.submit(keyword)
        first_vector = _SEARCHES.submit(vector)
        wait([first_keyword, first_vector], return_when=FIRST_COMPLETED)
        if first_keyword.done():
            keyword_rows = first_keyword.result()
            vectors = _SEARCHES.submit(self.chunk_vectors, [r["chunk_id"] for r in keyword_rows])
            hits = first_vector.result()
            known = {r["chunk_id"] for r in keyword_rows}
            rows = self._chunk_rows([h["chunk_id"] for h in hits if h["chunk_id"] not in known])
            stored = vectors.result()
        else:
            hits = first_vector.result()
            found = _SEARCHES.submit(self._chunk_rows, [h["chunk_id"] for h in hits])
            keyword_rows = first_keyword.result()
            near = {h["chunk_id"] for h in hits}
            stored = self.chunk_vectors(
                [r["chunk_id"] for r in keyword_rows if r["chunk_id"] not in near]
            )
            rows = found.result()
        by_id = {r["chunk_id"]: r for r in keyword_rows}
        by_id.update((r["chunk_id"], r) for r in rows)
        return keyword_rows, hits, by_id, stored

    def _keyword(
        self, query: str, limit: int, where: str | None, languages: Collection[str] = ()
    ) -> list[dict[str, Any]]:
        """BM25 top `limit`, ties broken by chunk id: the same results however the rows were
        batched into fragments (one parser process or eight). A query in a script the main
        index cannot cut is also searched in the terms index (ingest.store_terms); the two
        lists meet with each score as a share of its list's best."""
        if self._chunks.count_rows() == 0:
            return []
        try:
            q = self._chunks.search(query, query_type="fts").fast_search()  # type: ignore[attr-defined]
            if where:
                q = q.where(where, prefilter=True)
            rows = q.select([*READ_COLUMNS, "_score"]).limit(limit + TIE_MARGIN).to_list()
        except (ValueError, RuntimeError, OSError) as exc:
            log.warning("keyword search for %r failed: %s", query, exc)
            return []
        _with_source_ids(rows)
        terms = self.keyword_terms(query, limit + TIE_MARGIN, where, languages)
        if terms:
            rows = _merged(rows, terms, self._chunk_rows)
        rows.sort(key=lambda r: (-round(r["_score"], 4), r["chunk_id"]))
        return rows[:limit]

    def _vector(self, query: str, limit: int, where: str | None) -> list[dict[str, Any]]:
        hits = self._vector_hits(query, limit, where)
        rows = {r["chunk_id"]: r for r in self._chunk_rows([h["chunk_id"] for h in hits])}
        return [
            {**rows[h["chunk_id"]], "_distance": h["_distance"]}
            for h in hits
            if h["chunk_id"] in rows
        ]

    def _vector_hits(self, query: str, limit: int, where: str | None) -> list[dict[str, Any]]:
        """The nearest `limit` vectors: chunk_id, source_id and _distance of each."""
        table = self._vector_table()
        if table is None or self.embedder is None:
            return []
        self.check_embedder(self.embedder)
        qvec = self._query_vector(query)
        q = table.search(qvec, vector_column_name="vector").distance_type("cosine")
        if self._many_unindexed_vectors(table):
            # Millions of vectors not indexed yet (a big source still embedding) would be
            # compared one by one on every query: search the indexed ones only until the
            # index catches up (see ingest.indexes).
            q = q.fast_search()
        if where:
            q = q.where(where, prefilter=True)
        return _with_source_ids(
            q.nprobes(self._nprobes())
            .refine_factor(max(1, math.ceil(self._refine_rows() / max(1, limit))))
            .select(["chunk_id", "_distance"])
            .limit(limit)
            .to_list()
        )

    def query_vectors(self) -> QueryVectors:
        """The vectors this library's embedder made at query time (see ingest.query_vectors)."""
        assert self.embedder is not None
        key = (self.embedder.name, self.embedder.dim)
        if self._kept is None or self._kept[0] != key:
            self._kept = (key, QueryVectors(self.path, *key))
        return self._kept[1]

    def _refine_rows(self) -> int:
        return VECTOR_REFINE_ROWS.get(self._vector_index_kind(), max(VECTOR_REFINE_ROWS.values()))

    def _query_vector(self, query: str) -> np.ndarray:
        """The query's vector, embedded once per search (hybrid needs it twice)."""
        assert self.embedder is not None
        key = (id(self.embedder), query)
        if self._last_query is None or self._last_query[0] != key:
            self._last_query = (key, embed_with_query(self.embedder, query, [])[0])
        return self._last_query[1]

    def _many_unindexed_vectors(self, table: Any) -> bool:
        version = table.version
        if self._unindexed_cache is None or self._unindexed_cache[0] != version:
            stats = None
            with contextlib.suppress(Exception):
                stats = table.index_stats(ix.VECTOR_INDEX)
            many = stats is not None and stats.num_unindexed_rows > FLAT_VECTOR_SEARCH_MAX
            self._unindexed_cache = (version, many)
        return self._unindexed_cache[1]

    def _chunk_rows(self, chunk_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The rows of these chunks (with source ids: see _with_source_ids)."""
        return self._rows_where(f"chunk_id IN {in_list(chunk_ids)}") if chunk_ids else []

    def _rows_where(self, where: str) -> list[dict[str, Any]]:
        rows = _dataset(self._chunks).to_table(filter=where, columns=READ_COLUMNS).to_pylist()
        return _with_source_ids(rows)

    @staticmethod
    def _hit(row: dict[str, Any], score: float, sources: dict[str, SourceRecord]) -> Hit:
        src = sources[row["source_id"]]
        return Hit(
            chunk_id=row["chunk_id"],
            text=row["text"],
            score=float(score),
            locator=Locator(
                source_id=row["source_id"],
                doc_id=row["doc_id"],
                title=row["title"],
                section=row["section"],
                ordinal=int(row["ordinal"]),
                chunk_index=int(row["chunk_index"]),
                start=int(row["start"]),
                end=int(row["end"]),
            ),
            source_title=src.title,
            source_kind=src.kind,
            source_path=src.path,
            language=base_language(src.language),
        )

    def chunks_by_id(self, chunk_ids: Sequence[str]) -> dict[str, Hit]:
        """The chunks of visible sources with these ids (absent ids are left out)."""
        if not chunk_ids:
            return {}
        visible = self.visible_sources()
        return {
            r["chunk_id"]: self._hit(r, 0.0, visible)
            for r in self._chunk_rows(list(chunk_ids))
            if r["source_id"] in visible
        }

    def chunk_vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these chunks (those not embedded yet are absent)."""
        table = self._vector_table()
        if table is None or not chunk_ids:
            return {}
        got = _dataset(table).to_table(
            filter=f"chunk_id IN {in_list(list(chunk_ids))}", columns=["chunk_id", "vector"]
        )
        if got.num_rows == 0:
            return {}
        # Straight from Arrow: converting 48 vectors through Python lists took ~6 of a hybrid
        # search's milliseconds at 10 M passages.
        column = got.column("vector").combine_chunks()
        vectors = column.values.to_numpy().reshape(len(column), -1).astype(np.float32)
        return dict(zip(got.column("chunk_id").to_pylist(), vectors, strict=True))

    def document_chunks(self, source_id: str, doc_id: str) -> list[Hit]:
        """Every chunk of one document in order (for the reader view to highlight)."""
        record = self.source(source_id)
        if record is None:
            return []
        rows = self._rows_where(f"source_id = {quote(source_id)} AND doc_id = {quote(doc_id)}")
        rows.sort(key=lambda r: r["chunk_index"])
        return [self._hit(r, 0.0, {source_id: record}) for r in rows]


def _merged(
    rows: list[dict[str, Any]],
    terms: list[dict[str, Any]],
    read: Any,
) -> list[dict[str, Any]]:
    """The main index's `rows` and the terms index's hits (chunk_id, _score) as one list: each
    score a share of its own list's best (BM25 of two indexes do not compare), a passage in
    both keeping the higher; the rows of passages only the terms found read with `read`."""
    best = max((float(r["_score"]) for r in rows), default=0.0) or 1.0
    merged = {r["chunk_id"]: {**r, "_score": float(r["_score"]) / best} for r in rows}
    top = max(float(t["_score"]) for t in terms) or 1.0
    share = {t["chunk_id"]: float(t["_score"]) / top for t in terms}
    for row in read([c for c in share if c not in merged]):
        merged[row["chunk_id"]] = {**row, "_score": 0.0}
    for chunk_id, score in share.items():
        if chunk_id in merged:
            merged[chunk_id]["_score"] = max(merged[chunk_id]["_score"], score)
    return list(merged.values())


def _dataset(table: Any) -> Any:
    """The Lance dataset behind a LanceDB table, at the version the table has open. Scattered
    reads by id through it cost two thirds of the same reads through LanceDB's query builder
    (48 rows at 10 M passages: 9.6 vs 14.1 ms for vectors, 19.5 vs 22.6 ms for passages).
    Kept open per table and version: a dataset opened afresh reads its indexes afresh."""
    key, version = table._dataset_path, table.version
    with _DATASETS_LOCK:
        held = _DATASETS.get(key)
    if held is not None and held[0] == version:
        return held[1]
    ds = table.to_lance()
    with _DATASETS_LOCK:
        _DATASETS[key] = (version, ds)
    return ds


def _with_source_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` (read without their source_id) with it, taken from each chunk id: reading a few
    scattered rows of that dictionary-encoded column cost ~5 ms in the chunks table and ~20 ms
    in the vector table at 10 M rows (bench/scale.py), a fifth of a hybrid search."""
    for r in rows:
        r["source_id"] = source_of(r["chunk_id"])
    return rows
