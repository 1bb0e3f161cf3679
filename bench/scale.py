"""Benchmark: English Wikipedia on one machine — the keyword stage, the store and search at scale.

Run by path: `python bench/scale.py [--articles 60000] [--sizes 100000,1000000] [--only ...]`.
Everything it builds (Wikipedia-like ZIMs from bench/wikigen.py, stores of 100 k / 1 M / 10 M
passages, real MiniLM vectors of the demo's text) is cached in --workdir (default
$LIBRARIAN_BENCH_DIR or <tmp>/librarian-bench), so a second run measures without rebuilding.

Sections (`--only` picks some):

- keyword: the limit — the same documents read in cluster order, cleaned and chunked by N plain
  processes with no store — against `ingest_paths(keyword_only=True, workers=N)`, for N = 1 and
  the machine's cores (the two alternate --repeat times: the ratio of the best of each, and
  the median ratio of each run against the limit measured just before it); stage 1 (text
  written) and the full-text index build timed apart; peak
  memory of the process tree; where one worker's time goes (read / clean / chunk).
- directory: a ZIM padded to millions of entries (redirects), read with several workers: the
  directory is parsed once per source, not once per task.
- store: bytes per passage for text, full-text index and vectors; text + index against the
  ZIM's own size.
- search: stores of each --sizes passages (text through the real pipeline, vectors synthetic
  but shaped like real MiniLM vectors): keyword, vector (recall@10 against exact search) and
  hybrid latency p50/p95, index build time and peak memory, and the cost of adding a second
  source to the big store.
- The extrapolation to English Wikipedia (6.8 M articles) from the measured rates.
- passages (only when asked: `--only passages`): the store's bytes per article when the same
  archive is cut into passages of each --passage-sizes tokens.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the root: bench/ingest.py must not hide `ingest`

import numpy as np  # noqa: E402
from procmem import Peak, run_watched  # noqa: E402

WIKIPEDIA_ARTICLES = 6_800_000
ARCHIVE_EPOCH = "v1"  # bump when wikigen changes, so cached archives are rebuilt


# ------------------------------------------------------------------------------ archives


def wiki_zim(workdir: Path, articles: int, pad: int = 0, compress: bool = True) -> Path:
    """The cached Wikipedia-like ZIM of `articles` articles (and `pad` extra directory entries);
    uncompressed clusters when `compress` is False (see wikigen.build_wiki_zim)."""
    from wikigen import build_wiki_zim

    name = (
        f"wiki_{ARCHIVE_EPOCH}_{articles}"
        + (f"_pad{pad}" if pad else "")
        + ("" if compress else "_raw")
        + ".zim"
    )
    path = workdir / name
    if not path.exists():
        print(f"  building {name} (once; cached) ...", flush=True)
        t0 = time.perf_counter()
        build_wiki_zim(
            path,
            articles,
            pad_entries=pad,
            progress=True,
            compress=compress,
            processes=max(1, (os.cpu_count() or 1)),
        )
        print(f"  built in {time.perf_counter() - t0:.0f} s, {path.stat().st_size / 1e6:.0f} MB")
    return path


# ------------------------------------------------------------------------ the limit (plain)


def _limit_slice(task: tuple[str, int, int]) -> dict[str, float]:
    """In a plain process: read documents [start, stop) in cluster order, clean and chunk them."""
    from ingest.chunking import chunk_document
    from ingest.html_text import html_to_text
    from ingest.readers.zim import ZimReader

    path, start, stop = task
    t_open = time.perf_counter()
    reader = ZimReader(path)
    reader.article_count()
    opened = time.perf_counter() - t_open
    read_s = clean_s = chunk_s = 0.0
    docs = chunks = 0
    it = reader.documents(start)
    while True:
        t0 = time.perf_counter()
        doc = next(it, None)
        t1 = time.perf_counter()
        read_s += t1 - t0
        if doc is None or doc.ordinal >= stop:
            break
        text = html_to_text(doc.html, doc.title)
        t2 = time.perf_counter()
        chunks += len(chunk_document("bench", doc.ordinal, doc.doc_id, text))
        t3 = time.perf_counter()
        clean_s += t2 - t1
        chunk_s += t3 - t2
        docs += 1
    return {
        "docs": docs,
        "chunks": chunks,
        "open_s": opened,
        "read_s": read_s,
        "clean_s": clean_s,
        "chunk_s": chunk_s,
    }


def measure_limit(zim: Path, processes: int) -> dict[str, float]:
    """Documents/s of `processes` plain processes, each on a contiguous share of the archive."""
    from ingest.readers.zim import ZimReader

    total = ZimReader(zim).article_count()
    bounds = [round(total * i / processes) for i in range(processes + 1)]
    tasks = [(str(zim), bounds[i], bounds[i + 1]) for i in range(processes)]
    ctx = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    with ctx.Pool(processes) as pool:
        parts = pool.map(_limit_slice, tasks, chunksize=1)
    wall = time.perf_counter() - t0
    docs = sum(p["docs"] for p in parts)
    out = {k: sum(p[k] for p in parts) for k in parts[0]}
    out.update(wall_s=wall, docs_per_s=docs / wall)
    return out


# -------------------------------------------------------------------- the pipeline (child)


def _child_pipeline(zim: str, library: str, workers: int, chunk_tokens: int = 0) -> None:
    """In a child process: keyword-only ingest (passages of `chunk_tokens`, 0: the default);
    prints the phase times as one JSON line."""
    from ingest.pipeline import ProgressEvent, SourceResult, ingest_paths

    t0 = time.perf_counter()
    marks: dict[str, float] = {}
    result: dict[str, Any] = {}
    indexing_seen = 0
    size = {"chunk_tokens": chunk_tokens} if chunk_tokens else {}
    for ev in ingest_paths([zim], library, keyword_only=True, workers=workers, **size):
        now = time.perf_counter() - t0
        if isinstance(ev, ProgressEvent):
            if ev.stage == "indexing":
                indexing_seen += 1
                marks.setdefault("rows_written", now)
            marks.setdefault("first_event", now)
        elif isinstance(ev, SourceResult):
            marks["source_done"] = now
            result = {"status": ev.status, "chunks": ev.chunks, "line": ev.line}
    marks["end"] = time.perf_counter() - t0
    print(json.dumps({"marks": marks, **result}), flush=True)


def measure_pipeline(
    zim: Path, library: Path, workers: int, chunk_tokens: int = 0
) -> tuple[dict[str, Any], Peak]:
    shutil.rmtree(library, ignore_errors=True)
    out, peak, _ = run_watched(
        [sys.executable, __file__, "_pipeline", str(zim), str(library), str(workers),
         str(chunk_tokens)]
    )  # fmt: skip
    return json.loads(out.strip().splitlines()[-1]), peak


# ---------------------------------------------------------------------------- store bytes


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def store_bytes(library: Path) -> dict[str, int]:
    """Bytes on disk: chunk text, full-text index, other indexes, vectors, vector index."""
    out = {"text": 0, "fts": 0, "other_index": 0, "vectors": 0, "vector_index": 0}
    chunks = library / "chunks.lance"
    out["text"] = _dir_bytes(chunks / "data")
    for folder in (chunks / "_indices").glob("*"):
        names = {f.name for f in folder.iterdir()}
        size = _dir_bytes(folder)
        if any("invert" in n or "tokens" in n for n in names):
            out["fts"] += size
        else:
            out["other_index"] += size
    vectors = library / "vectors.lance"
    out["vectors"] = _dir_bytes(vectors / "data")
    out["vector_index"] = _dir_bytes(vectors / "_indices")
    return out


def settle(library: Path) -> None:
    """Drop old versions' files, so the sizes are what the store holds at rest."""
    import lancedb

    db = lancedb.connect(str(library))
    for name in db.list_tables().tables:
        db.open_table(name).optimize(cleanup_older_than=timedelta(0))


