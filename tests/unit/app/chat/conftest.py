"""Fixtures for the chat tests: a fake retriever over in-memory passages (no store, no weights)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from ingest.documents import Locator
from ingest.terms import content_words


@dataclass(frozen=True)
class FakeHit:
    chunk_id: str
    text: str
    score: float
    locator: Locator
    source_title: str
    source_kind: str = "zim"
    source_path: str = "/library/wiki.zim"
    language: str = ""


def hit(
    title: str,
    text: str,
    *,
    source: str = "wiki",
    chunk: int = 0,
    section: str = "",
    ordinal: int | None = None,
    source_title: str = "Test Wiki",
    language: str = "",
) -> FakeHit:
    ordinal = ordinal if ordinal is not None else zlib.crc32(title.encode()) % 10_000
    loc = Locator(source, title.replace(" ", "_"), title, section, ordinal, chunk, 0, len(text))
    return FakeHit(f"{source}:{ordinal}:{chunk}", text, 1.0, loc, source_title, language=language)


class FakeRetriever:
    """Ranks its hits by shared content words with the query (ties keep the given order)."""

    def __init__(self, hits: Sequence[FakeHit], *, rank_all: bool = True) -> None:
        self.hits = list(hits)
        self.rank_all = rank_all  # like vector search: everything comes back, however unrelated
        self.queries: list[tuple[str, int, str, tuple[str, ...] | None]] = []

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str = "hybrid",
        sources: Sequence[str] | None = None,
    ) -> list[FakeHit]:
        self.queries.append((query, k, mode, tuple(sources) if sources else None))
        words = content_words(query)
        pool = [h for h in self.hits if not sources or h.locator.source_id in sources]
        scored = [(len(words & content_words(h.text)), i, h) for i, h in enumerate(pool)]
        if not self.rank_all:
            scored = [s for s in scored if s[0] > 0]
        scored.sort(key=lambda s: (-s[0], s[1]))
        return [h for _, _, h in scored[:k]]


CORPUS = [
    hit(
        "Lighthouse of Alexandria",
        "The Lighthouse of Alexandria was built by the Ptolemaic Kingdom on the island of Pharos.",
        ordinal=1,
    ),
    hit(
        "Lighthouse of Alexandria",
        "It stood over one hundred metres tall and was one of the Seven Wonders "
        "of the Ancient World.",
        ordinal=1,
        chunk=1,
    ),
    hit(
        "Honey bee",
        "The honey bee is a eusocial flying insect known for building wax combs "
        "and producing honey.",
        ordinal=2,
    ),
    hit(
        "Honey bee",
        "Foragers perform the waggle dance to tell nestmates the direction of flowers.",
        ordinal=2,
        chunk=1,
        section="Communication",
    ),
    hit(
        "Volcano",
        "A volcano is a rupture in the crust of a planet that lets hot lava, ash and gases escape.",
        ordinal=3,
    ),
    hit(
        "Volcano",
        "Mount Etna in Sicily is one of the most active volcanoes in the world.",
        ordinal=3,
        chunk=1,
    ),
]


@pytest.fixture
def corpus() -> list[FakeHit]:
    """Two chunks each of three wiki articles."""
    return list(CORPUS)


@pytest.fixture
def retriever(corpus: list[FakeHit]) -> FakeRetriever:
    return FakeRetriever(corpus)


@pytest.fixture
def make_hit():
    """The `hit(title, text, ...)` factory."""
    return hit


@pytest.fixture
def make_retriever():
    """The FakeRetriever class, for tests that need their own hits."""
    return FakeRetriever
