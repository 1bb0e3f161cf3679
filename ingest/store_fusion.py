"""Hybrid search's ranking: the keyword and vector candidates scored together by BM25, cosine to
the question (where the embedder reads the languages) and the share of the question's words each
passage holds — LibraryStore's fusion half (ingest.store_search gathers the candidates)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.embedding import embed_with_query, embedder_languages, reads_language
from ingest.terms import content_words, covered, text_language

if TYPE_CHECKING:
    from ingest.embedding import Embedder
    from ingest.query_vectors import QueryVectors

# Hybrid ranking: BM25 (as a share of the best BM25 among the candidates), cosine to the query
# and the share of the query's content words the passage holds (with its title and section).
# Weights chosen on bench/answers.py's question sets — hit@1 / hit@5 there: articles 0.96 /
# 1.00 (BM25 0.74 / 0.96, vectors 0.88 / 0.98, the former rank fusion 0.82 / 0.97); book
# passages 0.76 / 0.91 (BM25 0.60 / 0.78, vectors 0.55 / 0.65, rank fusion 0.62 / 0.82).
HYBRID_BM25 = 0.5
HYBRID_COSINE = 1.5
HYBRID_COVERAGE = 1.0
HYBRID_EMBED_MISSING = 8  # candidates without a vector embedded at query time, at most
# ... and no more than fit in this many seconds at the embedder's measured pace: 8 passages took
# 245 ms (p50) on 2 cores with the int8 embedder, a GPU does them in a few.
HYBRID_EMBED_SECONDS = 0.2


class FusionMixin:
    """LibraryStore's hybrid ranking (the store's own attributes are declared for the checker)."""

    if TYPE_CHECKING:
        embedder: Embedder | None

        def query_vectors(self) -> QueryVectors: ...
        def _query_vector(self, query: str) -> np.ndarray: ...

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
