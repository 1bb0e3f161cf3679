"""Benchmark: answers a reader can trust — retrieval that finds the passage, and cited answers.

Run by path: `python bench/answers.py [--model PATH] [--chunk-tokens 200] [--skip-answers]`.

Question sets (bench/data, checked by bench/questions.py): questions whose answer is one article
of the demo library (Wikipedia's Vital Articles, lead sections), with the article's title and a
fact a right answer contains, plus questions the library cannot answer; and passage questions
over two Project Gutenberg books (The Devil's Dictionary, The Complete Angler) with a phrase of
the passage that holds the answer. The library (the demo ZIM and the books from
../shared/fixtures/epub, real MiniLM embedder) is built once per passage size and cached in
--workdir.

Printed, for the bundled SmolLM2-135M (or --model):
- retrieval hit@1 / hit@5 of articles and of passages: BM25 (keyword), vector, hybrid, and the
  final passages the model is given (PassageRetriever);
- answers: share with at least one valid citation, share citing the right article or passage,
  share containing the fact — for the instant extractive answer, the model's answer and the
  two together as the reader sees them — the share of generated sentences no passage supports,
  and the time to the extractive answer and to the first model token;
- unanswerable questions: share answered "the library does not say".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.append(str(REPO / "bench"))  # after the root: bench/ingest.py must not hide `ingest`

from questions import (  # noqa: E402
    ArticleQuestion,
    PassageQuestion,
    load_article_questions,
    load_passage_questions,
)

BOOKS = ["pg972-devils-dictionary.epub3.epub", "pg9198-complete-angler.epub2.epub"]
FIXTURES = REPO.parent / "shared" / "fixtures" / "epub"
MODES = ("keyword", "vector", "hybrid")


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


# ------------------------------------------------------------------------------ library


def build_library(workdir: Path, chunk_tokens: int | None) -> Path:
    """The demo ZIM and the Gutenberg books in one library (built once, cached)."""
    import runpy

    from ingest.pipeline import SourceResult, ingest_paths

    tag = f"-{chunk_tokens}" if chunk_tokens else ""
    lib = workdir / f"library{tag}"
    marker = lib / ".bench-complete"
    if marker.exists():
        return lib
    demo = runpy.run_path(str(REPO / "packaging" / "build_demo.py"))["build_demo"](
        workdir / "demo" / "wikipedia_vital_articles_demo.zim"
    )
    paths = [demo] + [FIXTURES / b for b in BOOKS if (FIXTURES / b).exists()]
    print(f"building the library ({len(paths)} sources) in {lib} ...", flush=True)
    kwargs: dict[str, Any] = {"chunk_tokens": chunk_tokens} if chunk_tokens else {}
    for ev in ingest_paths(paths, lib, **kwargs):
        if isinstance(ev, SourceResult):
            print(f"  {ev.line}", flush=True)
    marker.touch()
    return lib


# ---------------------------------------------------------------------------- retrieval


def article_hit(hits: Iterable[Any], q: ArticleQuestion) -> list[bool]:
    return [h.locator.title == q.title for h in hits]


def passage_hit(hits: Iterable[Any], q: PassageQuestion) -> list[bool]:
    phrase = _norm(q.phrase)
    return [
        Path(getattr(h, "source_path", "")).name == q.book and phrase in _norm(h.text) for h in hits
    ]


@dataclass
class Score:
    at1: list[bool] = field(default_factory=list)
    at5: list[bool] = field(default_factory=list)

    def add(self, hits: list[bool]) -> None:
        self.at1.append(bool(hits[:1]) and hits[0])
        self.at5.append(any(hits[:5]))

    def __str__(self) -> str:
        n = max(1, len(self.at1))
        return f"{sum(self.at1) / n:.2f} / {sum(self.at5) / n:.2f}"


def measure_retrieval(
    store: Any, articles: list[ArticleQuestion], passages: list[PassageQuestion]
) -> dict[str, dict[str, Score]]:
    from app.chat.retrieval import PassageRetriever

    selector = PassageRetriever(store, embedder=store.embedder)
    out: dict[str, dict[str, Score]] = {"articles": {}, "passages": {}}
    for kind, questions, hit in (
        ("articles", [q for q in articles if q.answerable], article_hit),
        ("passages", passages, passage_hit),
    ):
        for mode in (*MODES, "final"):
            score = Score()
            for q in questions:
                if mode == "final":
                    found = selector.retrieve(q.question)
                else:
                    found = store.search(q.question, k=5, mode=mode)
                score.add(hit(found, q))  # type: ignore[arg-type]
            out[kind][mode] = score
    return out


# ------------------------------------------------------------------------------ answers


@dataclass
class AnswerRecord:
    """What one question got, as the reader sees it."""

    question: str
    extract: str = ""
    extract_cites: list[Any] = field(default_factory=list)
    answer: str = ""
    cites: list[Any] = field(default_factory=list)
    no_answer: bool = False
    unsupported: int = 0
    sentences: int = 0
    extract_s: float | None = None
    retrieved_s: float | None = None
    first_token_s: float | None = None
    passages: list[Any] = field(default_factory=list)  # what the model was given
    claims: list[str] = field(default_factory=list)  # its sentences that state something


def ask_all(session_factory: Any, questions: list[str]) -> list[AnswerRecord]:
    """Ask each question in a fresh conversation; record what the reader would see."""
    from app.chat import session as chat

    out = []
    for i, question in enumerate(questions, 1):
        session = session_factory()
        rec = AnswerRecord(question)
        t0 = time.perf_counter()
        by_number: dict[int, Any] = {}
        for event in session.ask(question):
            if isinstance(event, chat.Retrieved):
                by_number = {p.number: p for p in event.passages}
                rec.passages = list(event.passages)
                rec.retrieved_s = time.perf_counter() - t0
            elif isinstance(event, chat.Extract):
                rec.extract_s = event.seconds
                rec.extract = " ".join(f"{q.title}: {q.text}" for q in event.quotes)
                rec.extract_cites = [by_number[q.number] for q in event.quotes]
            elif isinstance(event, chat.Token) and rec.first_token_s is None:
                rec.first_token_s = time.perf_counter() - t0
            elif isinstance(event, chat.Done):
                rec.answer = event.answer
                rec.no_answer = event.no_answer
                rec.cites = [by_number[n] for n in event.citations if n in by_number]
                claims = [s for s in event.support if s.claim]
                rec.claims = [s.text for s in claims]
                rec.sentences = len(claims)
                rec.unsupported = sum(1 for s in claims if not s.supported)
        out.append(rec)
        if i % 10 == 0:
            print(f"  {i}/{len(questions)} answered", flush=True)
    return out


def _cites_article(cites: list[Any], q: ArticleQuestion) -> bool:
    return any(c.title == q.title for c in cites)


def _cites_passage(cites: list[Any], q: PassageQuestion) -> bool:
    phrase = _norm(q.phrase)
    return any(phrase in _norm(c.text) for c in cites)


def answer_table(
    articles: list[ArticleQuestion],
    a_recs: list[AnswerRecord],
    passages: list[PassageQuestion],
    p_recs: list[AnswerRecord],
) -> list[list[str]]:
    rows = []

    def share(flags: list[bool]) -> str:
        return f"{sum(flags) / max(1, len(flags)):.2f}"

    for label, qs, recs, right in (
        ("article questions", articles, a_recs, _cites_article),
        ("passage questions", passages, p_recs, _cites_passage),
    ):
        pairs = [(q, r) for q, r in zip(qs, recs, strict=True) if getattr(q, "fact", None)]
        for part, text_of, cites_of in (
            ("instant extract", lambda r: r.extract, lambda r: r.extract_cites),
            ("model answer", lambda r: r.answer, lambda r: r.cites),
            (
                "both, as shown",
                lambda r: f"{r.extract} {r.answer}",
                lambda r: [*r.extract_cites, *r.cites],
            ),
        ):
            rows.append(
                [
                    f"{label}: {part}",
                    share([bool(cites_of(r)) for _, r in pairs]),
                    share([right(cites_of(r), q) for q, r in pairs]),
                    share([q.fact.lower() in text_of(r).lower() for q, r in pairs]),  # type: ignore[union-attr]
                ]
            )
    return rows


def checking_table(
    embedder: Any, articles: list[ArticleQuestion], a_recs: list[AnswerRecord]
) -> tuple[list[list[str]], dict[str, Any]]:
    """How well the sentence check separates true from made-up sentences, at several
    thresholds. True: the model's sentences that state the question's fact, checked against
    the passages it was given. Made up, two kinds: the model's sentences of one question checked
    against another question's passages (off topic), and the true sentences with their fact
    swapped for another question's fact (on topic, one fact wrong — the hard case).
    """
    from app.chat import checking
    from app.chat.evidence import Evidence

    def score(sentence: str, passages: list[Any]) -> float:
        scores = checking.support_scores(sentence, Evidence(passages, embedder))
        return max(scores.values(), default=0.0)

    true, off_topic, swapped = [], [], []
    recs = [(q, r) for q, r in zip(articles, a_recs, strict=True) if r.passages and r.claims]
    for i, (q, r) in enumerate(recs):
        other_q, other = recs[(i + len(recs) // 2) % len(recs)]
        held = " ".join(p.text for p in r.passages).lower()
        for c in r.claims:
            if q.fact and q.fact.lower() in c.lower():
                true.append(score(c, r.passages))
                wrong = other_q.fact
                if wrong and wrong.lower() not in held:
                    at = c.lower().index(q.fact.lower())
                    swapped.append(score(c[:at] + wrong + c[at + len(q.fact) :], r.passages))
        if not {p.title for p in r.passages} & {p.title for p in other.passages}:
            off_topic += [score(c, other.passages) for c in r.claims]
    rows = []

    def share(flags: list[bool]) -> str:
        return f"{sum(flags) / max(1, len(flags)):.2f}"

    for t in (0.75, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1):
        rows.append(
            [
                f"{t:.2f}" + (" (used)" if abs(t - checking.SUPPORTED) < 1e-9 else ""),
                share([x >= t for x in true]),
                share([x < t for x in off_topic]),
                share([x < t for x in swapped]),
            ]
        )
    return rows, {"true": len(true), "off_topic": len(off_topic), "swapped": len(swapped)}


def save_records(path: Path, recs: list[AnswerRecord]) -> None:
    """What every question got (for reading the answers, and for --check-only)."""
    import dataclasses

    def plain(r: AnswerRecord) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(r).items() if k not in ("cites", "extract_cites")}
        d["passages"] = [dataclasses.asdict(p) for p in r.passages]
        return d

    path.write_text("\n".join(json.dumps(plain(r)) for r in recs))


def load_records(path: Path) -> list[AnswerRecord]:
    from app.chat.retrieval import Passage
    from ingest.documents import Locator

    out = []
    for line in path.read_text().splitlines():
        d = json.loads(line)
        d["passages"] = [
            Passage(**{**p, "locator": Locator(**p["locator"])}) for p in d["passages"]
        ]
        d.pop("cites", None)
        out.append(AnswerRecord(**d))
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="GGUF file (default: the bundled SmolLM2-135M)")
    parser.add_argument("--chunk-tokens", type=int, default=None, help="passage size to build")
    parser.add_argument("--skip-answers", action="store_true", help="retrieval only")
    parser.add_argument("--limit", type=int, default=None, help="ask only the first N of each")
    parser.add_argument("--tokens", type=int, default=160, help="answer length (max tokens)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--records", type=Path, help="write every answer here (JSON lines)")
    parser.add_argument(
        "--check-only", type=Path, help="only the sentence-check table, from saved --records"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workdir = (
        args.workdir
        or Path(os.environ.get("LIBRARIAN_BENCH_DIR", "/tmp/librarian-bench")) / "answers"
    )
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LIBRARIAN_HOME", str(workdir / "home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from ingest.embedding import default_embedder
    from ingest.store import LibraryStore

    articles = load_article_questions()
    passages = load_passage_questions() if FIXTURES.is_dir() else []
    lib = build_library(workdir, args.chunk_tokens)
    embedder = default_embedder("cpu")
    store = LibraryStore(lib, embedder)
    chunks = store.chunk_count()
    print(f"library: {chunks:,} passages ({args.chunk_tokens or 'default'} tokens at most)")
    figures: dict[str, Any] = {"passages": chunks}

    if args.check_only:
        recs = load_records(args.check_only)
        from app.chat.checking import check_answer, check_sentence
        from app.chat.evidence import Evidence
        from app.chat.extract import instant_answer

        claims = [
            check_sentence(c, Evidence(r.passages, embedder)).supported
            for r in recs
            for c in r.claims
        ]
        print(
            f"generated sentences no passage supports (checked again): "
            f"{claims.count(False) / max(1, len(claims)):.2f} ({claims.count(False)} of "
            f"{len(claims)})"
        )
        answerable_q = [q for q in articles if q.answerable][: len(recs)]
        a_recs = recs[: len(answerable_q)]
        p_recs = recs[len(answerable_q) : len(answerable_q) + len(passages)]
        for r in recs:  # the instant answer and the citations as the current rules give them
            by_number = {p.number: p for p in r.passages}
            evidence = Evidence(r.passages, embedder)
            checked = check_answer(r.answer, evidence)
            r.cites = [by_number[n] for n in checked.citations if n in by_number]
            quotes = instant_answer(r.question, evidence)
            r.extract = " ".join(f"{q.title}: {q.text}" for q in quotes)
            r.extract_cites = [by_number[q.number] for q in quotes]
        quoted_none = sum(1 for r in recs[len(answerable_q) + len(p_recs) :] if r.extract)
        print(f"questions the library cannot answer, instant answer quoted anyway: {quoted_none}")
        print(
            _table(
                ["answers (checked again)", "cite anything", "cite the right source",
                 "contain the fact"],
                answer_table(answerable_q, a_recs, passages[: len(p_recs)], p_recs),
            )
        )  # fmt: skip
        _print_checking(embedder, answerable_q, a_recs, figures)
        return 0
    t0 = time.perf_counter()
    retrieval = measure_retrieval(store, articles, passages)
    per_q = (time.perf_counter() - t0) / max(1, 4 * (len(articles) + len(passages)))
    print(f"\n== retrieval hit@1 / hit@5 ({per_q * 1000:.0f} ms per search) ==")
    rows = [
        [mode, str(retrieval["articles"][mode]), str(retrieval["passages"][mode])]
        for mode in (*MODES, "final")
    ]
    print(
        _table(
            [
                "ranking",
                f"articles ({sum(q.answerable for q in articles)} q.)",
                f"passages ({len(passages)} q.)",
            ],
            rows,
        )
    )
    figures["retrieval"] = {k: {m: str(s) for m, s in v.items()} for k, v in retrieval.items()}
    if args.skip_answers:
        _write(args.json, figures)
        return 0

    from app.chat.session import ChatSession
    from app.llm.runtime import load_model
    from app.settings import ModelSettings, OffloadSettings, Settings

    model_settings = ModelSettings(
        path=args.model, temperature=0.0, max_answer_tokens=args.tokens, context_length=4096
    )
    model = load_model(model_settings, OffloadSettings())
    settings = Settings(model=model_settings)
    print(f"\n== answers by {model.name} ==")

    def session() -> ChatSession:
        return ChatSession(model, store, settings=settings, embedder=embedder)

    answerable = [q for q in articles if q.answerable][: args.limit]
    book_qs = passages[: args.limit]
    nothing = [q for q in articles if not q.answerable]
    a_recs = ask_all(session, [q.question for q in answerable])
    p_recs = ask_all(session, [q.question for q in book_qs])
    n_recs = ask_all(session, [q.question for q in nothing])
    print(
        _table(
            ["answers", "cite anything", "cite the right source", "contain the fact"],
            answer_table(answerable, a_recs, book_qs, p_recs),
        )
    )
    recs = a_recs + p_recs
    sentences = sum(r.sentences for r in recs)
    unsupported = sum(r.unsupported for r in recs)
    extract_s = [r.extract_s for r in recs if r.extract_s is not None]
    first = [r.first_token_s for r in recs if r.first_token_s is not None]
    declined = sum(r.no_answer or not r.extract for r in n_recs)
    n_claims = sum(r.sentences for r in n_recs)
    n_flagged = sum(r.unsupported for r in n_recs)
    print(
        f"generated sentences no passage supports: "
        f"{unsupported / sentences:.2f} ({unsupported} of {sentences})"
        if sentences
        else "generated sentences no passage supports: (not checked)"
    )
    if extract_s:
        after = [
            r.extract_s - r.retrieved_s
            for r in recs
            if r.extract_s is not None and r.retrieved_s is not None
        ]
        print(
            f"time to the extractive answer: median {statistics.median(extract_s):.2f} s from "
            f"the question, {statistics.median(after) * 1000:.0f} ms after retrieval "
            f"(p95 {sorted(after)[int(len(after) * 0.95)] * 1000:.0f} ms)"
        )
    if first:
        print(f"time to the first model token: median {statistics.median(first):.2f} s")
    print(
        f"questions the library cannot answer: no instant answer for {declined} of "
        f"{len(n_recs)}; {n_flagged} of the model's {n_claims} sentences about them flagged"
    )
    if args.records:
        save_records(args.records, a_recs + p_recs + n_recs)
    _print_checking(embedder, answerable, a_recs, figures)
    figures["answers"] = answer_table(answerable, a_recs, book_qs, p_recs)
    _write(args.json, figures)
    model.close()
    return 0


def _print_checking(
    embedder: Any, answerable: list[ArticleQuestion], recs: list[AnswerRecord], figures: Any
) -> None:
    rows, n = checking_table(embedder, answerable, recs)
    print(
        f"\n== the sentence check: {n['true']} true sentences (they state the fact); made up: "
        f"{n['off_topic']} off topic (another question's passages), {n['swapped']} with the "
        f"fact swapped for another question's =="
    )
    print(
        _table(["threshold", "true ones supported", "off-topic flagged", "swapped flagged"], rows)
    )
    figures["checking"] = rows


def _write(path: Path | None, figures: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
