"""Benchmark: end-to-end ingestion chunks/s beside the raw sentence-transformers encode of the same
chunks, and ZIM articles/s in cluster vs path order (bench/zim_order.py).

Run as `python bench/ingest.py [--articles N] [--skip-zim-order] [--vector-search]`.
LIBRARIAN_HOME is set to a temporary folder; nothing touches the user's library.

The ratio pipeline/raw is the pipeline's overhead: reading, cleaning, chunking, writing and
indexing all run beside the embedder, so on a CPU the ratio should stay near 1 (aim >= 0.9).
`--vector-search` also measures exact vector search latency against the number of vectors and
the recall@10 of the IVF vector index with the store's query settings (the figures behind
ingest.store.VECTOR_INDEX_THRESHOLD).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_PROSE = (
    "the of and to in is was for on that with as by at from his her its an were are which this "
    "be or has had first one their after new who they two all been more when would there other "
    "into time during only city year century people river king war world state government "
    "island church music film team school water built north south east west known large small "
    "became later began early called family named found many most several under between since "
    "house army battle empire village mountain lake coast trade ship harbour bridge castle "
    "station railway library museum university author book novel poem painter composer theatre "
    "species plant animal forest bird insect flower tree seed harvest farm market bread wine salt "
    "stone iron copper gold silver glass paper engine steam electric light star planet comet moon "
    "ocean storm winter summer spring autumn festival language dialect law court council treaty "
    "province region district border capital port fortress tower temple garden palace market"
)
_WORDS = _PROSE.split()


def _article(rng: random.Random, index: int) -> tuple[str, str, str]:
    title = f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} {index}"
    parts = [f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"]
    for section in range(rng.randint(1, 4)):
        if section:
            parts.append(f"<h2>{rng.choice(_WORDS).title()} {rng.choice(_WORDS)}</h2>")
        for _ in range(rng.randint(1, 3)):
            sentences = []
            for _ in range(rng.randint(2, 6)):
                words = rng.choices(_WORDS, k=rng.randint(8, 24))
                sentences.append(" ".join(words).capitalize() + ".")
            parts.append(f"<p>{' '.join(sentences)}</p>")
    parts.append("</body></html>")
    return title.replace(" ", "_"), title, "".join(parts)


def build_corpus(folder: Path, articles: int, seed: int = 2) -> Path:
    from tests.builders import Article, make_zim

    rng = random.Random(seed)
    arts = [Article(*_article(rng, i)) for i in range(articles)]
    rng.shuffle(arts)  # write order differs from path order, like real archives
    return make_zim(folder / f"bench_{articles}.zim", arts, index=False)


def make_embedder(kind: str, device: str = "cpu") -> Any:
    """The embedder to measure: "pytorch" (sentence-transformers: fp32 on the CPU, fp16 on
    CUDA) or "onnx" (the CPU default: int8 on ONNX Runtime, exported into LIBRARIAN_HOME on
    first use)."""
    from ingest.embedding import SentenceTransformerEmbedder
    from ingest.embedding_onnx import OnnxEmbedder

    if kind == "pytorch":
        return SentenceTransformerEmbedder(device=device)  # type: ignore[arg-type]
    return OnnxEmbedder()


class GpuSampler:
    """GPU utilisation (%) sampled by nvidia-smi every 250 ms while it runs (empty without
    nvidia-smi)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    "-lms",
                    "250",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append(float(line.split(",")[0]))

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=5)

    def summary(self) -> str:
        if not self.samples:
            return "no GPU utilisation measured (nvidia-smi absent)"
        busy = sorted(self.samples)
        return (
            f"GPU utilisation during the pipeline: mean {statistics.mean(busy):.0f}%, "
            f"median {statistics.median(busy):.0f}% ({len(busy)} samples)"
        )


