"""Benchmark: could a Wikipedia ZIM's own full-text index replace our keyword index?

Run by path: `python bench/zim_fulltext.py [--zim PATH] [--library PATH] [--workdir DIR]`.

Kiwix's Wikipedia archives carry a Xapian full-text index that libzim's `Searcher` (a dependency
already) can query. Using it would leave the text's keyword index out of the store (README, "Big
archives": text + index are ~0.64x a `nopic` today). This measures what it would find, on the
demo questions whose answer is one Wikipedia article (bench/data/questions_demo.json: real
Vital Articles titles, so a full English Wikipedia ZIM answers them too):

- libzim as Kiwix asks it: the question as typed (its parser joins words with AND);
- relaxed: the question's content words, dropped one by one from the most common (each word's
  match count is asked first) until five articles match;
- with --library: our keyword search (BM25 over passages) on a library holding the same ZIM.

Printed: article hit@1 / hit@5 and latency p50 / p95 of each. By default the ZIM is the demo
archive packaging/build_demo.py builds (cached in --workdir, as bench/answers.py does); pass a
real Wikipedia ZIM with a full-text index to measure at its scale.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "bench"))  # after the root: bench/ingest.py must not hide `ingest`

from questions import load_article_questions  # noqa: E402

WANT = 5


def content_words(question: str, stop: frozenset[str]) -> list[str]:
    """The question's words as typed (Xapian stems them), less stop words and single letters."""
    words = (w for w in re.findall(r"\w+", question.lower()) if len(w) > 1 and w not in stop)
    return list(dict.fromkeys(words))


class ZimSearch:
    def __init__(self, zim: Path) -> None:
        from libzim.reader import Archive  # type: ignore[import-untyped]
        from libzim.search import Query, Searcher  # type: ignore[import-untyped]

        from ingest.terms import base_language, stopwords

        self.archive = Archive(str(zim))
        if not self.archive.has_fulltext_index:
            raise SystemExit(f"{zim}: this archive has no full-text index")
        self._searcher = Searcher(self.archive)
        self._query = Query
        language = ""
        if "Language" in self.archive.metadata_keys:
            language = bytes(self.archive.get_metadata("Language")).decode("utf-8", "replace")
        self.stop = stopwords(base_language(language) or "en")

    def _paths(self, text: str, limit: int) -> tuple[list[str], int]:
        found = self._searcher.search(self._query().set_query(text))
        return list(found.getResults(0, limit)), int(found.getEstimatedMatches())

    def title(self, path: str) -> str:
        return str(self.archive.get_entry_by_path(path).title)

    def as_typed(self, question: str) -> list[str]:
        return self._paths(question, WANT)[0]

    def relaxed(self, question: str) -> list[str]:
        words = content_words(question, self.stop)
        matches = {w: self._paths(w, 0)[1] for w in words}
        words = sorted((w for w in words if matches[w]), key=lambda w: matches[w])
        out: list[str] = []
        while words and len(out) < WANT:
            paths, _ = self._paths(" ".join(words), WANT)
            out += [p for p in paths if p not in out]
            words.pop()  # the most common word left
        return out[:WANT]


def measure(name: str, titles_of: Callable[[str], list[str]], questions: list[Any]) -> list[str]:
    at1 = at5 = 0
    times = []
    for q in questions:
        t0 = time.perf_counter()
        titles = titles_of(q.question)
        times.append(time.perf_counter() - t0)
        at1 += bool(titles) and titles[0] == q.title
        at5 += q.title in titles[:WANT]
    n = len(questions)
    times.sort()
    return [
        name,
        f"{at1 / n:.2f} / {at5 / n:.2f}",
        f"{statistics.median(times) * 1000:.1f} / {times[int(0.95 * (n - 1))] * 1000:.1f}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zim", type=Path, help="a ZIM with a full-text index (default: demo)")
    parser.add_argument("--library", type=Path, help="a library holding that ZIM, to compare")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.gettempdir()) / "librarian-bench-answers"
    zim = args.zim
    if zim is None:
        import runpy

        build = runpy.run_path(str(REPO / "packaging" / "build_demo.py"))["build_demo"]
        zim = build(workdir / "demo" / "wikipedia_vital_articles_demo.zim")
    search = ZimSearch(zim)
    questions = [q for q in load_article_questions() if q.answerable]
    print(
        f"{zim.name}: {search.archive.article_count:,} articles; {len(questions)} questions "
        f"whose answer is one article"
    )
    rows = [
        measure(
            "ZIM index, as typed (AND)",
            lambda q: [search.title(p) for p in search.as_typed(q)],
            questions,
        ),
        measure(
            "ZIM index, relaxed AND",
            lambda q: [search.title(p) for p in search.relaxed(q)],
            questions,
        ),
    ]
    if args.library:
        from ingest.store import LibraryStore

        store = LibraryStore(args.library)
        rows.append(
            measure(
                "our keyword search (passages)",
                lambda q: [h.locator.title for h in store.search(q, k=WANT, mode="keyword")],
                questions,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    header = ["search", "article hit@1 / hit@5", "ms p50 / p95"]
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for cells in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
