"""ChatSession: one conversation — retrieval, prompt, streamed answer, citations, history.

`ask()` is a plain generator of events (HOUSE_STYLE: long-running work): `Retrieved`, then
`Token`s, then `Done` — or `Cancelled` when the cancel event is set. The UI runs it on a worker
thread; the CLI and the tests just iterate it.

Follow-ups are made self-contained for retrieval without an extra model call: a question that
leans on the previous turn (a pronoun such as "it"/"they", or very few topic words) is searched
together with the previous question's topic words and the names in the previous answer. This is
deterministic, costs nothing, and does not let a 135M model misread the question; the model
still sees the earlier turns themselves in its prompt.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.chat.checking import CheckedAnswer, SentenceSupport, check_sentence
from app.chat.citations import SourceRef, resolve, source_refs
from app.chat.evidence import Evidence
from app.chat.extract import Quote, instant_answer
from app.chat.history import History, NewMessage
from app.chat.prompt import BuiltPrompt, HeaderEcho, PromptBuilder, Turn
from app.chat.retrieval import (
    Embedder,
    Passage,
    PassageRetriever,
    RetrievalConfig,
    Retriever,
)
from app.llm.base import ChatModel, GenerationParams
from app.settings import Settings
from ingest.chunking import sentence_spans
from ingest.terms import STOPWORDS, content_words, stopwords, text_language, word_set

log = logging.getLogger(__name__)

NO_ANSWER = "I couldn't find anything about that in your library."
# Appended to a stopped answer in the history, so a reloaded or exported chat shows it was cut.
STOPPED_MARK = "\n\n*(stopped)*"

# Words that point back at the previous turn.
_ANAPHORA = word_set(
    "it its it's they them their theirs this these those he him his she her hers former latter"
)
_FOLLOW_UP_START = re.compile(r"^\s*(and|but|so|also|what about|how about|why|then)\b", re.I)
_NAME = re.compile(r"\b[A-Z][\w'-]+(?:\s+(?:of|the|de|la|von|van)?\s*[A-Z][\w'-]+)*")
MAX_CONTEXT_TERMS = 8


@dataclass(frozen=True)
class Stats:
    """Timings and sizes of one answer."""

    prompt_tokens: int = 0
    answer_tokens: int = 0
    retrieval_s: float = 0.0
    ttft_s: float | None = None  # from the start of generation to the first piece
    generation_s: float = 0.0  # from the first piece to the last
    tokens_per_s: float | None = None
    total_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Retrieved:
    """The passages given to the model, numbered; empty when the library has no answer."""

    passages: list[Passage]
    query: str  # what was searched (the follow-up made self-contained)


@dataclass(frozen=True)
class Extract:
    """The instant answer: the passages' sentences that best answer the question, each with its
    passage number (empty: no sentence answers it). Comes right after Retrieved, before the
    model writes anything."""

    quotes: list[Quote]
    seconds: float  # from the question to this event


@dataclass(frozen=True)
class Token:
    """A piece of the answer as it is generated."""

    text: str


@dataclass(frozen=True)
class Checked:
    """A finished sentence of the model's answer, checked against the passages: its checked
    citations, and whether any passage supports it. `index` counts the answer's sentences;
    `before` is the text between the previous sentence and this one (spaces, line breaks)."""

    index: int
    sentence: SentenceSupport
    before: str = ""


@dataclass(frozen=True)
class Done:
    """The finished answer with its citations and sources (cited first)."""

    answer: str
    citations: list[int]
    sources: list[SourceRef]
    no_answer: bool
    stats: Stats
    conversation_id: int | None = None
    dropped_citations: list[int] = field(default_factory=list)
    extract: list[Quote] = field(default_factory=list)
    support: list[SentenceSupport] = field(default_factory=list)


@dataclass(frozen=True)
class Cancelled:
    """The answer was stopped; `partial` is what had been generated (saved, marked stopped)."""

    partial: str
    conversation_id: int | None = None


ChatEvent = Retrieved | Extract | Token | Checked | Done | Cancelled


def standalone_query(question: str, previous: Sequence[Turn]) -> str:
    """`question`, with the previous turn's topic words added when it depends on them."""
    if not previous:
        return question
    words = re.findall(r"[\w']+", question.lower())
    topic = content_words(question)
    depends = (
        any(w in _ANAPHORA for w in words)
        or len(topic) <= 1
        or bool(_FOLLOW_UP_START.match(question))
    )
    if not depends:
        return question
    last = previous[-1]
    stop = stopwords(text_language(last.question))
    terms: list[str] = []
    for w in re.findall(r"[\w'-]+", last.question):
        lw = w.lower()
        if len(lw) > 1 and lw not in stop and lw not in _ANAPHORA and lw not in terms:
            terms.append(lw)
    for name in _NAME.findall(last.answer):
        n = name.strip()
        if (
            n.lower() not in STOPWORDS
            and n.lower() not in terms
            and n.split()[0] not in ("I", "The")
        ):
            terms.append(n.lower())
    extra = [t for t in terms if t not in words][:MAX_CONTEXT_TERMS]
    return f"{question} ({' '.join(extra)})" if extra else question