def measure_ingest(
    zim: Path, workers: int | None, kind: str = "pytorch", device: str = "cpu"
) -> dict[str, Any]:
    from ingest.chunking import embedding_text
    from ingest.pipeline import ProgressEvent, SourceResult, ingest_paths
    from ingest.store import LibraryStore

    embedder = make_embedder(kind, device)
    embedder.embed(["warm up the model"])  # both measurements start with the model loaded
    lib = Path(os.environ["LIBRARIAN_HOME"]) / f"library-{kind}"
    t0 = time.perf_counter()
    keyword_at = None
    with GpuSampler() as gpu:
        for ev in ingest_paths([zim], lib, embedder_factory=embedder, workers=workers):
            if isinstance(ev, SourceResult):
                print(f"  {ev.line}", flush=True)
            elif isinstance(ev, ProgressEvent) and ev.stage == "indexing" and keyword_at is None:
                keyword_at = time.perf_counter() - t0
    pipeline_s = time.perf_counter() - t0
    store = LibraryStore(lib, embedder)
    chunks = store.chunk_count()
    assert store.vector_count() == chunks, "every chunk must have its vector"
    table, _ = store.table_snapshot()
    texts = [
        embedding_text(t, s, x)
        for t, s, x in zip(
            table.column("title").to_pylist(),
            table.column("section").to_pylist(),
            table.column("text").to_pylist(),
            strict=True,
        )
    ]
    t0 = time.perf_counter()
    embedder.embed(texts)
    raw_s = time.perf_counter() - t0
    return {
        "chunks": chunks,
        "pipeline_s": pipeline_s,
        "keyword_searchable_s": keyword_at or 0.0,
        "pipeline_chunks_per_s": chunks / pipeline_s,
        "raw_chunks_per_s": chunks / raw_s,
        "raw_s": raw_s,
        "ratio": (chunks / pipeline_s) / (chunks / raw_s),
        "device": getattr(embedder, "device", "cpu"),
        "precision": getattr(embedder, "dtype", "int8"),
        "batch": getattr(embedder, "batch_size", 0),
        "embedder": kind,
        "gpu": gpu.summary() if device == "cuda" else "",
    }