# ---------------------------------------------------------------------- real-ish vectors


def real_vectors(workdir: Path, count: int = 12_000) -> np.ndarray:
    """MiniLM vectors of real English passages (the demo's Wikipedia lead sections), cached."""
    cache = workdir / f"real_minilm_{count}.npy"
    if cache.exists():
        return np.load(cache)
    import runpy

    from ingest.chunking import chunk_document, embedding_text
    from ingest.embedding import default_embedder
    from ingest.html_text import html_to_text
    from ingest.readers.zim import ZimReader

    demo = runpy.run_path(str(ROOT / "packaging" / "build_demo.py"))
    zim = demo["build_demo"](workdir / "demo" / "wikipedia_vital_articles_demo.zim")
    texts: list[str] = []
    reader = ZimReader(zim)
    for doc in reader.documents():
        text = html_to_text(doc.html, doc.title)
        for c in chunk_document("d", doc.ordinal, doc.doc_id, text):
            texts.append(embedding_text(c.locator.title, c.locator.section, c.text))
        if len(texts) >= count:
            break
    print(f"  embedding {len(texts[:count]):,} real passages (once; cached) ...", flush=True)
    vectors = default_embedder("cpu").embed(texts[:count])
    np.save(cache, vectors)
    return vectors


class VectorShape:
    """Synthetic vectors shaped like real ones: a real MiniLM vector plus noise drawn from the
    real vectors' own covariance, scaled so a vector keeps a cosine of ~0.8 to its parent (near
    neighbours of real passages sit at 0.6-0.9). Block b of rows is a pure function of b."""

    BLOCK = 50_000

    def __init__(self, real: np.ndarray, seed: int = 11) -> None:
        self.seed = seed
        half = len(real) * 3 // 4
        self.parents = real[:half]
        self.held_out = real[half:]
        centred = real - real.mean(axis=0)
        cov = centred.T @ centred / len(real)
        w, v = np.linalg.eigh(cov)
        self.mix = (v * np.sqrt(np.maximum(w, 0))).astype(np.float32)  # noise = mix @ z
        self.scale = self._calibrate()

    def _noisy(self, base: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
        z = rng.standard_normal((len(base), base.shape[1]), dtype=np.float32)
        v = base + scale * (z @ self.mix.T)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def _calibrate(self) -> float:
        rng = np.random.default_rng(self.seed)
        base = self.parents[:2000]
        lo, hi = 0.0, 20.0
        for _ in range(30):
            mid = (lo + hi) / 2
            cos = float(np.mean(np.sum(self._noisy(base, rng, mid) * base, axis=1)))
            lo, hi = (mid, hi) if cos > 0.8 else (lo, mid)
        return (lo + hi) / 2

    def block(self, b: int, rows: int | None = None) -> np.ndarray:
        rng = np.random.default_rng((self.seed, b))
        n = rows or self.BLOCK
        parents = self.parents[rng.integers(0, len(self.parents), n)]
        return self._noisy(parents, rng, self.scale)

    def rows(self, total: int) -> Iterator[tuple[int, np.ndarray]]:
        for b, start in enumerate(range(0, total, self.BLOCK)):
            yield start, self.block(b, min(self.BLOCK, total - start))

    def queries(self, n: int, salt: int = 10**6) -> np.ndarray:
        rng = np.random.default_rng((self.seed, salt))
        picks = self.held_out[rng.integers(0, len(self.held_out), n)]
        return self._noisy(picks, rng, self.scale * 0.5)


# ------------------------------------------------------------------------ search at scale


@dataclass
class Latency:
    p50: float
    p95: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        xs = sorted(seconds)
        return cls(statistics.median(xs) * 1000, xs[min(len(xs) - 1, int(len(xs) * 0.95))] * 1000)

    def __str__(self) -> str:
        return f"{self.p50:6.1f} / {self.p95:6.1f}"


def _child_vectors(library: str, workdir: str) -> None:
    """In a child: a synthetic vector for every chunk (in table order), then maintain()."""
    _assign_vectors(library, workdir)


def _assign_vectors(library: str, workdir: str) -> None:
    """A synthetic vector for every chunk (in table order), then maintain(); prints the times
    and the peak RSS as one JSON line."""
    from ingest.embedding import HashingEmbedder
    from ingest.store import LibraryStore

    shape = VectorShape(real_vectors(Path(workdir)))
    embedder = HashingEmbedder(dim=shape.mix.shape[0], name="bench-minilm-shaped")
    store = LibraryStore(library, embedder, check_embedder=False)
    t0 = time.perf_counter()
    with store.writing():
        if store.vector_count() == 0:
            blocks = shape.rows(store.chunk_count())
            pending = np.zeros((0, shape.mix.shape[0]), np.float32)
            for batch in _scan_ids(store):
                while len(pending) < batch.num_rows:
                    pending = np.concatenate([pending, next(blocks)[1]])
                vecs, pending = pending[: batch.num_rows], pending[batch.num_rows :]
                sids = np.asarray(batch.column("source_id").to_pylist(), dtype=object)
                ids = batch.column("chunk_id").to_pylist()
                ords = batch.column("ordinal").to_pylist()
                for sid in sorted(set(sids)):
                    sel = np.flatnonzero(sids == sid)
                    store.add_vectors(sid, [ids[i] for i in sel], [ords[i] for i in sel], vecs[sel])
        written = time.perf_counter() - t0
        t1 = time.perf_counter()
        store.maintain()
        built = time.perf_counter() - t1
    print(
        json.dumps({"write_s": written, "index_s": built, "vector_peak": _peak_rss()}),
        flush=True,
    )


def vector_format() -> str:
    """What a store's vector columns were measured with: the index kind and the stored type."""
    from ingest.records import VECTOR_ITEM_TYPE
    from ingest.store_indexes import VECTOR_INDEX_KIND

    return f"{VECTOR_INDEX_KIND}/{VECTOR_ITEM_TYPE}"


def _child_reindex(library: str) -> None:
    """In a child: bring a cached store to this version's vector format (`reclaim`: float32
    vectors halved), then build its vector index afresh; prints the build time as JSON."""
    from ingest import indexes as ix
    from ingest.store import LibraryStore

    store = LibraryStore(library)
    with store.writing():
        t0 = time.perf_counter()
        ix.drain(store.reclaim())
        rewrite = time.perf_counter() - t0
        ds = ix.open_table(store._table_path("vectors"))
        if ix.has_index(ds, ix.VECTOR_INDEX):
            ds.drop_index(ix.VECTOR_INDEX)
        t1 = time.perf_counter()
        store.maintain()
        built = time.perf_counter() - t1
    print(json.dumps({"rewrite_s": rewrite, "index_s": built}), flush=True)


# Stores at least this big get their text written straight into the store (see _child_direct).
DIRECT_MIN = 2_000_000
SECOND_SOURCE_ROWS = 100_000  # the source added to the biggest store


def _template_shape(template: str) -> tuple[np.ndarray, float]:
    """Passage lengths (words) and passages per article of a store the pipeline built."""
    from ingest.store import LibraryStore

    store = LibraryStore(template)
    sample = store._chunks.search().select(["text", "doc_id"]).limit(50_000).to_arrow()
    lengths = np.array([len(t.split()) for t in sample.column("text").to_pylist()], np.int64)
    per_article = sample.num_rows / max(1, len(set(sample.column("doc_id").to_pylist())))
    return lengths, per_article


def _write_generated(store: Any, template: str, passages: int, seed: int) -> str:
    """Add one source of `passages` generated passages to `store`, the pipeline's way (rows in
    fragment-sized batches, the source visible once all are written); returns its id."""
    import pyarrow as pa
    from wikigen import _SECTION_NAMES, WikiGenerator

    from ingest.pipeline import WRITE_BATCH_ROWS
    from ingest.records import CHUNK_COLUMNS, SourceRecord, chunks_schema, source_id_for

    lengths, per_article = _template_shape(template)
    articles = int(math.ceil(passages / per_article))
    gen = WikiGenerator(articles, seed=1)  # the archives' vocabulary; titles of its own
    identity = f"bench-generated:{passages}:{seed}"
    sid = source_id_for(identity)
    store.add_source(
        SourceRecord(
            source_id=sid, path=f"/bench/generated-{passages}-{seed}.zim", kind="zim",
            title=f"Generated {passages:,} passages ({seed})", identity=identity,
            documents=articles, stage="reading",
        )
    )  # fmt: skip
    sections = np.array(["", *_SECTION_NAMES], dtype=object)
    done = 0
    for block, start in enumerate(range(0, passages, WRITE_BATCH_ROWS)):
        rows = min(WRITE_BATCH_ROWS, passages - start)
        rng = np.random.default_rng((seed, block))
        words = rng.choice(lengths, size=rows)
        picks = gen.words[np.searchsorted(gen.cdf, rng.random(int(words.sum())))].copy()
        years = rng.random(len(picks)) < 0.015
        picks[years] = rng.integers(1000, 2030, int(years.sum())).astype(str)
        ends = np.cumsum(rng.integers(8, 31, len(picks) // 8 + 1))
        ends = ends[ends < len(picks)]
        picks[ends] = np.char.add(picks[ends].astype(str), ".")
        bounds = np.concatenate([[0], np.cumsum(words)])
        texts = [" ".join(picks[bounds[i] : bounds[i + 1]]) + "." for i in range(rows)]
        index = np.arange(start, start + rows)
        ordinal = (index / per_article).astype(np.int64)
        first = np.ceil(ordinal * per_article).astype(np.int64)
        chunk_index = (index - first).astype(np.int32)
        sizes = np.array([len(t) + 1 for t in texts], np.int64)
        offset = np.zeros(rows, np.int64)  # start of each passage within its article
        for i in range(1, rows):
            offset[i] = 0 if chunk_index[i] == 0 else offset[i - 1] + sizes[i - 1]
        table = pa.table(
            {
                "chunk_id": [f"{sid}:{o}:{c}" for o, c in zip(ordinal, chunk_index, strict=True)],
                "source_id": [sid] * rows,
                "doc_id": [gen.path_of(gen.titles[o]) for o in ordinal],
                "title": [gen.titles[o] for o in ordinal],
                "section": sections[np.minimum(chunk_index, len(sections) - 1)].tolist(),
                "ordinal": ordinal,
                "chunk_index": chunk_index,
                "start": offset.astype(np.int32),
                "end": (offset + sizes - 1).astype(np.int32),
                "text": texts,
            },
            schema=chunks_schema(),
        ).select(CHUNK_COLUMNS)
        store.add_chunks(table)
        done += rows
        if block % 20 == 0:
            print(f"  {done:,}/{passages:,} passages written", file=sys.stderr, flush=True)
    store.update_source(sid, stage="keyword", chunks=passages, read_ordinal=articles)
    return sid


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child_direct(library: str, workdir: str, template: str, passages: int) -> None:
    """In a child: a store of `passages` generated passages written straight into it, then its
    keyword index (maintain()), then synthetic vectors and their index, each timed with the
    peak RSS so far. Same vocabulary and word frequencies as the archives, passage lengths and
    passages per article sampled from `template` (a store the pipeline built from a generated
    archive). The pipeline's own keyword-stage rate is the keyword section's measurement;
    writing 1.3 M articles into a ZIM first would take hours on 2 cores."""
    from ingest.store import LibraryStore

    store = LibraryStore(library)
    t0 = time.perf_counter()
    with store.writing():
        _write_generated(store, template, passages, seed=1)
        written = time.perf_counter() - t0
        t1 = time.perf_counter()
        store.maintain()
        text_index = time.perf_counter() - t1
    text_peak = _peak_rss()
    _assign_vectors(library, workdir)
    print(
        json.dumps({"keyword_s": written, "text_index_s": text_index, "keyword_peak": text_peak}),
        flush=True,
    )


def _child_second(library: str, workdir: str, template: str, passages: int) -> None:
    """In a child: add a second source of `passages` passages (text and synthetic vectors) to
    the big store and bring its indexes up to date — timed, to show it costs in proportion to
    the new source, not the store — then remove it again so the store is as measured."""
    from ingest.embedding import HashingEmbedder
    from ingest.store import LibraryStore

    shape = VectorShape(real_vectors(Path(workdir)))
    embedder = HashingEmbedder(dim=shape.mix.shape[0], name="bench-minilm-shaped")
    store = LibraryStore(library, embedder, check_embedder=False)
    with store.writing():
        t0 = time.perf_counter()
        sid = _write_generated(store, template, passages, seed=2)
        rows = store._chunks.search().where(f"source_id = '{sid}'")
        batch = rows.select(["chunk_id", "ordinal"]).limit(None).to_arrow()
        vecs = shape.block(10**6, batch.num_rows)
        store.add_vectors(
            sid, batch.column("chunk_id").to_pylist(), batch.column("ordinal").to_pylist(), vecs
        )
        written = time.perf_counter() - t0
        t1 = time.perf_counter()
        store.maintain()
        indexes = time.perf_counter() - t1
        peak = _peak_rss()
        store.remove(sid)
        store.maintain(cleanup_after=timedelta(0))
    print(
        json.dumps({"rows": passages, "write_s": written, "index_s": indexes, "peak": peak}),
        flush=True,
    )


def _scan_ids(store: Any, batch_rows: int = 200_000) -> Iterator[Any]:
    """chunk_id, source_id, ordinal of every chunk in table order (the same on every scan of
    an unchanged table): the synthetic vectors are assigned in this order."""
    query = store._chunks.search().select(["chunk_id", "source_id", "ordinal"]).limit(None)
    yield from query.to_batches(batch_rows)


def _ids_at(store: Any, rows: set[int]) -> dict[int, str]:
    """The chunk ids at these positions of the table order."""
    out: dict[int, str] = {}
    pos = 0
    for batch in _scan_ids(store):
        wanted = [r for r in rows if pos <= r < pos + batch.num_rows]
        if wanted:
            ids = batch.column("chunk_id")
            for r in wanted:
                out[r] = ids[r - pos].as_py()
        pos += batch.num_rows
    return out


def keyword_queries(n: int, seed: int = 3) -> list[str]:
    """Questions a user would type: 2-3 topic words (mid-frequency to rare) in a question."""
    from wikigen import WikiGenerator

    gen = WikiGenerator(10, seed=1)  # the same vocabulary as the archives
    rng = np.random.default_rng(seed)
    out = []
    templates = ["what is {}", "{}", "who was {}", "history of {}", "where is {} located"]
    for i in range(n):
        k = int(rng.integers(2, 4))
        picks = np.searchsorted(gen.cdf, 0.45 + 0.55 * rng.random(k))
        words = " ".join(str(gen.words[p]) for p in picks)
        out.append(templates[i % len(templates)].format(words))
    return out


def _child_search(library: str, workdir: str, queries: int) -> None:
    """In a child: keyword, vector (with recall@10 against exact search) and hybrid latency,
    keyword and hybrid at the depth a chat question asks for."""
    from app.chat.retrieval import RetrievalConfig
    from ingest.embedding import default_embedder
    from ingest.lance_import import forget_lance_session, lance_session
    from ingest.store import LibraryStore

    shape = VectorShape(real_vectors(Path(workdir)))
    real = default_embedder("cpu")
    real.embed(["warm up"])

    class Fixed:
        """Gives search the synthetic query vector (the store embeds the query with it)."""

        name = "bench-minilm-shaped"
        dim = shape.mix.shape[0]
        vector = np.zeros(dim, np.float32)
        real_cost = True

        def embed(self, texts: list[str]) -> np.ndarray:
            if self.real_cost:
                real.embed(texts)  # hybrid pays the real query embedding
            return self.vector[None, :]

    fixed = Fixed()
    store = LibraryStore(library, fixed)  # type: ignore[arg-type]
    texts = keyword_queries(queries)
    qvecs = shape.queries(queries)
    # Each part is measured after as many other questions of its kind: a library in use has
    # its indexes open and the pages most questions need in memory, while these questions'
    # own words and vector partitions are still new to it. (The first of those other
    # questions open every index: up to a second each at 10 M passages.)
    warm_texts = keyword_queries(queries, seed=4)
    warm_vecs = shape.queries(queries, salt=10**6 + 1)
    chat = RetrievalConfig()
    depth = chat.fetch(chat.passages)  # the chunks a chat question asks the store for
    for q in warm_texts:
        store.search(q, k=depth, mode="keyword")
    kw = []
    for q in texts:
        t0 = time.perf_counter()
        store.search(q, k=depth, mode="keyword")
        kw.append(time.perf_counter() - t0)
    total = store.chunk_count()
    # The exact answers are computed once per store size and kept: the exact search reads all
    # the synthetic vectors, which at 10 M pushed the store out of the file cache between the
    # keyword and the vector parts, so their figures depended on what had run before.
    shape_id = zlib.crc32(shape.mix.tobytes())
    cached = Path(workdir) / f"exact_top10_{total}_{queries}_{shape_id:08x}.npy"
    if cached.exists():
        exact = np.load(cached)
    else:
        exact = _exact_top(shape, qvecs, total, 10)
        np.save(cached, exact)
    names = _ids_at(store, {int(r) for r in exact.ravel()})
    fixed.real_cost = False
    for q in warm_vecs:
        fixed.vector = q
        store.search("q", k=10, mode="vector")
    vec, recalls = [], []
    for i, q in enumerate(qvecs):
        fixed.vector = q
        t0 = time.perf_counter()
        hits = store.search("q", k=10, mode="vector")
        vec.append(time.perf_counter() - t0)
        want = {names[int(j)] for j in exact[i]}
        recalls.append(len(want & {h.chunk_id for h in hits}) / 10)
    fixed.real_cost = True
    for i, q in enumerate(warm_texts):
        fixed.vector = warm_vecs[i]
        store.search(q, k=depth, mode="hybrid")
    hyb = []
    for i, q in enumerate(texts):
        fixed.vector = qvecs[i]
        t0 = time.perf_counter()
        store.search(q, k=depth, mode="hybrid")
        hyb.append(time.perf_counter() - t0)
    # The window opens the library afresh for each question: its searches share this process's
    # Lance caches (ingest.lance_import.lance_session), where Lance's default is a cache per
    # connection, read again by each new store ("own cache": a session forgotten before each).
    # (Questions of their own: the ones above are in the file cache now.)
    reopened: dict[str, list[float]] = {"shared": [], "own": []}
    cache_gib = 0.0
    for n, (way, times) in enumerate(reopened.items()):
        ask_vecs = shape.queries(queries, salt=10**6 + 2 + n)
        for i, q in enumerate(keyword_queries(queries, seed=5 + n)):
            fixed.vector = ask_vecs[i]
            if way == "own":
                forget_lance_session()
            t0 = time.perf_counter()
            LibraryStore(library, fixed).search(q, k=depth, mode="hybrid")  # type: ignore[arg-type]
            times.append(time.perf_counter() - t0)
        if way == "shared":
            cache_gib = lance_session().size_bytes / 2**30
    print(
        json.dumps(
            {
                "keyword": Latency.of(kw).__dict__,
                "vector": Latency.of(vec).__dict__,
                "hybrid": Latency.of(hyb).__dict__,
                "reopened": {k: Latency.of(v).__dict__ for k, v in reopened.items()},
                "cache_gib": cache_gib,
                "recall10": float(np.mean(recalls)),
                "chunks": total,
            }
        ),
        flush=True,
    )


def _exact_top(shape: VectorShape, queries: np.ndarray, total: int, k: int) -> np.ndarray:
    """Row numbers of the exact top-k of each query over all `total` synthetic vectors."""
    best_s = np.full((len(queries), k), -2.0, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for start, vecs in shape.rows(total):
        scores = queries @ vecs.T
        idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(scores, idx, axis=1)
        all_s = np.concatenate([best_s, s], axis=1)
        all_i = np.concatenate([best_i, idx + start], axis=1)
        top = np.argsort(-all_s, axis=1)[:, :k]
        best_s = np.take_along_axis(all_s, top, axis=1)
        best_i = np.take_along_axis(all_i, top, axis=1)
    return best_i


# ------------------------------------------------------------------------------- report


def _row(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [_row(header, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join([*lines, *(_row(r, widths) for r in rows)])


def section_keyword(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    zim = wiki_zim(workdir, args.articles)
    zim_mb = zim.stat().st_size / 1e6
    print(f"\n== keyword stage: {args.articles:,} Wikipedia-like articles, ZIM {zim_mb:.0f} MB ==")
    cores = os.cpu_count() or 1
    counts = sorted({1, *(args.workers or [cores])})
    rows, results = [], {}
    for n in counts:
        # Alternate the two measurements and keep each one's best run: a busy machine slows
        # a run down, never speeds it up, so the best is the closest to what the code does.
        limits, pipes = [], []
        for _ in range(args.repeat):
            limits.append(measure_limit(zim, n))
            pipes.append(measure_pipeline(zim, workdir / f"lib_keyword_{n}", n))
        limit = max(limits, key=lambda r: r["docs_per_s"])
        pipe, peak = min(pipes, key=lambda r: r[0]["marks"]["rows_written"])
        peak = Peak(max(p.max_rss for _, p in pipes), max(p.tree_pss for _, p in pipes))
        lib = workdir / f"lib_keyword_{n}"
        m = pipe["marks"]
        rate = limit["docs"] / m["rows_written"]
        # This machine's pace drifts by a quarter within minutes: each pipeline run against
        # the limit measured just before it, too (their median is the drift-proof figure).
        pairs = [
            lim["docs"] / p["marks"]["rows_written"] / lim["docs_per_s"]
            for lim, (p, _) in zip(limits, pipes, strict=True)
        ]
        results[n] = {
            "limit": limit, "pipeline": pipe, "peak": peak, "rate": rate, "pairs": pairs
        }  # fmt: skip
        rows.append(
            [
                str(n),
                f"{limit['docs_per_s']:,.0f}",
                f"{rate:,.0f}",
                f"{rate / limit['docs_per_s']:.2f}",
                f"{statistics.median(pairs):.2f} ({' '.join(f'{r:.2f}' for r in pairs)})",
                f"{m['source_done'] - m['rows_written']:.1f}",
                f"{m['end']:.1f}",
                f"{pipe['chunks']:,}",
                f"{peak.max_rss / 2**30:.2f} / {peak.tree_pss / 2**30:.2f}",
            ]
        )
        if n == counts[-1]:
            settle(lib)
            results["bytes"] = store_bytes(lib)
            results["chunks"] = pipe["chunks"]
    print(
        table(
            [
                "workers",
                "limit docs/s",
                "pipeline docs/s",
                "ratio",
                "ratio in pairs",
                "index s",
                "total s",
                "passages",
                "peak GiB RSS/PSS",
            ],
            rows,
        )
    )
    one = results[1]["limit"]
    busy = one["read_s"] + one["clean_s"] + one["chunk_s"]
    print(
        f"one plain process: read {one['read_s'] / busy:.0%}, clean {one['clean_s'] / busy:.0%}, "
        f"chunk {one['chunk_s'] / busy:.0%} of {busy:.1f} s; "
        f"{one['chunks'] / max(1, one['docs']):.2f} passages per article"
    )
    if len(counts) > 1:
        hi = counts[-1]
        print(
            f"scaling: {hi} workers reach {results[hi]['rate'] / results[1]['rate']:.2f}x one "
            f"worker (limit: {results[hi]['limit']['docs_per_s'] / one['docs_per_s']:.2f}x)"
        )
    results["zim_bytes"] = zim.stat().st_size
    results["articles"] = args.articles
    return results


def section_store(res: dict[str, Any]) -> None:
    b = res["bytes"]
    n = res["chunks"]
    print(f"\n== store: bytes per passage ({n:,} passages) ==")
    rows = [[k, f"{v / n:,.0f}", f"{v / 1e6:,.1f}"] for k, v in b.items()]
    print(table(["part", "bytes/passage", "MB"], rows))
    kept = b["text"] + b["fts"] + b["other_index"]
    print(
        f"text + indexes = {kept / res['zim_bytes']:.2f}x the ZIM's own size "
        f"({kept / 1e6:,.0f} MB vs {res['zim_bytes'] / 1e6:,.0f} MB)"
    )


def section_passages(args: argparse.Namespace, workdir: Path) -> None:
    """What the passage size costs on disk: the same archive read at each size (keyword only).
    What it does to retrieval is bench/answers.py --chunk-tokens N (real questions, real
    embedder); the README has both."""
    from ingest.chunking import DEFAULT_MAX_TOKENS

    zim = wiki_zim(workdir, args.passage_articles, compress=False)
    print(f"\n== passage size: {args.passage_articles:,} articles read at each size ==")
    rows, kept_by_size = [], {}
    for tokens in args.passage_sizes:
        lib = workdir / f"lib_passages_{tokens}"
        pipe, _ = measure_pipeline(zim, lib, max(1, os.cpu_count() or 1), tokens)
        settle(lib)
        b = store_bytes(lib)
        kept = (b["text"] + b["fts"] + b["other_index"]) / args.passage_articles
        kept_by_size[tokens] = kept
        n = pipe["chunks"]
        rows.append(
            [
                str(tokens),
                f"{n / args.passage_articles:.2f}",
                f"{b['text'] / n:,.0f}",
                f"{b['fts'] / n:,.0f}",
                f"{b['text'] / args.passage_articles:,.0f}",
                f"{b['fts'] / args.passage_articles:,.0f}",
                f"{kept:,.0f}",
                f"{repeated_share(lib):.1%}",
            ]
        )
        shutil.rmtree(lib, ignore_errors=True)
    print(
        table(
            ["tokens", "passages/article", "text B/passage", "index B/passage",
             "text B/article", "index B/article", "all B/article", "text repeated"],
            rows,
        )
    )  # fmt: skip
    base = kept_by_size.get(DEFAULT_MAX_TOKENS)
    if base:
        print(f"(all B/article against the default {DEFAULT_MAX_TOKENS} tokens: "
              + ", ".join(f"{t}: {kept / base:.2f}x" for t, kept in kept_by_size.items())
              + ")")  # fmt: skip


def repeated_share(lib: Path) -> float:
    """The share of a store's passage text that repeats text of the passage before it: what
    the overlap between consecutive passages costs (and all that shorter overlaps could save)."""
    import lance

    spans = (
        lance.dataset(str(lib / "chunks.lance"))
        .to_table(columns=["source_id", "doc_id", "start", "end"])
        .sort_by([("source_id", "ascending"), ("doc_id", "ascending"), ("start", "ascending")])
        .to_pylist()
    )
    stored = repeated = 0
    doc, reach = None, 0
    for r in spans:
        if (r["source_id"], r["doc_id"]) != doc:
            doc, reach = (r["source_id"], r["doc_id"]), r["start"]
        stored += r["end"] - r["start"]
        repeated += max(0, min(reach, r["end"]) - r["start"])
        reach = max(reach, r["end"])
    return repeated / max(1, stored)


def section_directory(args: argparse.Namespace, workdir: Path) -> None:
    from ingest.readers.zim import ZimReader

    pad = args.pad
    zim = wiki_zim(workdir, args.pad_articles, pad=pad)
    print(f"\n== directory: {args.pad_articles:,} articles among {pad + 2 * args.pad_articles:,} "
          f"entries ==")  # fmt: skip
    t0 = time.perf_counter()
    ZimReader(zim).article_count()
    parse_s = time.perf_counter() - t0
    workers = max(1, os.cpu_count() or 1)
    limit = measure_limit(zim, workers)
    pipe, peak = measure_pipeline(zim, workdir / "lib_directory", workers)
    rate = limit["docs"] / pipe["marks"]["rows_written"]
    print(f"one directory parse: {parse_s:.2f} s")
    print(
        f"{workers} workers: limit {limit['docs_per_s']:,.0f} docs/s, pipeline {rate:,.0f} docs/s "
        f"(ratio {rate / limit['docs_per_s']:.2f}); peak {peak.gb()}"
    )


def proactive_reclaim() -> str:
    """What this machine's kernel does to idle file cache (DAMON's pageout scheme), in words;
    "" when it does nothing. Where it runs (some VMs), a store's pages unread for a minute come
    from the disk again, so search latency at 10 M passages includes disk reads that a desktop
    keeping its file cache would not pay."""
    root = Path("/sys/kernel/mm/damon/admin/kdamonds")
    try:
        for kd in root.iterdir():
            if not kd.name.isdigit() or (kd / "state").read_text().strip() != "on":
                continue
            ctx = kd / "contexts" / "0"
            aggr_us = int((ctx / "monitoring_attrs/intervals/aggr_us").read_text())
            for scheme in (ctx / "schemes").iterdir():
                if not scheme.name.isdigit():
                    continue
                if (scheme / "action").read_text().strip() != "pageout":
                    continue
                age = int((scheme / "access_pattern/age/min").read_text()) * aggr_us / 1e6
                return f"this machine pages out memory (file cache included) idle for {age:.0f} s"
    except (OSError, ValueError):
        return ""
    return ""


def section_search(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    print("\n== search at scale (2 cores; latency ms p50 / p95) ==")
    reclaim = proactive_reclaim()
    if reclaim:
        print(f"note: {reclaim} (DAMON): pages of a big store come from disk again between parts")
    out = []
    per_article = args.passages_per_article
    template = None
    for size in sorted(args.sizes):
        lib = workdir / f"lib_search_{size}"
        marker = lib / ".bench-complete"
        build: dict[str, Any] = {}
        if not marker.exists() and size >= DIRECT_MIN:
            if template is None:
                raise SystemExit("--sizes needs a size below DIRECT_MIN to sample passages from")
            shutil.rmtree(lib, ignore_errors=True)
            out_d, dpeak, _ = run_watched(
                [sys.executable, __file__, "_direct", str(lib), str(workdir), str(template),
                 str(size)]
            )  # fmt: skip
            lines = out_d.strip().splitlines()
            d, v = json.loads(lines[-1]), json.loads(lines[-2])
            build = {
                "keyword_s": d["keyword_s"],
                "text_index_s": d["text_index_s"],
                "keyword_peak": d["keyword_peak"],
                "vector_write_s": v["write_s"],
                "vector_index_s": v["index_s"],
                "vector_peak": dpeak.max_rss,
                "direct": True,
            }
            (lib / ".bench-build.json").write_text(json.dumps(build))
            marker.touch()
        elif not marker.exists():
            articles = int(math.ceil(size / per_article))
            zim = wiki_zim(workdir, articles, compress=False)
            pipe, peak = measure_pipeline(zim, lib, max(1, os.cpu_count() or 1))
            out_v, vpeak, _ = run_watched(
                [sys.executable, __file__, "_vectors", str(lib), str(workdir)]
            )
            v = json.loads(out_v.strip().splitlines()[-1])
            build = {
                "keyword_s": pipe["marks"]["end"],
                "text_index_s": pipe["marks"]["source_done"] - pipe["marks"]["rows_written"],
                "keyword_peak": peak.max_rss,
                "vector_write_s": v["write_s"],
                "vector_index_s": v["index_s"],
                "vector_peak": vpeak.max_rss,
            }
            (lib / ".bench-build.json").write_text(json.dumps(build))
            marker.touch()
        else:
            build = json.loads((lib / ".bench-build.json").read_text())
            if build.get("vector_format") != vector_format():  # measured with older settings
                print(f"  {lib.name}: new vector format, rebuilding its vector index ...")
                out_r, rpeak, _ = run_watched([sys.executable, __file__, "_reindex", str(lib)])
                r_build = json.loads(out_r.strip().splitlines()[-1])
                build.update(vector_index_s=r_build["index_s"], vector_peak=rpeak.max_rss)
        build["vector_format"] = vector_format()
        (lib / ".bench-build.json").write_text(json.dumps(build))
        if template is None and not build.get("direct"):
            template = lib
        res_out, _, _ = run_watched(
            [sys.executable, __file__, "_search", str(lib), str(workdir), str(args.queries)]
        )
        r = json.loads(res_out.strip().splitlines()[-1])
        r.update(size=size, build=build)
        out.append(r)
    big = out[-1]
    if template is not None and "second" not in big["build"]:
        lib = workdir / f"lib_search_{big['size']}"
        sec_out, _, _ = run_watched(
            [sys.executable, __file__, "_second", str(lib), str(workdir), str(template),
             str(SECOND_SOURCE_ROWS)]
        )  # fmt: skip
        big["build"]["second"] = json.loads(sec_out.strip().splitlines()[-1])
        (lib / ".bench-build.json").write_text(json.dumps(big["build"]))
    rows = [
        [
            f"{r['chunks']:,}",
            str(Latency(**r["keyword"])),
            str(Latency(**r["vector"])),
            f"{r['recall10']:.3f}",
            str(Latency(**r["hybrid"])),
            f"{Latency(**r['reopened']['shared']).p50:.0f} / "
            f"{Latency(**r['reopened']['own']).p50:.0f} "
            f"({r['reopened']['own']['p50'] / r['reopened']['shared']['p50']:.1f}x), "
            f"{r['cache_gib']:.2f} GiB",
            f"{r['build']['keyword_s']:.0f} s{' (*)' if r['build'].get('direct') else ''}, "
            f"{r['build']['keyword_peak'] / 2**30:.2f} GiB",
            f"{r['build'].get('text_index_s', 0):.0f} s",
            f"{r['build']['vector_index_s']:.0f} s, {r['build']['vector_peak'] / 2**30:.2f} GiB",
        ]
        for r in out
    ]
    print(
        table(
            [
                "passages",
                "keyword",
                "vector",
                "recall@10",
                "hybrid",
                "hybrid, library opened per question: p50 shared / own cache (cache size)",
                "text written (time, peak RSS)",
                "keyword index",
                "vector index (time, peak RSS)",
            ],
            rows,
        )
    )
    print(
        "text written: the pipeline's keyword stage from a generated archive, or (*) generated "
        "passages written straight into the store; peak RSS of the whole process tree"
    )
    print(
        "library opened per question: hybrid search with the library opened for each question, "
        "as the window does, sharing the process's index cache (Librarian) or with a cache of "
        "its own (Lance's default); the cache's size once those questions were asked"
    )
    second = big["build"].get("second")
    if second:
        print(
            f"adding a second source of {second['rows']:,} passages (text and vectors) to the "
            f"{big['chunks']:,}-passage store: written in {second['write_s']:.0f} s, indexes "
            f"brought up to date in {second['index_s']:.0f} s (the first build: keyword "
            f"{big['build'].get('text_index_s', 0):.0f} s + vector "
            f"{big['build']['vector_index_s']:.0f} "
            f"s), peak RSS {second['peak'] / 2**30:.2f} GiB"
        )
    return out


def default_workers(cores: int) -> int:
    from ingest.pipeline import default_workers as pipeline_default

    return pipeline_default(cores)


def section_extrapolation(res: dict[str, Any]) -> None:
    cores = os.cpu_count() or 1
    counts = sorted(k for k in res if isinstance(k, int))
    one = res[1]
    per_article = one["pipeline"]["chunks"] / res["articles"]
    passages = WIKIPEDIA_ARTICLES * per_article
    top = res[counts[-1]]
    index_s = top["pipeline"]["marks"]["source_done"] - top["pipeline"]["marks"]["rows_written"]
    index_rate = top["pipeline"]["chunks"] / max(index_s, 1e-6)
    stage1_here = WIKIPEDIA_ARTICLES / top["rate"]
    index_here = passages / index_rate
    # A 4-core laptop: stage 1 runs the pipeline's default number of workers for 4 cores, each
    # at one worker's measured rate times the per-worker efficiency measured here from 1 to N
    # workers; the index build uses every core (Lance's compute threads), so it scales by cores.
    efficiency = top["rate"] / (one["rate"] * counts[-1])
    workers4 = default_workers(4)
    rate4 = one["rate"] * workers4 * efficiency
    stage1_4 = WIKIPEDIA_ARTICLES / rate4
    index_4 = index_here * cores / 4
    b = res["bytes"]
    n = res["chunks"]
    text_gb = (b["text"] + b["fts"] + b["other_index"]) / n * passages / 1e9
    print(f"\n== English Wikipedia ({WIKIPEDIA_ARTICLES / 1e6:.1f} M articles), extrapolated ==")
    print(f"passages: {passages / 1e6:.0f} M ({per_article:.2f} per article, measured)")
    print(
        f"this machine ({cores} cores): stage 1 {stage1_here / 3600:.1f} h + full-text index "
        f"{index_here / 3600:.1f} h = {(stage1_here + index_here) / 3600:.1f} h"
    )
    print(
        f"4-core laptop: stage 1 {stage1_4 / 3600:.1f} h ({workers4} workers at one worker's "
        f"measured rate x {efficiency:.2f}, the per-worker efficiency measured here) + index "
        f"{index_4 / 3600:.1f} h (measured rate x {4 / cores:.0f} cores) = "
        f"{(stage1_4 + index_4) / 3600:.1f} h"
    )
    from ingest.records import VECTOR_ITEM_TYPE

    vector_bytes = 384 * VECTOR_ITEM_TYPE.bit_width // 8  # as the store keeps them (MiniLM)
    print(
        f"disk: text + full-text index {text_gb:.0f} GB; vectors "
        f"{passages * vector_bytes / 1e9:.0f} GB ({vector_bytes} bytes each) + their index"
    )
    print(f"peak memory of the keyword stage here: {top['peak'].gb()}")


def _int_list(text: str) -> list[int]:
    """A command-line list of whole numbers: "100000,1000000"."""
    return [int(x) for x in text.split(",")]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        child = {
            "_pipeline": _child_pipeline,
            "_vectors": _child_vectors,
            "_search": _child_search,
            "_direct": _child_direct,
            "_second": _child_second,
            "_reindex": _child_reindex,
        }
        fn = child[sys.argv[1]]
        args = [int(a) if a.isdigit() else a for a in sys.argv[2:]]
        fn(*args)  # type: ignore[operator]
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=60_000)
    parser.add_argument("--workers", type=int, action="append", help="worker counts to measure")
    parser.add_argument(
        "--sizes",
        type=_int_list,
        default=[100_000, 1_000_000],
        help="store sizes (passages) for the search section, e.g. 100000,1000000,10000000",
    )
    parser.add_argument("--passages-per-article", type=float, default=7.7)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each keyword measurement")
    parser.add_argument("--pad", type=int, default=2_000_000, help="extra directory entries")
    parser.add_argument("--pad-articles", type=int, default=20_000)
    parser.add_argument(
        "--only",
        action="append",
        choices=["keyword", "directory", "search", "passages"],
        help="run only these sections (repeatable); keyword includes store and extrapolation",
    )
    parser.add_argument(
        "--passage-sizes",
        type=_int_list,
        default=[128, 200, 256],
        help="passage sizes (tokens) for the passages section",
    )
    parser.add_argument(
        "--passage-articles", type=int, default=12_988, help="archive of the passages section"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(
        os.environ.get("LIBRARIAN_BENCH_DIR", Path(tempfile.gettempdir()) / "librarian-bench")
    )
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LIBRARIAN_HOME", str(workdir / "home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    only = set(args.only or ["keyword", "directory", "search"])
    print(f"workdir: {workdir}; {os.cpu_count()} cores")
    if "keyword" in only:
        res = section_keyword(args, workdir)
        section_store(res)
        section_extrapolation(res)
    if "directory" in only:
        section_directory(args, workdir)
    if "search" in only:
        section_search(args, workdir)
    if "passages" in only:
        section_passages(args, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
