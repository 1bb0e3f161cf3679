"""Benchmark: ZIM articles/s read in path order vs in storage (cluster) order, on a shuffled
archive.

Run as `python bench/zim_order.py [--articles N]`. The archive is built once and cached (in
$LIBRARIAN_BENCH_DIR, default <tmp>/librarian-bench). `run()` returns the figures as a dict for
bench/ingest.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.readers.zim import ZimReader  # noqa: E402

log = logging.getLogger("bench.zim_order")

_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ber", "dan", "gol", "hin", "jor",
              "kel", "mar", "nor", "pel", "quin", "ros", "tal", "ur", "vex", "wyn",
              "zed"]  # fmt: skip


def _vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    """Made-up words: text that compresses about as well as real prose, not like a repeated list."""
    return ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(size)]


def _article_html(rng: random.Random, words: list[str], index: int) -> str:
    title = f"Topic {index:06d}"
    parts = [f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"]
    for section in range(rng.randint(2, 4)):
        parts.append(f"<h2>Section {section + 1}</h2>")
        for _ in range(rng.randint(2, 3)):
            sentence = rng.choices(words, k=rng.randint(50, 90))
            parts.append(f"<p>{title} {' '.join(sentence)}.</p>")
    parts.append("</body></html>")
    return "".join(parts)


def build_archive(path: Path, count: int, seed: int = 20) -> Path:
    """A ZIM of `count` articles added in random order, so storage order is not path order."""
    from libzim.writer import Creator, Hint, Item, StringProvider  # type: ignore[import-untyped]

    class _Item(Item):  # type: ignore[misc]
        def __init__(self, path: str, title: str, html: str) -> None:
            super().__init__()
            self._path, self._title, self._html = path, title, html

        def get_path(self) -> str:
            return self._path

        def get_title(self) -> str:
            return self._title

        def get_mimetype(self) -> str:
            return "text/html"

        def get_contentprovider(self):  # type: ignore[no-untyped-def]
            return StringProvider(self._html)

        def get_hints(self):  # type: ignore[no-untyped-def]
            return {Hint.FRONT_ARTICLE: True, Hint.COMPRESS: True}

    rng = random.Random(seed)
    words = _vocabulary(rng)
    order = list(range(count))
    rng.shuffle(order)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    creator = Creator(str(partial)).config_nbworkers(max(1, (os.cpu_count() or 1)))
    with creator as c:
        for index in order:
            c.add_item(
                _Item(f"Topic_{index:06d}", f"Topic {index:06d}", _article_html(rng, words, index))
            )
        c.set_mainpath(f"Topic_{order[0]:06d}")
        c.add_metadata("Title", "Shuffled benchmark archive")
        c.add_metadata("Language", "eng")
    partial.rename(path)
    return path


def _read_rate(path: Path, ids: list[int], budget_s: float | None) -> tuple[float, int, float]:
    """(articles/s, articles read, seconds) reading entries by id in the given order, on a
    freshly opened archive (cold cluster cache)."""
    from libzim.reader import Archive  # type: ignore[import-untyped]

    archive = Archive(str(path))
    start = time.perf_counter()
    done = 0
    total_bytes = 0
    for entry_id in ids:
        content = archive._get_entry_by_id(entry_id).get_item().content
        total_bytes += len(bytes(content).decode("utf-8"))
        done += 1
        if budget_s and done % 256 == 0 and time.perf_counter() - start > budget_s:
            break
    elapsed = time.perf_counter() - start
    return done / elapsed, done, elapsed


def run(
    articles: int = 20_000, budget_s: float | None = None, bench_dir: Path | None = None
) -> dict:
    """Build (or reuse) the shuffled archive and measure both orders side by side.

    budget_s caps the seconds spent on each order (path order on 20k articles takes minutes);
    None reads every article in both orders.
    """
    folder = Path(
        bench_dir
        or os.environ.get("LIBRARIAN_BENCH_DIR")
        or Path(tempfile.gettempdir()) / "librarian-bench"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"zim_order_shuffled_{articles}.zim"
    built_s = 0.0
    if not path.exists():
        t0 = time.perf_counter()
        build_archive(path, articles)
        built_s = time.perf_counter() - t0
    with ZimReader(path) as reader:
        cluster_ids = [int(i) for i in reader.reading_order().entries]
    path_ids = sorted(cluster_ids)  # entry ids are in path order
    cluster_rate, cluster_n, cluster_s = _read_rate(path, cluster_ids, budget_s)
    path_rate, path_n, path_s = _read_rate(path, path_ids, budget_s)
    with ZimReader(path) as reader:
        t0 = time.perf_counter()
        reader_n = sum(1 for _ in reader.documents())
        reader_s = time.perf_counter() - t0
    return {
        "archive": str(path),
        "archive_mb": round(path.stat().st_size / 1e6, 1),
        "articles": len(cluster_ids),
        "build_s": round(built_s, 1),
        "path_order_articles_per_s": round(path_rate, 1),
        "path_order_read": path_n,
        "path_order_s": round(path_s, 2),
        "cluster_order_articles_per_s": round(cluster_rate, 1),
        "cluster_order_read": cluster_n,
        "cluster_order_s": round(cluster_s, 2),
        "reader_documents_per_s": round(reader_n / reader_s, 1),
        "speedup": round(cluster_rate / path_rate, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--budget", type=float, default=None, help="seconds per order at most")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    result = run(args.articles, args.budget)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"archive: {result['archive']} "
            f"({result['archive_mb']} MB, {result['articles']} articles)"
        )
        print(
            f"path order:    {result['path_order_articles_per_s']:>10.1f} articles/s "
            f"({result['path_order_read']} in {result['path_order_s']} s)"
        )
        print(
            f"cluster order: {result['cluster_order_articles_per_s']:>10.1f} articles/s "
            f"({result['cluster_order_read']} in {result['cluster_order_s']} s)"
        )
        print(f"ZimReader.documents(): {result['reader_documents_per_s']:.1f} documents/s")
        print(f"cluster order is {result['speedup']}x faster than path order")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
