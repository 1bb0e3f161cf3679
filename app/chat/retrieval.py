"""Passages for a question: hybrid search, a relevance floor, near-duplicate removal, diversity.

The store ranks chunks; this module decides which of them are worth showing to the model:

1. over-fetch (several times the passages wanted) so that filtering still leaves enough;
2. drop chunks that are not about the question (the relevance floor): a chunk must share the
   question's content words, or — when an embedder is given — be semantically close to it.
   When nothing passes, the answer is "the library has no answer", not an invented one;
3. drop near-duplicates (the same paragraph in two editions of an archive, repeated boilerplate):
   word-shingle Jaccard similarity;
4. prefer several documents and several sources: in a first pass at most `per_document` chunks
   of a document and at most `per_source_share` of the passages (rounded up) from one source —
   a book's many chapters are many documents of one source — topped up from the rest, in rank
   order, only when too few remain (so a lone relevant source still fills every slot);
5. number the survivors [1], [2], ... in rank order.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from app.settings import SearchMode
from ingest.chunking import sentence_spans
from ingest.documents import Locator
from ingest.embedding import (
    embed_with_query,
    embedder_languages,
    reads_language,
    reads_question,
)
from ingest.terms import content_words

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)


class Hit(Protocol):
    """What the store returns for one chunk (ingest.store.Hit satisfies it)."""

    chunk_id: str
    text: str
    score: float
    locator: Locator
    source_title: str
    source_kind: str
    source_path: str


class Retriever(Protocol):
    """Anything that ranks chunks for a query (ingest.store.LibraryStore satisfies it)."""

    def search(
        self,
        query: str,
        k: int = 10,
        mode: SearchMode = "hybrid",
        sources: Sequence[str] | None = None,
    ) -> Sequence[Any]: ...


class VectorLookup(Protocol):
    """Optional on a Retriever: the stored vectors of chunks, so relevance needs no embedding."""

    def chunk_vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]: ...


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors (ingest.embedding's embedders satisfy it)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Passage:
    """A numbered passage given to the model, with everything needed to cite and open it."""

    number: int
    chunk_id: str
    text: str
    locator: Locator
    source_title: str
    source_kind: str = ""
    source_path: str = ""
    score: float = 0.0  # the store's ranking score
    relevance: float = 0.0  # share of the question's content words found in the passage
    similarity: float | None = None  # cosine to the question, when the embedder reads both
    language: str = ""  # the source's, "" when not known
    truncated: bool = False  # cut to fit the prompt budget

    @property
    def title(self) -> str:
        """The document (article or chapter) title."""
        return self.locator.title

    @property
    def section(self) -> str:
        return self.locator.section

    @property
    def document_key(self) -> tuple[str, str]:
        return (self.locator.source_id, self.locator.doc_id)


@dataclass(frozen=True)
class RetrievalConfig:
    """Knobs of passage selection; the defaults suit a MiniLM embedder and ~200-word chunks."""

    passages: int = 6
    mode: SearchMode = "hybrid"
    overfetch: int = 4  # ask the store for passages * overfetch chunks (at least min_fetch)
    min_fetch: int = 20
    per_document: int = 2
    per_source_share: float = 0.5  # of the passages, rounded up: 6 passages -> 3 per source
    duplicate_jaccard: float = 0.6  # 3-word-shingle Jaccard at or above which a chunk is a repeat
    # Relevance floor: a passage is relevant when it holds at least `keyword_strong` of the
    # question's content words, or `keyword_min` of them and a cosine of `semantic_with_keyword`,
    # or (any words at all) a cosine of `semantic_strong`. Calibrated with all-MiniLM-L6-v2 on
    # tests/builders.sample_corpus: related passages score 0.41-0.75, unrelated ones 0.01-0.32.
    keyword_strong: float = 0.5
    keyword_min: float = 0.2
    semantic_with_keyword: float = 0.3
    semantic_strong: float = 0.4
    semantic_checks: int = 12  # at most this many chunks are embedded to judge relevance

    def fetch(self, k: int) -> int:
        """How many chunks the store is asked for when `k` passages are wanted."""
        return max(k * self.overfetch, self.min_fetch)


def shingles(text: str, size: int = 3) -> set[tuple[str, ...]]:
    """Word n-grams of `text`, lower-cased; short texts give their whole word tuple."""
    words = _WORD.findall(text.lower())
    if len(words) < size:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: set[Any], b: set[Any]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


NEIGHBOUR_CHARS = 400  # a neighbouring sentence longer than this is left out


class PassageRetriever:
    """Finds, filters and numbers the passages for one question."""

    def __init__(
        self,
        retriever: Retriever,
        *,
        embedder: Embedder | None = None,
        config: RetrievalConfig | None = None,
    ) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self.config = config or RetrievalConfig()

    def retrieve(
        self,
        query: str,
        *,
        k: int | None = None,
        sources: Sequence[str] | None = None,
        question: str | None = None,
    ) -> list[Passage]:
        """Numbered, relevant, de-duplicated, diverse passages for `query` (may be empty).

        `question` is the user's own words when `query` is a follow-up made self-contained;
        a passage is then relevant to either.
        """
        cfg = self.config
        k = k or cfg.passages
        hits = list(self.retriever.search(query, k=cfg.fetch(k), mode=cfg.mode, sources=sources))
        candidates = [_passage_from_hit(h) for h in hits]
        relevant = self._relevant(query, candidates, question)
        unique = drop_near_duplicates(relevant, cfg.duplicate_jaccard)
        per_source = max(1, math.ceil(k * cfg.per_source_share))
        chosen = self._with_neighbours(diversify(unique, k, cfg.per_document, per_source))
        log.info(
            "retrieval: %d hits, %d relevant, %d unique, %d kept for %r",
            len(hits),
            len(relevant),
            len(unique),
            len(chosen),
            query,
        )
        return [replace(p, number=i) for i, p in enumerate(chosen, start=1)]

    def _with_neighbours(self, passages: list[Passage]) -> list[Passage]:
        """Each passage with the sentence before it and the sentence after it from the chunks
        around it (same document and section), so a fact cut at a chunk's edge reaches the
        model whole; its locator grows to match, so the reader highlights what the model read.
        """
        lookup = getattr(self.retriever, "chunks_by_id", None)
        if not callable(lookup) or not passages:
            return passages
        wanted = [
            _chunk_id(p.locator, p.locator.chunk_index + step)
            for p in passages
            for step in (-1, 1)
            if p.locator.chunk_index + step >= 0
        ]
        try:
            around = dict(lookup(wanted))
        except Exception as exc:  # an improvement only: the passages stand on their own
            log.warning("neighbouring passages unavailable (%s)", exc)
            return passages
        chosen = {p.chunk_id for p in passages}
        return [
            _extended(
                p,
                around.get(_chunk_id(p.locator, p.locator.chunk_index - 1)),
                around.get(_chunk_id(p.locator, p.locator.chunk_index + 1)),
                chosen,
            )
            for p in passages
        ]

    def _relevant(
        self, query: str, candidates: list[Passage], question: str | None = None
    ) -> list[Passage]:
        cfg = self.config
        word_sets = [content_words(query)]
        if question and question != query:
            word_sets.append(content_words(question))
        scored = []
        for p in candidates:
            words = content_words(f"{p.source_title} {p.title} {p.section} {p.text}")
            coverage = max(len(ws & words) / len(ws) if ws else 0.0 for ws in word_sets)
            scored.append(replace(p, relevance=coverage))
        if self.embedder is not None:
            # Only chunks that the keywords leave undecided are embedded, and only the best
            # ranked of them: the rest would not make the cut anyway.
            # A cosine says nothing where the embedder does not read the question's or the
            # passage's language (ingest.embedding.reads_language): keywords alone decide there.
            read = embedder_languages(self.embedder)
            meaning = reads_question(self.embedder, query)
            undecided = [
                i
                for i, p in enumerate(scored)
                if p.relevance < cfg.keyword_strong and meaning and reads_language(read, p.language)
            ]
            undecided = undecided[: cfg.semantic_checks]
            if undecided:
                sims = self._similarities(query, [scored[i] for i in undecided])
                for i, sim in zip(undecided, sims, strict=True):
                    scored[i] = replace(scored[i], similarity=sim)
        return [p for p in scored if _passes_floor(p, cfg)]

    def _similarities(self, query: str, passages: list[Passage]) -> list[float]:
        """Cosine of each passage to the query: stored vectors when the store can give them
        (no embedding work), else embedded here."""
        assert self.embedder is not None
        stored: dict[str, np.ndarray] = {}
        lookup = getattr(self.retriever, "chunk_vectors", None)
        if callable(lookup):
            try:
                stored = dict(lookup([p.chunk_id for p in passages]))
            except Exception as exc:  # an optimisation only: fall back to embedding
                log.warning("stored vectors unavailable (%s); embedding passages", exc)
        missing = [p for p in passages if p.chunk_id not in stored]
        qvec, vectors = embed_with_query(
            self.embedder, query, [f"{p.title}. {p.text}" for p in missing]
        )
        fresh = dict(zip((p.chunk_id for p in missing), vectors, strict=True))
        return [
            float(np.asarray(stored.get(p.chunk_id, fresh.get(p.chunk_id)), np.float32) @ qvec)
            for p in passages
        ]


def _passes_floor(p: Passage, cfg: RetrievalConfig) -> bool:
    if p.relevance >= cfg.keyword_strong:
        return True
    if p.similarity is None:
        return False
    if p.relevance >= cfg.keyword_min and p.similarity >= cfg.semantic_with_keyword:
        return True
    return p.similarity >= cfg.semantic_strong


def drop_near_duplicates(passages: Sequence[Passage], threshold: float) -> list[Passage]:
    """Keep the first (best-ranked) of any passages whose texts overlap at `threshold` or more."""
    kept: list[Passage] = []
    kept_shingles: list[set[tuple[str, ...]]] = []
    seen_ids: set[str] = set()
    for p in passages:
        if p.chunk_id in seen_ids:
            continue
        sh = shingles(p.text)
        if any(jaccard(sh, other) >= threshold for other in kept_shingles):
            continue
        kept.append(p)
        kept_shingles.append(sh)
        seen_ids.add(p.chunk_id)
    return kept


def diversify(
    passages: Sequence[Passage], k: int, per_document: int, per_source: int | None = None
) -> list[Passage]:
    """The best `k` passages: at most `per_document` from one document and `per_source` from one
    source, unless too few others are left.

    Rank order is kept. Slots left empty by the caps are filled first with passages that only
    broke the source cap (another document of a source already well represented), then with
    anything left — so one long article, or one book's many chapters, cannot push every other
    source out of the answer, yet a library where only one source is relevant still fills all
    `k` slots.
    """
    per_source = k if per_source is None else per_source
    taken: set[int] = set()  # indices into `passages`
    per_doc: dict[tuple[str, str], int] = {}
    per_src: dict[str, int] = {}
    for source_cap, document_cap in ((per_source, per_document), (k, per_document), (k, k)):
        for i, p in enumerate(passages):
            if len(taken) >= k:
                break
            source = p.locator.source_id
            if (
                i in taken
                or per_doc.get(p.document_key, 0) >= document_cap
                or per_src.get(source, 0) >= source_cap
            ):
                continue
            taken.add(i)
            per_doc[p.document_key] = per_doc.get(p.document_key, 0) + 1
            per_src[source] = per_src.get(source, 0) + 1
    return [passages[i] for i in sorted(taken)]


def _chunk_id(loc: Locator, chunk_index: int) -> str:
    return f"{loc.source_id}:{loc.ordinal}:{chunk_index}"


def _extended(p: Passage, before: Any, after: Any, chosen: set[str]) -> Passage:
    """`p` grown by the last sentence of `before` and the first sentence of `after` (chunks of
    the same document), when they are of the same section, not passages of their own, and short
    enough (NEIGHBOUR_CHARS)."""
    loc = p.locator
    text, start, end = p.text, loc.start, loc.end
    if (
        before is not None
        and before.locator.section == loc.section
        and before.chunk_id not in chosen
    ):
        spans = [
            (a, b)
            for a, b in sentence_spans(before.text)
            if before.locator.start + b <= loc.start and b - a <= NEIGHBOUR_CHARS
        ]
        if spans:
            a, b = spans[-1]
            text = f"{before.text[a:b]} {text}"
            start = before.locator.start + a
    if after is not None and after.locator.section == loc.section and after.chunk_id not in chosen:
        spans = [
            (a, b)
            for a, b in sentence_spans(after.text)
            if after.locator.start + a >= loc.end and b - a <= NEIGHBOUR_CHARS
        ]
        if spans:
            a, b = spans[0]
            text = f"{text} {after.text[a:b]}"
            end = after.locator.start + b
    if text == p.text:
        return p
    return replace(p, text=text, locator=replace(loc, start=start, end=end))


def _passage_from_hit(hit: Any) -> Passage:
    return Passage(
        number=0,
        chunk_id=hit.chunk_id,
        text=hit.text,
        locator=hit.locator,
        source_title=getattr(hit, "source_title", ""),
        source_kind=getattr(hit, "source_kind", ""),
        source_path=getattr(hit, "source_path", ""),
        score=float(getattr(hit, "score", 0.0)),
        language=getattr(hit, "language", ""),
    )
