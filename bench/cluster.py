"""Benchmark: the Ray path (`librarian ingest --cluster`) against the local pipeline on the same
corpus, in one run: passages/s of each and their ratio (the cluster's overhead, aim >= 0.8), then
a Ray cluster of one node against the same with a second node started beside it (scaling with
workers). Run through `python bench/ingest.py --cluster local [--articles N]`.

"local" starts Ray in this process (all cores); the one- and two-node clusters are started
with `ray start` (one CPU each) and stopped at the end. With a GPU, the Ray path embeds on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HEAD_PORT = 6391


def _ingest(path: Path, lib: Path, embedder: Any, cluster: Any = None, **kw: Any) -> dict[str, Any]:
    from ingest.pipeline import SourceResult, ingest_paths
    from ingest.store import LibraryStore

    t0 = time.perf_counter()
    for ev in ingest_paths([path], lib, embedder_factory=embedder, cluster=cluster, **kw):
        if isinstance(ev, SourceResult) and ev.status != "added":
            raise SystemExit(f"  {ev.line}")
    seconds = time.perf_counter() - t0
    chunks = LibraryStore(lib).chunk_count()
    return {"seconds": seconds, "passages": chunks, "rate": chunks / seconds}


def _ray(*args: str) -> None:
    ray = str(Path(sys.executable).with_name("ray"))
    subprocess.run(
        [ray, *args, "--disable-usage-stats"] if args[0] == "start" else [ray, *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )


def _on(address: str, zim: Path, lib: Path, embedder: Any, **kw: Any) -> dict[str, Any]:
    from ingest.cluster import connect

    t0 = time.perf_counter()
    cluster = connect(address, cpus=kw.pop("cpus", None))
    joined = time.perf_counter() - t0
    try:
        result = _ingest(zim, lib, embedder, cluster=cluster, **kw)
    finally:
        cluster.shutdown()
    result["connect_s"] = joined
    result["where"] = cluster.describe()
    return result


def _line(label: str, r: dict[str, Any]) -> str:
    extra = f", joining the cluster {r['connect_s']:.1f} s more" if "connect_s" in r else ""
    return (
        f"  {label:<34} {r['rate']:8.1f} passages/s ({r['passages']:,} in {r['seconds']:.1f} s"
        f"{extra})"
    )


def _books(folder: Path, count: int) -> Path:
    """`count` small books (a dozen chapters each), as a folder of Gutenberg EPUBs is."""
    import random

    from tests.builders import Chapter, make_epub

    rng = random.Random(3)
    words = [
        "ship",
        "river",
        "king",
        "war",
        "city",
        "year",
        "church",
        "music",
        "island",
        "harbour",
        "bridge",
        "castle",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for b in range(count):
        chapters = [
            Chapter(
                f"Chapter {c}",
                "".join(
                    f"<p>{' '.join(rng.choices(words, k=60)).capitalize()}.</p>" for _ in range(8)
                ),
            )
            for c in range(12)
        ]
        make_epub(folder / f"book{b}.epub", chapters, title=f"Book {b}", identifier=f"b{b}")
    return folder


def run(zim: Path, address: str, home: Path, books: int = 40) -> None:
    from ingest.embedding import default_embedder

    default_embedder().embed(["warm up"])  # the ONNX export (first use only) is not measured
    # Both runs start cold, loading their model(s), as a user's run does.
    print("Ray path against the local pipeline, keyword stage and embedding:")
    local = _ingest(zim, home / "lib-local", default_embedder)
    print(_line("local pipeline", local))
    remote = _on(address, zim, home / "lib-ray", default_embedder)
    print(_line(f"Ray ({remote['where']})", remote))
    print(f"  ratio Ray / local: {remote['rate'] / local['rate']:.2f}")

    print("Keyword stage only (parsing on the cluster, writing here):")
    local_kw = _ingest(zim, home / "kw-local", None, keyword_only=True)
    print(_line("local pipeline", local_kw))
    remote_kw = _on(address, zim, home / "kw-ray", None, keyword_only=True)
    print(_line("Ray", remote_kw))
    print(f"  ratio Ray / local: {remote_kw['rate'] / local_kw['rate']:.2f}")
    shelf = _books(home / "books", books)
    print(f"Keyword stage of a folder of {books} books (a source each):")
    local_books = _ingest(shelf, home / "books-local", None, keyword_only=True)
    print(_line("local pipeline", local_books))
    remote_books = _on(address, shelf, home / "books-ray", None, keyword_only=True)
    print(_line("Ray", remote_books))
    print(f"  ratio Ray / local: {remote_books['rate'] / local_books['rate']:.2f}")

    if shutil.which(str(Path(sys.executable).with_name("ray"))) is None:
        print("the `ray` command is missing: the scaling figures are skipped")
        return
    print("Scaling with workers: a Ray cluster of one 1-CPU node, then with a second one:")
    head = f"127.0.0.1:{HEAD_PORT}"
    _ray("stop", "--force")
    try:
        _ray("start", "--head", f"--port={HEAD_PORT}", "--num-cpus=1", "--include-dashboard=false")
        one = _on(head, zim, home / "one-node", default_embedder)
        print(_line("1 node", one))
        _ray("start", f"--address={head}", "--num-cpus=1")
        two = _on(head, zim, home / "two-nodes", default_embedder)
        print(_line("2 nodes", two))
        print(f"  2 nodes / 1 node: {two['rate'] / one['rate']:.2f}")
    finally:
        _ray("stop", "--force")
