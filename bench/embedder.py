"""Benchmark: the CPU embedders side by side — speed, agreement with PyTorch fp32, retrieval.

Run by path: `python bench/embedder.py [--passages 2000] [--batches 32 64 128] [--repeat 2]`.

Passages: every passage of the two Gutenberg books in ../shared/fixtures/epub and a sample of the
demo library's (Wikipedia's Vital Articles, built by packaging/build_demo.py, cached in
--workdir), cut and titled as the pipeline does (chunk_document, embedding_text). Questions:
bench/data's question sets (checked by bench/questions.py) whose passage is in the sample: a book
question's target is the passage holding its phrase, a demo question's any passage of its
article.

Printed, in one run:
- passages/s (wall clock) and passages per CPU second (what this process used: a machine busy
  with other work skews it less) of PyTorch fp32 (SentenceTransformerEmbedder), ONNX fp32 and
  ONNX int8 (OnnxEmbedder) at each batch size, on a sample of --speed-passages, best of
  --repeat, interleaved so that load from elsewhere hits every variant alike; the first use's
  export (+ quantisation) time and the cache's size on disk;
- cosine of each variant's vectors of every passage to PyTorch fp32's: mean, 1st percentile, min;
- hit@1 / hit@5 over the passages, for the questions and for --paraphrases made-up queries
  (a passage's sentence, words dropped and reordered), passages and queries embedded by the
  same variant, and crossed (fp32 passages with int8 queries: a library built before, asked
  now; and the reverse);
- extras at --quality-batch: int8 with 7-bit weights (the setting used on x86 without VNNI), and
  OpenVINO on the ONNX fp32 file at its default precision (bf16 on CPUs with AVX512-BF16) when
  `openvino` is importable (it is no dependency of the project).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "bench"))  # after the root: bench/ingest.py must not hide `ingest`

import numpy as np  # noqa: E402
from questions import load_article_questions, load_passage_questions  # noqa: E402

BOOKS = ["pg972-devils-dictionary.epub3.epub", "pg9198-complete-angler.epub2.epub"]
FIXTURES = REPO.parent / "shared" / "fixtures" / "epub"
ZIM_NAME = "wikipedia_vital_articles_demo.zim"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class Passage:
    source: str  # file name
    title: str
    text: str  # the chunk's own text
    embed_text: str  # what the pipeline embeds: title and section first


@dataclass
class Query:
    question: str
    targets: set[int]


# ------------------------------------------------------------------------------- the corpus


def _chunks(path: Path) -> list[Passage]:
    from ingest.chunking import chunk_document, embedding_text
    from ingest.html_text import html_to_text
    from ingest.readers import open_source

    out = []
    with open_source(path) as reader:
        for doc in reader.documents():
            text = html_to_text(doc.html, doc.title)
            for chunk in chunk_document("bench", doc.ordinal, doc.doc_id, text):
                loc = chunk.locator
                out.append(
                    Passage(
                        path.name,
                        loc.title,
                        chunk.text,
                        embedding_text(loc.title, loc.section, chunk.text),
                    )
                )
    return out


def corpus(demo: Path, size: int, seed: int = 0) -> tuple[list[Passage], list[Query]]:
    """`size` passages (all the books', the questions' articles', a sample of the rest) and the
    questions whose target passage is among them."""
    books = [p for b in BOOKS if (FIXTURES / b).is_file() for p in _chunks(FIXTURES / b)]
    articles = [q for q in load_article_questions() if q.title is not None]
    wanted = {q.title for q in articles}
    wiki = _chunks(demo)
    keep = [p for p in wiki if p.title in wanted]
    rest = [p for p in wiki if p.title not in wanted]
    random.Random(seed).shuffle(rest)
    passages = (books + keep + rest[: max(0, size - len(books) - len(keep))])[:size]
    queries = []
    for q in load_passage_questions() if books else []:
        phrase = _norm(q.phrase)
        hits = {i for i, p in enumerate(passages) if p.source == q.book and phrase in _norm(p.text)}
        if hits:
            queries.append(Query(q.question, hits))
    for a in articles:
        hits = {i for i, p in enumerate(passages) if p.title == a.title}
        if hits:
            queries.append(Query(a.question, hits))
    return passages, queries


def paraphrases(passages: list[Passage], count: int, seed: int = 2) -> list[Query]:
    """Question-like paraphrases: a sentence of 10-40 words from a random passage, every third
    word dropped and the two halves swapped; the targets are all passages holding the sentence
    (chunks overlap)."""
    from ingest.chunking import sentence_spans

    rng = random.Random(seed)
    out = []
    for i in rng.sample(range(len(passages)), len(passages)):
        text = passages[i].text
        spans = [text[a:b] for a, b in sentence_spans(text)]
        sentences = [t for t in spans if 10 <= len(t.split()) <= 40]
        if not sentences:
            continue
        sentence = rng.choice(sentences)
        kept = [w for k, w in enumerate(sentence.split()) if k % 3 != 2]
        half = len(kept) // 2
        targets = {j for j, p in enumerate(passages) if sentence in p.text}
        out.append(Query(" ".join(kept[half:] + kept[:half]), targets))
        if len(out) == count:
            break
    return out


def demo_zim(workdir: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    import runpy

    build = runpy.run_path(str(REPO / "packaging" / "build_demo.py"))["build_demo"]
    return Path(build(workdir / "demo" / ZIM_NAME))


# ------------------------------------------------------------------------------ the variants


def _openvino_runner(fp32: Any, threads: int) -> Any | None:
    """An fp32 OnnxEmbedder whose ONNX Runtime session is swapped for OpenVINO (same file,
    same tokens and pooling), or None when openvino is not installed."""
    try:
        import openvino as ov
    except ImportError:
        return None
    runner = fp32._load()  # the ONNX Runtime runner: tokenizer, pooling, batching
    compiled = ov.Core().compile_model(
        str(fp32.cache_dir / "model.onnx"),
        "CPU",
        {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"},
    )
    request = compiled.create_infer_request()
    output = compiled.output(0)

    class Session:
        precision = compiled.get_property("INFERENCE_PRECISION_HINT")

        def run(self, _names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            return [request.infer(feed)[output]]

    runner.session = Session()
    return runner


def timed(
    embed: Callable[[Sequence[str]], np.ndarray], texts: list[str]
) -> tuple[np.ndarray, float, float]:
    """Vectors, passages per wall second, passages per CPU second of this process."""
    embed(texts[:16])  # warm: session, allocator, threads
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = embed(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return vectors, len(texts) / wall, len(texts) / max(cpu, 1e-9)


def hits_at(
    passages: np.ndarray, questions: np.ndarray, queries: list[Query]
) -> tuple[float, float]:
    scores = questions @ passages.T
    top = np.argsort(-scores, axis=1)[:, :5]
    at1 = np.mean([int(top[i, 0]) in q.targets for i, q in enumerate(queries)])
    at5 = np.mean([bool(set(top[i].tolist()) & q.targets) for i, q in enumerate(queries)])
    return float(at1), float(at5)


def _size(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def _row(label: str, cells: Sequence[str], width: int = 18) -> str:
    return f"{label:{width}s}" + "".join(f"{c:>22s}" for c in cells)


def _speed_cell(wall: float, cpu: float, base: float) -> str:
    return f"{wall:.1f} | {cpu:.1f} x{wall / base:.1f}"


def print_speed(
    speed: dict[tuple[str, int], tuple[float, float]], batches: list[int], repeat: int
) -> None:
    base = speed[("PyTorch fp32", batches[0])][0]
    print(
        f"\nSpeed, best of {repeat}: passages/s | per CPU second, "
        f"x = passages/s over PyTorch fp32's at batch {batches[0]}"
    )
    print(_row("", [f"batch {b}" for b in batches]))
    for label in dict.fromkeys(label for label, _ in speed):
        cells = [
            _speed_cell(*speed[(label, b)], base) if (label, b) in speed else "-" for b in batches
        ]
        print(_row(label, cells))


def print_quality(
    vectors: dict[str, np.ndarray],
    asked: dict[str, dict[str, np.ndarray]],
    sets: dict[str, list[Query]],
) -> None:
    """Cosine to PyTorch fp32, and hit@1 / hit@5 of each query set (asked[set][variant] holds
    the variant's query vectors)."""
    ref = vectors["PyTorch fp32"]
    print(f"\nAgreement with PyTorch fp32 ({len(ref)} passages), and retrieval: hit@1 / hit@5")
    names = [f"{name} ({len(queries)})" for name, queries in sets.items()]
    print(f"{'':18s}{'cos mean':>9s}{'p1':>8s}{'min':>8s}" + "".join(f"{n:>22s}" for n in names))
    for label, vecs in vectors.items():
        cos = np.sum(vecs * ref, axis=1)
        cells = [hits_at(vecs, asked[name][label], queries) for name, queries in sets.items()]
        print(
            f"{label:18s}{cos.mean():9.4f}{np.percentile(cos, 1):8.4f}{cos.min():8.4f}"
            + "".join(f"{f'{a1:.3f} / {a5:.3f}':>22s}" for a1, a5 in cells)
        )
    for p_label, q_label in (("PyTorch fp32", "ONNX int8"), ("ONNX int8", "PyTorch fp32")):
        cells = [
            hits_at(vectors[p_label], asked[name][q_label], queries)
            for name, queries in sets.items()
        ]
        row = f"passages {p_label.split()[-1]}, queries {q_label.split()[-1]}"
        print(f"{row:43s}" + "".join(f"{f'{a1:.3f} / {a5:.3f}':>22s}" for a1, a5 in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--speed-passages", type=int, default=600, help="timed sample")
    parser.add_argument("--repeat", type=int, default=2, help="speed: best of this many")
    parser.add_argument("--quality-batch", type=int, default=32, help="batch of the compared")
    parser.add_argument("--paraphrases", type=int, default=300, help="made-up queries")
    parser.add_argument("--threads", type=int, default=None, help="ONNX threads (default: cores)")
    parser.add_argument("--demo", type=Path, default=None, help="the demo ZIM (default: build it)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    bench_dir = Path(os.environ.get("LIBRARIAN_BENCH_DIR", "/tmp/librarian-bench"))
    workdir = args.workdir or bench_dir / "embedder"
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LIBRARIAN_HOME", str(workdir / "home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    import ingest.embedding_onnx as onnx_mod
    from ingest.embedding import SentenceTransformerEmbedder
    from ingest.embedding_onnx import OnnxEmbedder

    threads = args.threads or onnx_mod._cores()
    torch.set_num_threads(threads)
    passages, queries = corpus(demo_zim(workdir, args.demo), args.passages)
    sets = {"questions": queries, "paraphrases": paraphrases(passages, args.paraphrases)}
    texts = [p.embed_text for p in passages]
    print(
        f"{len(passages)} passages ({sum(p.source in BOOKS for p in passages)} from the books), "
        f"{len(queries)} questions, {len(sets['paraphrases'])} paraphrases; "
        f"{platform.machine()}, {threads} threads, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    caches = {v: workdir / f"cache-{v}" for v in ("fp32", "int8", "int8-7bit")}
    for folder in caches.values():
        shutil.rmtree(folder, ignore_errors=True)

    def onnx(precision: str, batch: int, cache: str | None = None) -> OnnxEmbedder:
        return OnnxEmbedder(
            cache_dir=caches[cache or precision],
            precision=precision,  # type: ignore[arg-type]
            batch_size=batch,
            threads=threads,
        )

    # First use: export (and quantise) into fresh caches, timed.
    for label, precision in (("ONNX fp32", "fp32"), ("ONNX int8", "int8")):
        started = time.perf_counter()
        emb = onnx(precision, 64)
        emb.embed(["warm up"])
        if emb.backend != f"onnxruntime-{precision}":
            print(f"{label}: fell back to {emb.backend}; see the log", flush=True)
            return 1
        seconds, size = time.perf_counter() - started, _size(caches[precision])
        print(f"{label}: first use (export, quantise, open) {seconds:.1f} s, cache {size:.0f} MB")
    lengths = np.array([len(e.ids) for e in emb._load().tokenizer.encode_batch(texts)])  # type: ignore[union-attr]
    print(
        f"word pieces per passage: mean {lengths.mean():.0f}, max {lengths.max()}, "
        f"{np.mean(lengths >= 256):.1%} cut at 256",
        flush=True,
    )

    def seven_bit(batch: int) -> OnnxEmbedder:
        """int8 with 7-bit weights (reduce_range), which ONNX Runtime suggests without VNNI."""
        real = onnx_mod.int8_settings
        onnx_mod.int8_settings = lambda: {**real(), "reduce_range": True}  # type: ignore[assignment]
        try:
            emb = onnx("int8", batch, "int8-7bit")
            emb.embed(["warm up"])  # exports now, with the setting above
        finally:
            onnx_mod.int8_settings = real  # type: ignore[assignment]
        return emb

    def openvino(batch: int) -> Any:
        return _openvino_runner(onnx("fp32", batch), threads)

    qb = args.quality_batch
    variants: dict[tuple[str, int], Any] = {}
    for batch in args.batches:
        variants[("PyTorch fp32", batch)] = SentenceTransformerEmbedder(
            device="cpu", batch_size=batch
        )
        variants[("ONNX fp32", batch)] = onnx("fp32", batch)
        variants[("ONNX int8", batch)] = onnx("int8", batch)
    variants[("ONNX int8 7-bit", qb)] = seven_bit(qb)
    ov = openvino(qb)
    if ov is None:
        print("(openvino is not installed: no OpenVINO row)")
    else:
        precision = ov.session.precision.to_string()  # its default: bf16 where the CPU has it
        variants[(f"OpenVINO {precision}", qb)] = ov

    # Speed on a sample, best of --repeat, interleaved: load from elsewhere hits all alike.
    sample = random.Random(1).sample(texts, min(args.speed_passages, len(texts)))
    speed: dict[tuple[str, int], tuple[float, float]] = {}
    for rep in range(args.repeat):
        for batch in args.batches:
            for (label, b), emb in variants.items():
                if b != batch:
                    continue
                _, wall, cpu = timed(emb.embed, sample)
                print(f"  {rep + 1}: {label:15s} batch {b:3d}: {wall:6.1f}/s, {cpu:6.1f}/CPU s")
                if wall > speed.get((label, b), (0.0, 0.0))[0]:
                    speed[(label, b)] = (wall, cpu)

    # Quality on every passage, at the quality batch.
    vectors: dict[str, np.ndarray] = {}
    asked: dict[str, dict[str, np.ndarray]] = {name: {} for name in sets}
    for (label, b), emb in variants.items():
        if b == qb:
            vectors[label] = np.asarray(emb.embed(texts))
            for name, found in sets.items():
                asked[name][label] = np.asarray(emb.embed([q.question for q in found]))
    print_speed(speed, args.batches, args.repeat)
    print_quality(vectors, asked, sets)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