class ChatSession:
    """Answers questions about the library in one conversation; optionally saved to history."""

    def __init__(
        self,
        model: ChatModel,
        retriever: Retriever,
        history: History | None = None,
        settings: Settings | None = None,
        *,
        conversation_id: int | None = None,
        embedder: Embedder | None = None,
        retrieval_config: RetrievalConfig | None = None,
    ) -> None:
        self.model = model
        self.settings = settings or Settings()
        self.history = history
        self.conversation_id = conversation_id
        cfg = retrieval_config or RetrievalConfig(
            passages=self.settings.retrieval.passages, mode=self.settings.retrieval.mode
        )
        # The store's own embedder (when it has one) also judges relevance: see retrieval.py.
        if embedder is None:
            embedder = getattr(retriever, "embedder", None)
        self.passages = PassageRetriever(retriever, embedder=embedder, config=cfg)
        self.evidence_embedder = embedder  # judges the instant answer and the checks
        self.prompts = PromptBuilder(model)
        self.turns: list[Turn] = []
        self.last_prompt: BuiltPrompt | None = None
        if history is not None and conversation_id is not None:
            self.turns = _turns_from_history(history, conversation_id)

    @property
    def params(self) -> GenerationParams:
        m = self.settings.model
        return GenerationParams(max_tokens=m.max_answer_tokens, temperature=m.temperature)

    def ask(
        self,
        question: str,
        cancel: threading.Event | None = None,
        sources: Sequence[str] | None = None,
        *,
        params: GenerationParams | None = None,
    ) -> Iterator[ChatEvent]:
        """Events for one question: Retrieved, Token…, then Done (or Cancelled).

        A stopped answer is saved too (question, partial answer marked stopped, the passages
        that were in the prompt) — whether the cancel event ends it or the consumer closes the
        generator mid-answer, as the UI's worker does when the window closes.
        """
        answering = _Answering(question)
        try:
            yield from self._answer(answering, cancel, sources, params or self.params)
        except GeneratorExit:
            if not answering.saved:
                self._remember_stopped(answering)
            raise

    def _answer(
        self,
        a: _Answering,
        cancel: threading.Event | None,
        sources: Sequence[str] | None,
        params: GenerationParams,
    ) -> Iterator[ChatEvent]:
        question = a.question
        t0 = a.t0
        query = standalone_query(question, self.turns)
        a.query = query
        found = self.passages.retrieve(query, sources=sources, question=question)
        retrieval_s = time.perf_counter() - t0
        if cancel is not None and cancel.is_set():
            self._remember_stopped(a)
            yield Cancelled("", self.conversation_id)
            return

        if not found:
            stats = Stats(retrieval_s=retrieval_s, total_s=time.perf_counter() - t0)
            # Saved before the first yield: the turn is complete once retrieval found nothing.
            self._remember(question, query, NO_ANSWER, [], True, stats)
            a.saved = True
            yield Retrieved([], query)
            yield Done(NO_ANSWER, [], [], True, stats, self.conversation_id)
            return

        built = self.prompts.build(question, found, self.turns, answer_tokens=params.max_tokens)
        self.last_prompt = built
        a.passages = built.passages
        yield Retrieved(built.passages, query)

        evidence = Evidence(built.passages, self.evidence_embedder)
        quotes = instant_answer(question, evidence, query)
        a.quotes = quotes
        yield Extract(quotes, time.perf_counter() - t0)

        gen_params = GenerationParams(
            max_tokens=max(1, min(params.max_tokens, built.answer_room)),
            temperature=params.temperature,
            top_p=params.top_p,
            repeat_penalty=params.repeat_penalty,
            stop=params.stop,
        )
        pieces = a.pieces
        sentences = _SentenceStream(evidence)
        t_gen = time.perf_counter()
        t_first: float | None = None
        echo = HeaderEcho(built.passages)

        def shown(piece: str) -> Iterator[ChatEvent]:
            """A piece of the answer as the reader gets it, and the sentences it completes."""
            if piece:
                pieces.append(piece)
                yield Token(piece)
                for index, checked, before in sentences.feed(piece):
                    yield Checked(index, checked, before)

        for raw_piece in self.model.stream(built.text, gen_params, cancel):
            if t_first is None:
                t_first = time.perf_counter()
            yield from shown(echo.feed(raw_piece))
            if cancel is not None and cancel.is_set():
                break
        yield from shown(echo.flush())
        t_end = time.perf_counter()
        raw = "".join(pieces)
        if cancel is not None and cancel.is_set():
            self._remember_stopped(a)
            yield Cancelled(raw, self.conversation_id)
            return
        for index, checked, before in sentences.finish():
            yield Checked(index, checked, before)
        answer = sentences.answer()
        cited = resolve(answer.text, built.passages)
        invented = resolve(raw, built.passages).dropped  # numbers no passage has
        quoted = [q.number for q in quotes]
        refs = source_refs(built.passages, [*quoted, *cited.citations])
        answer_tokens = self.model.count_tokens(raw) if raw else 0
        gen_s = (t_end - t_first) if t_first is not None else 0.0
        stats = Stats(
            prompt_tokens=built.prompt_tokens,
            answer_tokens=answer_tokens,
            retrieval_s=retrieval_s,
            ttft_s=(t_first - t_gen) if t_first is not None else None,
            generation_s=gen_s,
            # The first token's time belongs to prompt evaluation: rate over the rest.
            tokens_per_s=(answer_tokens - 1) / gen_s if gen_s > 0 and answer_tokens > 1 else None,
            total_s=t_end - t0,
        )
        self._remember(
            question, query, cited.text, refs, False, stats, quotes=quotes,
            support=answer.sentences,
        )  # fmt: skip
        a.saved = True
        yield Done(
            cited.text,
            cited.citations,
            refs,
            False,
            stats,
            self.conversation_id,
            invented,
            quotes,
            answer.sentences,
        )

    def _remember_stopped(self, a: _Answering) -> None:
        """Save a stopped turn: the partial answer, marked, with the passages it was given."""
        a.saved = True
        cited = resolve("".join(a.pieces), a.passages)
        quoted = [q.number for q in a.quotes]
        stats = {**Stats(total_s=time.perf_counter() - a.t0).as_dict(), "stopped": True}
        self._remember(
            a.question,
            a.query,
            cited.text,
            source_refs(a.passages, [*quoted, *cited.citations]),
            False,
            stats,
            stored_answer=(cited.text + STOPPED_MARK).strip(),
            quotes=a.quotes,
        )

    def _remember(
        self,
        question: str,
        query: str,
        answer: str,
        sources: list[SourceRef],
        no_answer: bool,
        stats: Stats | dict[str, Any],
        *,
        stored_answer: str | None = None,
        quotes: Sequence[Quote] = (),
        support: Sequence[SentenceSupport] = (),
    ) -> None:
        self.turns.append(Turn(question, answer))
        if self.history is None:
            return
        if self.conversation_id is None:
            self.conversation_id = self.history.create_conversation(question)
        self.history.add_messages(
            self.conversation_id,
            [
                NewMessage("user", question),
                NewMessage(
                    "assistant",
                    answer if stored_answer is None else stored_answer,
                    model=self.model.name,
                    settings=self.settings.model_dump(mode="json"),
                    retrieval_query=query,
                    no_answer=no_answer,
                    stats=stats.as_dict() if isinstance(stats, Stats) else stats,
                    sources=sources,
                    extract=[(q.text, q.number, q.title) for q in quotes],
                    support=[
                        {"text": s.text, "supported": s.supported, "claim": s.claim}
                        for s in support
                    ],
                ),
            ],
        )


