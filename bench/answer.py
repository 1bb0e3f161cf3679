"""Benchmark of answering: ChatSession.ask beside raw llama-cpp-python, and retrieval at 100k
chunks.

Run by path: `python bench/answer.py [--model PATH] [--gpu-layers N] [--chunks 100000]`.

1. Builds a small library (the test corpus, real MiniLM embedder) and asks one question through
   `ChatSession.ask`; then gives the *identical* prompt (same tokens, same stop strings, same
   sampling: temperature 0, fixed max tokens) to llama-cpp-python's own
   `create_completion(stream=True)`. Runs alternate (raw, ask, raw, ask, ...) with the KV cache
   reset before each, so neither side profits from the other's prompt evaluation; medians are
   reported. Tokens/s is counted the same way on both sides: answer tokens (model tokenizer)
   after the first, over the time from the first piece to the last.
2. Builds (once, cached in --workdir) a store of --chunks synthetic chunks with 384-d unit vectors
   and measures hybrid search and the full passage selection (search + relevance floor +
   de-duplication + diversity) with the real query embedder.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.chat.retrieval import PassageRetriever, RetrievalConfig  # noqa: E402
from app.chat.session import ChatSession, Done, Retrieved, Token  # noqa: E402
from app.llm.base import GenerationParams  # noqa: E402
from app.settings import ModelSettings, OffloadSettings, Settings  # noqa: E402

QUESTION = "Who built the Lighthouse of Alexandria, and how tall was it?"


def build_small_library(folder: Path, embedder: Any) -> Path:
    from ingest.pipeline import ingest_paths
    from tests.builders import make_epub, make_zim, sample_corpus

    store_path = folder / "small-library"
    if store_path.exists():
        return store_path
    corpus = sample_corpus()
    zim = make_zim(folder / "wiki.zim", corpus.articles)
    epub = make_epub(folder / "voyage.epub", corpus.chapters)
    for _ in ingest_paths([zim, epub], store_path, embedder_factory=embedder):
        pass
    return store_path


def timed_stream(pieces: Any, count_tokens: Any) -> tuple[float, float, int, str]:
    """(seconds to first piece, tokens/s after it, answer tokens, text) of a piece iterator."""
    t0 = time.perf_counter()
    first: float | None = None
    last = t0
    text = []
    for piece in pieces:
        now = time.perf_counter()
        if first is None:
            first = now
        last = now
        text.append(piece)
    answer = "".join(text)
    n = count_tokens(answer)
    gen = last - (first or last)
    rate = (n - 1) / gen if gen > 0 and n > 1 else float("nan")
    return (first or last) - t0, rate, n, answer


def bench_answer(args: argparse.Namespace, workdir: Path) -> None:
    from app.llm.runtime import load_model
    from ingest.embedding import default_embedder
    from ingest.store import LibraryStore

    embedder = default_embedder("auto")
    store = LibraryStore(build_small_library(workdir, embedder), embedder)
    model_settings = ModelSettings(
        path=args.model, context_length=args.ctx, temperature=0.0, max_answer_tokens=args.tokens
    )
    model = load_model(model_settings, OffloadSettings(gpu_layers=args.gpu_layers))
    print(f"model: {model.name} ({model.stats.summary()})")
    if model.notice:
        print(f"  {model.notice}")
    settings = Settings(model=model_settings)
    params = GenerationParams(max_tokens=args.tokens, temperature=0.0)
    llm = model._llm  # the raw llama_cpp.Llama behind the model (bench only)

    # One warm-up ask: loads the embedder's weights, fills caches, gives us the prompt.
    session = ChatSession(model, store, settings=settings)
    list(session.ask(QUESTION, params=params))
    assert session.last_prompt is not None
    prompt = session.last_prompt.text
    gen_params = GenerationParams(
        max_tokens=min(args.tokens, session.last_prompt.answer_room), temperature=0.0
    )
    bos = model._bos
    tokens = model.tokenize(prompt, add_bos=not (bos and prompt.startswith(bos)))
    stops = list(dict.fromkeys([*gen_params.stop, *model._stops]))

    def raw_pieces() -> Any:
        for chunk in llm.create_completion(
            tokens,
            max_tokens=gen_params.max_tokens,
            temperature=gen_params.temperature,
            top_p=gen_params.top_p,
            repeat_penalty=gen_params.repeat_penalty,
            stop=stops,
            stream=True,
        ):
            text = chunk["choices"][0]["text"]
            if text:
                yield text

    raw: list[tuple[float, float, int, str]] = []
    ask: list[tuple[float, float, float, int, str]] = []  # ttft(ask), ttft(model), rate, n, text
    for _ in range(args.runs):
        llm.reset()
        raw.append(timed_stream(raw_pieces(), model.count_tokens))
        llm.reset()
        fresh = ChatSession(model, store, settings=settings)
        t0 = time.perf_counter()
        ttft_ask: float | None = None
        done: Done | None = None
        retrieval_s = 0.0
        for event in fresh.ask(QUESTION, params=params):
            if isinstance(event, Retrieved):
                retrieval_s = time.perf_counter() - t0
            elif isinstance(event, Token) and ttft_ask is None:
                ttft_ask = time.perf_counter() - t0
            elif isinstance(event, Done):
                done = event
        assert done is not None and fresh.last_prompt is not None
        assert fresh.last_prompt.text == prompt, "the prompt changed between runs"
        ask.append(
            (
                ttft_ask or float("nan"),
                done.stats.ttft_s or float("nan"),
                done.stats.tokens_per_s or float("nan"),
                done.stats.answer_tokens,
                done.answer,
            )
        )
        print(f"  run: retrieval+prompt {retrieval_s * 1000:.0f} ms before generation")

    raw_ttft = statistics.median(r[0] for r in raw)
    raw_rate = statistics.median(r[1] for r in raw)
    ask_ttft = statistics.median(a[0] for a in ask)
    ask_model_ttft = statistics.median(a[1] for a in ask)
    ask_rate = statistics.median(a[2] for a in ask)
    print(f"prompt: {len(tokens)} tokens; answer: {raw[0][2]} tokens (raw) / {ask[0][3]} (ask)")
    print(f"raw llama-cpp-python : TTFT {raw_ttft * 1000:7.1f} ms   {raw_rate:7.1f} tokens/s")
    print(
        f"ChatSession.ask      : TTFT {ask_ttft * 1000:7.1f} ms   {ask_rate:7.1f} tokens/s   "
        f"(model-only TTFT {ask_model_ttft * 1000:.1f} ms)"
    )
    print(
        f"ratio ask/raw        : tokens/s {ask_rate / raw_rate:.3f} (aim >= 0.95)   "
        f"model TTFT {ask_model_ttft / raw_ttft:.3f}"
    )
    # Greedy decoding of the same tokens: the same answer (ask's has invalid citations removed).
    print(f"same answer length   : {raw[0][2] == ask[0][3]} ({raw[0][3][:60]!r}...)")
    model.close()


def build_big_store(path: Path, n_chunks: int, embedder: Any) -> None:
    """A store of `n_chunks` synthetic chunks (random words, clustered unit vectors)."""
    import numpy as np
    import pyarrow as pa

    from ingest.store import LibraryStore, SourceRecord

    rng = np.random.default_rng(7)
    vocab = np.array(
        [f"w{i:05d}" for i in range(20_000)]
        + [
            "lighthouse",
            "volcano",
            "honey",
            "bee",
            "storm",
            "ship",
            "harbour",
            "island",
            "queen",
            "lava",
            "ash",
            "crater",
        ]
    )
    store = LibraryStore(path, embedder)
    dim = embedder.dim
    centres = rng.normal(size=(256, dim)).astype(np.float32)
    per_doc = 20
    batch = 10_000
    t0 = time.perf_counter()
    with store.writing():
        store.add_source(
            SourceRecord(
                source_id="bench0000000",
                path=str(path / "synthetic.zim"),
                kind="zim",
                title="Synthetic",
                identity="bench",
                stage="ready",
            )
        )
        for start in range(0, n_chunks, batch):
            ids = np.arange(start, min(start + batch, n_chunks))
            words = rng.choice(vocab, size=(len(ids), 120), p=None)
            texts = [" ".join(w) for w in words]
            ordinals = ids // per_doc
            store.add_chunks(
                pa.table(
                    {
                        "chunk_id": [
                            f"bench0000000:{o}:{i % per_doc}"
                            for o, i in zip(ordinals, ids, strict=True)
                        ],
                        "source_id": ["bench0000000"] * len(ids),
                        "doc_id": [f"Doc_{o}" for o in ordinals],
                        "title": [f"Document {o}" for o in ordinals],
                        "section": [""] * len(ids),
                        "ordinal": ordinals.astype(np.int64),
                        "chunk_index": (ids % per_doc).astype(np.int32),
                        "start": np.zeros(len(ids), np.int32),
                        "end": np.full(len(ids), 800, np.int32),
                        "text": texts,
                    }
                )
            )
            vecs = centres[rng.integers(0, len(centres), len(ids))] + 0.3 * rng.normal(
                size=(len(ids), dim)
            ).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            store.add_vectors(
                "bench0000000",
                [f"bench0000000:{o}:{i % per_doc}" for o, i in zip(ordinals, ids, strict=True)],
                ordinals.tolist(),
                vecs,
            )
            print(f"  {min(start + batch, n_chunks)} chunks written", flush=True)
        store.maintain()
    print(f"  built in {time.perf_counter() - t0:.0f} s")


def bench_retrieval(args: argparse.Namespace, workdir: Path) -> None:
    from ingest.embedding import default_embedder
    from ingest.store import LibraryStore

    embedder = default_embedder("auto")
    embedder.embed(["warm up"])
    path = workdir / f"store-{args.chunks}"
    marker = path / ".complete"
    if not marker.exists():
        print(f"building a {args.chunks}-chunk store in {path} ...")
        build_big_store(path, args.chunks, embedder)
        marker.touch()
    store = LibraryStore(path, embedder)
    print(f"store: {store.chunk_count()} chunks, {store.vector_count()} vectors")
    queries = [
        "lighthouse island harbour",
        "volcano lava ash crater",
        "honey bee queen",
        "storm ship",
        "w00012 w00077 lighthouse",
        "Which volcano erupted near the harbour?",
    ]
    k = Settings().retrieval.passages
    fetch = max(k * RetrievalConfig().overfetch, RetrievalConfig().min_fetch)
    selector = PassageRetriever(store, embedder=embedder)
    for q in queries[:2]:  # warm-up: open indexes, page in files
        store.search(q, k=fetch)
        selector.retrieve(q)
    embed_t, search_t, select_t = [], [], []
    for _ in range(args.retrieval_rounds):
        for q in queries:
            t = time.perf_counter()
            embedder.embed([q])
            embed_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            store.search(q, k=fetch, mode="hybrid")
            search_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            selector.retrieve(q, k=k)
            select_t.append(time.perf_counter() - t)

    def ms(xs: list[float]) -> str:
        xs = sorted(xs)
        return (
            f"median {statistics.median(xs) * 1000:6.1f} ms, "
            f"p90 {xs[int(len(xs) * 0.9)] * 1000:6.1f} ms"
        )

    print(f"query embedding             : {ms(embed_t)}")
    print(f"hybrid search (k={fetch})       : {ms(search_t)}  (includes query embedding)")
    print(
        f"passage selection (k={k})     : {ms(select_t)}  (search + relevance + dedupe + diversity)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the bundled SmolLM2)")
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--tokens", type=int, default=128, help="answer length (max tokens)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--retrieval-rounds", type=int, default=3)
    parser.add_argument("--workdir", help="keep the built stores here (default: a temp folder)")
    parser.add_argument("--skip-answer", action="store_true")
    parser.add_argument("--skip-retrieval", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    threading.current_thread().name = "bench"

    with tempfile.TemporaryDirectory(prefix="librarian-bench-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if not args.skip_answer:
            print("== answer: ChatSession.ask vs raw llama-cpp-python ==")
            bench_answer(args, workdir)
        if not args.skip_retrieval:
            print(f"== retrieval at {args.chunks} chunks ==")
            bench_retrieval(args, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
