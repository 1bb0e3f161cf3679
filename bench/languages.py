"""Keyword and hybrid search in Japanese, Chinese, Korean, Thai, Arabic, Russian, Hindi, French,
German and Spanish: hit@5 of the
questions in tests/languages.py with LanceDB's full-text index alone (its English analysis, as
every library had before) and with the terms index beside it (ingest.store_terms), side by side
in one run, on a library of small books in those languages (the real embedder: the bundled
all-MiniLM-L6-v2, or --hashing for the test one).

Run as `python bench/languages.py [--hashing]`; it writes nothing outside a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashing", action="store_true", help="the test embedder (no model)")
    parser.add_argument(
        "--fixtures",
        action="store_true",
        help="also the Arabic book and Belarusian archive of ../shared/fixtures",
    )
    args = parser.parse_args()

    from ingest.embedding import HashingEmbedder, default_embedder
    from ingest.pipeline import ingest_paths
    from ingest.store import LibraryStore
    from tests.languages import KEYWORD_QUESTIONS, TOPICS
    from tests.unit.ingest.test_keyword_languages import build

    embedder = HashingEmbedder(dim=384) if args.hashing else default_embedder("cpu")
    with tempfile.TemporaryDirectory(prefix="librarian-languages-") as tmp:
        root = Path(tmp)
        books = build(root, list(TOPICS))
        lib = root / "lib"
        list(ingest_paths(books, lib, embedder_factory=embedder))
        store = LibraryStore(lib, embedder)
        print(f"{store.chunk_count()} passages in {len(books)} books, embedder {embedder.name}")
        print(
            "\n| language | keyword, main index | keyword, + terms "
            "| hybrid, main index | hybrid, + terms |"
        )
        print("|---|---|---|---|---|")
        totals = [0.0, 0.0, 0.0, 0.0]
        count = 0
        for lang, questions in KEYWORD_QUESTIONS.items():
            cells = _hit_rates(
                store,
                [
                    (question, lambda h, t=TOPICS[lang][topic][0]: h.locator.title == t)
                    for question, topic in questions
                ],
            )
            for i, c in enumerate(cells):
                totals[i] += c * len(questions)
            count += len(questions)
            print(f"| {lang} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
        print("| all | " + " | ".join(f"{t / count:.2f}" for t in totals) + " |")
    if args.fixtures:
        _fixtures(embedder)
    return 0


def _fixtures(embedder: object) -> None:
    """hit@5 of FIXTURE_QUESTIONS over the real files, without and with the terms index."""
    from ingest.pipeline import ingest_paths
    from ingest.store import LibraryStore
    from tests.conftest import SHARED_FIXTURES
    from tests.languages import FIXTURE_QUESTIONS

    if not SHARED_FIXTURES.is_dir():
        print(f"\nno fixtures at {SHARED_FIXTURES}")
        return
    with tempfile.TemporaryDirectory(prefix="librarian-languages-real-") as tmp:
        lib = Path(tmp) / "lib"
        files = [SHARED_FIXTURES / name for name in FIXTURE_QUESTIONS]
        list(ingest_paths(files, lib, embedder_factory=embedder, workers=1))
        store = LibraryStore(lib, embedder)  # type: ignore[arg-type]
        print(f"\nreal files: {store.chunk_count()} passages")
        print(
            "\n| file | keyword, main index | keyword, + terms "
            "| hybrid, main index | hybrid, + terms |"
        )
        print("|---|---|---|---|---|")
        for name, questions in FIXTURE_QUESTIONS.items():
            cells = _hit_rates(
                store,
                [
                    (question, lambda h, p=phrase: p in f"{h.locator.title} {h.text}")
                    for question, phrase in questions
                ],
            )
            print(f"| {Path(name).name} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")


def _hit_rates(store: Any, questions: list[tuple[str, Callable[[Any], bool]]]) -> list[float]:
    """hit@5 of `questions` (each with what tells its answering hit) by keyword and by hybrid
    search, each with the main full-text index alone and with the terms index beside it."""
    from ingest import store_terms

    real = store_terms.TermsMixin.keyword_terms
    cells = []
    try:
        for mode in ("keyword", "hybrid"):
            for with_terms in (False, True):
                store_terms.TermsMixin.keyword_terms = (  # type: ignore[method-assign]
                    real if with_terms else (lambda self, q, limit, where, languages=(): [])
                )
                found = 0
                for question, answers in questions:
                    hits = store.search(question, k=5, mode=mode)
                    found += any(answers(h) for h in hits)
                cells.append(found / len(questions))
    finally:
        store_terms.TermsMixin.keyword_terms = real  # type: ignore[method-assign]
    return cells


if __name__ == "__main__":
    raise SystemExit(main())