@dataclass
class _Answering:
    """What one `ask()` has so far: enough to save the turn if it is stopped."""

    question: str
    t0: float = field(default_factory=time.perf_counter)
    query: str = ""
    passages: list[Passage] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    saved: bool = False


class _SentenceStream:
    """The model's answer as it streams, checked a sentence at a time: a sentence is checked
    once the next one has begun (or the answer has ended), so its end is known."""

    def __init__(self, evidence: Evidence) -> None:
        self.evidence = evidence
        self.raw = ""
        self.checked: list[tuple[int, int, SentenceSupport]] = []  # (start, end, result)

    def feed(self, piece: str) -> list[tuple[int, SentenceSupport, str]]:
        self.raw += piece
        return self._check(sentence_spans(self.raw)[:-1])

    def finish(self) -> list[tuple[int, SentenceSupport, str]]:
        return self._check(sentence_spans(self.raw))

    def _check(self, spans: list[tuple[int, int]]) -> list[tuple[int, SentenceSupport, str]]:
        out = []
        for start, end in spans[len(self.checked) :]:
            result = check_sentence(self.raw[start:end], self.evidence)
            before = self.raw[self.checked[-1][1] if self.checked else 0 : start]
            out.append((len(self.checked), result, before))
            self.checked.append((start, end, result))
        return out

    def answer(self) -> CheckedAnswer:
        """The whole answer with every sentence replaced by its checked form."""
        parts, pos = [], 0
        for start, end, result in self.checked:
            parts += [self.raw[pos:start], result.text]
            pos = end
        parts.append(self.raw[pos:])
        return CheckedAnswer("".join(parts), [r for _, _, r in self.checked])


def _turns_from_history(history: History, conversation_id: int) -> list[Turn]:
    turns: list[Turn] = []
    question: str | None = None
    for m in history.load_conversation(conversation_id).messages:
        if m.role == "user":
            question = m.content
        elif question is not None:
            # The model sees what was said, not the stopped mark the reader sees.
            turns.append(Turn(question, _without_stopped_mark(m.content)))
            question = None
    return turns


def _without_stopped_mark(content: str) -> str:
    mark = STOPPED_MARK.strip()
    return content.removesuffix(mark).rstrip() if content.endswith(mark) else content