def measure_vector_search(sizes: list[int]) -> None:
    """Exact search latency against size; the vector index's recall@10 at 50k (store settings)."""
    import numpy as np
    import pyarrow as pa

    from ingest import store_indexes as store_module
    from ingest.embedding import HashingEmbedder
    from ingest.store import LibraryStore, SourceRecord

    dim = 384
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(300, dim)).astype(np.float32)

    def sample(n: int) -> np.ndarray:
        v = centers[rng.integers(0, 300, n)] + 1.2 * rng.normal(size=(n, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    class Query(HashingEmbedder):
        vector: np.ndarray

        def embed(self, texts):  # type: ignore[no-untyped-def]
            return self.vector[None, :]

    emb = Query(dim=dim, name="bench")
    store = LibraryStore(Path(os.environ["LIBRARIAN_HOME"]) / "vectors", emb)
    queries = sample(30)
    all_vecs = []
    total = 0
    with store.writing():
        store.add_source(SourceRecord("v", "/v.zim", "zim", "V", "zim:v", stage="ready"))
        for size in sizes:
            n = size - total
            vecs = sample(n)
            ids = [f"v:{total + i}:0" for i in range(n)]
            store.add_chunks(
                pa.table(
                    {
                        "chunk_id": ids,
                        "source_id": ["v"] * n,
                        "doc_id": ["d"] * n,
                        "title": ["t"] * n,
                        "section": [""] * n,
                        "ordinal": list(range(total, size)),
                        "chunk_index": [0] * n,
                        "start": [0] * n,
                        "end": [1] * n,
                        "text": ["x"] * n,
                    }
                )
            )
            store.add_vectors("v", ids, list(range(total, size)), vecs)
            all_vecs.append(vecs)
            total = size
            times = []
            for q in queries:
                emb.vector = q
                t0 = time.perf_counter()
                store.search("q", k=10, mode="vector")
                times.append(time.perf_counter() - t0)
            print(
                f"  exact vector search, {size:>7,} vectors: "
                f"{np.median(times) * 1000:6.1f} ms median"
            )
        store_module.VECTOR_INDEX_THRESHOLD = min(sizes)
        t0 = time.perf_counter()
        store.maintain()
        build_s = time.perf_counter() - t0
    data = np.concatenate(all_vecs)
    recalls, times = [], []
    for q in queries:
        emb.vector = q
        exact = set(np.argsort(-(data @ q))[:10])
        t0 = time.perf_counter()
        got = {int(h.chunk_id.split(":")[1]) for h in store.search("q", k=10, mode="vector")}
        times.append(time.perf_counter() - t0)
        recalls.append(len(got & exact) / 10)
    print(
        f"  {store_module.VECTOR_INDEX_KIND} over {total:,} vectors: built in {build_s:.1f} s, "
        f"recall@10 {np.mean(recalls):.3f}, {np.median(times) * 1000:.1f} ms median"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--skip-zim-order", action="store_true")
    parser.add_argument("--zim-order-articles", type=int, default=20_000)
    parser.add_argument("--vector-search", action="store_true")
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="measure the Ray path (bench/cluster.py): 'local', or a cluster's address",
    )
    parser.add_argument(
        "--embedder",
        choices=["pytorch", "onnx", "both"],
        default="pytorch",
        help="both: the same corpus through each, side by side (issue 12's CPU speed-up)",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda: sentence-transformers in fp16 on the GPU, with its utilisation",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("ingest.pipeline").setLevel(logging.INFO)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory(prefix="librarian-bench-") as home:
        os.environ["LIBRARIAN_HOME"] = home
        zim = build_corpus(Path(home) / "corpus", args.articles)
        print(f"corpus: {args.articles} articles, {zim.stat().st_size / 1e6:.1f} MB ZIM")
        if args.cluster:
            spec = importlib.util.spec_from_file_location(
                "bench_cluster", ROOT / "bench" / "cluster.py"
            )
            assert spec and spec.loader
            cluster_bench = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(cluster_bench)
            cluster_bench.run(zim, args.cluster, Path(home))
            return 0
        kinds = ["pytorch", "onnx"] if args.embedder == "both" else [args.embedder]
        runs = {}
        for kind in kinds:
            r = runs[kind] = measure_ingest(zim, args.workers, kind, args.device)
            print(
                f"[{kind}] chunks: {r['chunks']:,} (embedder on {r['device']}, "
                f"{r['precision']}, batches of {r['batch']})"
            )
            if r["gpu"]:
                print(f"[{kind}] {r['gpu']}")
            print(f"[{kind}] keyword-searchable after {r['keyword_searchable_s']:.1f} s")
            print(
                f"[{kind}] pipeline end to end: {r['pipeline_chunks_per_s']:8.1f} chunks/s "
                f"({r['pipeline_s']:.1f} s)"
            )
            print(
                f"[{kind}] raw encode:          {r['raw_chunks_per_s']:8.1f} chunks/s "
                f"({r['raw_s']:.1f} s)"
            )
            print(f"[{kind}] ratio pipeline/raw:  {r['ratio']:8.2f}")
        if len(runs) == 2:
            speedup = (
                runs["onnx"]["pipeline_chunks_per_s"] / runs["pytorch"]["pipeline_chunks_per_s"]
            )
            print(f"pipeline chunks/s, onnx / pytorch: {speedup:.2f}")
        if args.vector_search:
            measure_vector_search([10_000, 50_000, 100_000])
    if not args.skip_zim_order:
        order_path = ROOT / "bench" / "zim_order.py"
        if order_path.exists():
            spec = importlib.util.spec_from_file_location("bench_zim_order", order_path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            z = module.run(args.zim_order_articles)
            print(
                f"ZIM read, {z['articles']:,} shuffled articles: cluster order "
                f"{z['cluster_order_articles_per_s']:.1f} articles/s, path order "
                f"{z['path_order_articles_per_s']:.1f} articles/s ({z['speedup']}x)"
            )
        else:
            print("bench/zim_order.py not found: ZIM order figures skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
