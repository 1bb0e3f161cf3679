"""The sentences of an answer's passages, embedded once per question: what the instant answer
quotes, and what every generated sentence is checked against.

Two signals, both cheap with what is already loaded:
- meaning: cosine between embeddings (the library's embedder, which is loaded for search);
  a passage sentence is embedded with its article title in front, because "It was destroyed
  in 1323." means little without "Lighthouse of Alexandria";
- words: the share of a text's content words (stop words dropped, crude stems) that the other
  side contains — a name, a number or a rare word a reader would look for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.chat.retrieval import Embedder, Passage
from ingest.chunking import sentence_spans
from ingest.embedding import embed_with_query
from ingest.terms import STOPWORDS, content_words

MIN_WORDS = 4  # shorter "sentences" (headings, "Pisc.", list debris) are not evidence
_WORDS = re.compile(r"\w+")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z][\w'-]*")


@dataclass(frozen=True)
class Sentence:
    """One sentence of a numbered passage, with its place in the passage's text."""

    number: int  # the passage's [n]
    index: int  # position among the passage's sentences
    start: int
    end: int
    text: str
    title: str

    @property
    def context(self) -> str:
        """What is embedded: the sentence with its article title in front."""
        return f"{self.title}: {self.text}" if self.title else self.text


def passage_sentences(passages: Sequence[Passage]) -> list[Sentence]:
    """Every sentence of the passages long enough to say something, in passage order."""
    out = []
    for p in passages:
        for i, (start, end) in enumerate(sentence_spans(p.text)):
            text = p.text[start:end]
            if len(_WORDS.findall(text)) >= MIN_WORDS:
                out.append(Sentence(p.number, i, start, end, text, p.title))
    return out


def overlap(words: set[str], other: set[str]) -> float:
    """The share of `words` that `other` contains (0 when `words` is empty)."""
    return len(words & other) / len(words) if words else 0.0


def names_in(text: str) -> set[str]:
    """The names a sentence states: capitalised words not at its start, lower-cased, with
    stop words ("The", "In") left out."""
    return {w.lower().removesuffix("'s") for w in _CAPITALISED.findall(text.strip())} - STOPWORDS


def numbers_in(text: str) -> set[str]:
    """The numbers a text states ("1,323" and "1323" are the same)."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


class Evidence:
    """The sentences of `passages`; each is embedded the first time it is compared (most never
    are: a cheap word score picks the few worth embedding), and at most once per answer."""

    def __init__(self, passages: Sequence[Passage], embedder: Embedder | None) -> None:
        self.passages = {p.number: p for p in passages}
        self.embedder = embedder
        self.sentences = passage_sentences(passages)
        self.words = [content_words(f"{s.title} {s.text}") for s in self.sentences]
        self._cache: dict[int, np.ndarray] = {}

    def vectors(
        self, indices: Sequence[int], text: str | None = None, as_query: bool = False
    ) -> np.ndarray:
        """Unit vectors of these sentences, embedding those not done yet in one batch — with
        `text`, whose vector is then the first row (one model call instead of two), embedded
        as a question when `as_query` (for a model that embeds questions differently)."""
        if self.embedder is None:
            return np.zeros((len(indices) + (text is not None), 1), np.float32)
        missing = [i for i in dict.fromkeys(indices) if i not in self._cache]
        contexts = [self.sentences[i].context for i in missing]
        head: list[np.ndarray] = []
        fresh: np.ndarray | None = None
        if text is not None and as_query:
            query_vector, fresh = embed_with_query(self.embedder, text, contexts)
            head = [query_vector]
        else:
            batch = ([text] if text is not None else []) + contexts
            fresh = np.asarray(self.embedder.embed(batch), dtype=np.float32) if batch else None
            if fresh is not None and text is not None:
                head, fresh = [fresh[0]], fresh[1:]
        if fresh is not None:
            for i, v in zip(missing, fresh, strict=True):
                self._cache[i] = v
        rows = head + [self._cache[i] for i in indices]
        return np.stack(rows) if rows else np.zeros((0, 1), np.float32)

    def similarities(self, text: str, indices: Sequence[int], as_query: bool = False) -> np.ndarray:
        """Cosine of `text` (a question when `as_query`) to these sentences (zeros without an
        embedder)."""
        if self.embedder is None or not len(indices):
            return np.zeros(len(indices), np.float32)
        rows = self.vectors(indices, text, as_query)
        return rows[1:] @ rows[0]
