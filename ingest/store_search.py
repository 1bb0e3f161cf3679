"""Search over the library: keyword (BM25), meaning (vectors) and the hybrid of both, and the
rows behind the hits — LibraryStore's search half."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ingest import indexes as ix
from ingest.documents import Locator
from ingest.embedding import embed_with_query, embedder_languages, reads_language
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
from ingest.store_indexes import VECTOR_REFINE_ROWS
from ingest.terms import base_language, content_words, covered, script_language, text_language

if TYPE_CHECKING:
    from pathlib import Path

    from ingest.embedding import Embedder

log = logging.getLogger(__name__)

SearchMode = Literal["hybrid", "vector", "keyword"]

# Hybrid ranking: BM25 (as a share of the best BM25 among the candidates), cosine to the query
# and the share of the query's content words the passage holds (with its title and section).
# Weights chosen on bench/answers.py's question sets — hit@1 / hit@5 there: articles 0.96 /
# 1.00 (BM25 0.74 / 0.96, vectors 0.88 / 0.98, the former rank fusion 0.82 / 0.97); book
# passages 0.76 / 0.91 (BM25 0.60 / 0.78, vectors 0.55 / 0.65, rank fusion 0.62 / 0.82).
HYBRID_BM25 = 0.5
HYBRID_COSINE = 1.5
HYBRID_COVERAGE = 1.0
# Each of the keyword and vector searches gives HYBRID_DEPTH * k candidates (at least 40). On
# the question sets above 2, 3 and 4 gave the same hit@1 / hit@5; 2 reads half the rows.
HYBRID_DEPTH = 2
HYBRID_EMBED_MISSING = 8  # candidates without a vector embedded at query time, at most
# ... and no more than fit in this many seconds at the embedder's measured pace: 8 passages took
# 245 ms (p50) on 2 cores with the int8 embedder, a GPU does them in a few.
HYBRID_EMBED_SECONDS = 0.2
TIE_MARGIN = 10  # extra keyword hits fetched so passages tied at the cut are chosen by id
# Unindexed vectors a query still compares one by one (~1.6 ms per thousand): past this, only
# the indexed ones are searched until maintenance indexes the rest.
FLAT_VECTOR_SEARCH_MAX = 100_000

# Hybrid search runs its keyword and vector halves side by side (shared by every store).
_SEARCHES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="library-search")
# The Lance dataset of each table at the version last read (see _dataset).
_DATASETS: dict[str, tuple[int, Any]] = {}
_DATASETS_LOCK = threading.Lock()


class SearchMixin:
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
        read = embedder_languages(self.embedder)
        meaning = self.embedder is not None and reads_language(read, script_language(query))

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

    def _fuse(
        self,
        query: str,
        keyword_rows: list[dict[str, Any]],
        vector_rows: list[dict[str, Any]],
        stored: dict[str, np.ndarray],
        source_languages: dict[str, str],
        meaning: bool = True,
    ) -> dict[str, tuple[float, dict[str, Any]]]:
        """Hybrid scores of the union of the keyword and vector candidates (see HYBRID_*).

        Scores, not ranks: rank fusion puts a passage that is merely in both lists above the one
        that answers (on the project's question sets it fell below vector search for articles
        and gained little over BM25 for book passages). A candidate missing from the vector
        list is compared with its `stored` vector, or embedded now when its source has none yet
        (the best HYBRID_EMBED_MISSING of them by BM25; the rest count no meaning) — and those
        vectors are kept (ingest.query_vectors): the next search and stage 2 take them from there.
        The cosine counts only for a passage in a language the embedder reads, and only when
        `meaning` (the embedder reads the question's): elsewhere it is noise, and BM25 and the
        question's words decide.
        """
        rows: dict[str, dict[str, Any]] = {}
        for r in vector_rows:
            rows.setdefault(r["chunk_id"], r)
        top_bm25 = max((float(r["_score"]) for r in keyword_rows), default=0.0) or 1.0
        bm25: dict[str, float] = {}
        for r in keyword_rows:
            rows.setdefault(r["chunk_id"], r)
            bm25[r["chunk_id"]] = float(r["_score"]) / top_bm25
        # Each passage's language: its source's, else told from its words.
        passages = {cid: f"{r['title']} {r['section']} {r['text']}" for cid, r in rows.items()}
        language = {
            cid: source_languages.get(r["source_id"]) or text_language(passages[cid])
            for cid, r in rows.items()
        }
        read = embedder_languages(self.embedder)
        cosine = (
            self._cosines(query, rows, bm25, vector_rows, stored, read, language)
            if meaning and self.embedder is not None
            else {}
        )
        # The question's words as each passage's language has them: a question of a few words
        # ("cathedrale celebre") has no function words to tell its own language by.
        by_language: dict[str, set[str]] = {}
        fused = {}
        for cid, row in rows.items():
            lang = language[cid]
            if lang not in by_language:
                by_language[lang] = content_words(query, lang)
            asked = by_language[lang]
            cover = covered(asked, passages[cid], lang) / len(asked) if asked else 0.0
            score = (
                HYBRID_BM25 * bm25.get(cid, 0.0)
                + HYBRID_COSINE * cosine.get(cid, 0.0)
                + HYBRID_COVERAGE * cover
            )
            fused[cid] = (score, row)
        return fused

    def _cosines(
        self,
        query: str,
        rows: dict[str, dict[str, Any]],
        bm25: dict[str, float],
        vector_rows: list[dict[str, Any]],
        stored: dict[str, np.ndarray],
        read: frozenset[str] | None,
        language: dict[str, str],
    ) -> dict[str, float]:
        """The cosine to the query of each candidate in a language the embedder reads: from the
        vector search, the stored vectors, the kept ones, or embedded now (see _fuse)."""
        assert self.embedder is not None
        cosine: dict[str, float] = {}
        for r in vector_rows:
            cosine[r["chunk_id"]] = 1.0 - float(r["_distance"])
        missing = [c for c in bm25 if c not in cosine and reads_language(read, language[c])]
        qvec: np.ndarray | None = None
        for cid in missing:
            if cid in stored:
                qvec = self._query_vector(query) if qvec is None else qvec
                cosine[cid] = float(stored[cid] @ qvec)
        kept_store = self.query_vectors()
        kept = kept_store.lookup(c for c in missing if c not in stored)
        for cid, vec in kept.items():
            qvec = self._query_vector(query) if qvec is None else qvec
            cosine[cid] = float(vec @ qvec)
        unembedded = [c for c in missing if c not in stored and c not in kept]
        unembedded = unembedded[: _embed_allowance()]
        if unembedded:
            from ingest.chunking import embedding_text

            texts = [
                embedding_text(rows[c]["title"], rows[c]["section"], rows[c]["text"])
                for c in unembedded
            ]
            t0 = time.perf_counter()
            qv, vecs = embed_with_query(self.embedder, query, texts)
            _EMBED_COST.measured((time.perf_counter() - t0) / (len(texts) + 1))
            for cid, vec in zip(unembedded, vecs, strict=True):
                cosine[cid] = float(vec @ qv)
            kept_store.save(unembedded, vecs)  # for later searches, and for stage 2
        return {c: v for c, v in cosine.items() if reads_language(read, language[c])}

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


class _Pace:
    """Seconds per passage the query-time embedding has taken in this process (a running mean;
    a first guess until it is measured)."""

    def __init__(self, first_guess: float) -> None:
        self.seconds = first_guess
        self._lock = threading.Lock()

    def measured(self, seconds: float) -> None:
        with self._lock:
            self.seconds = 0.5 * self.seconds + 0.5 * seconds


_EMBED_COST = _Pace(0.03)


def _embed_allowance() -> int:
    """How many candidates without a vector one search may embed (see HYBRID_EMBED_*)."""
    return max(1, min(HYBRID_EMBED_MISSING, int(HYBRID_EMBED_SECONDS / _EMBED_COST.seconds)))


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
