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

from app.chat.citations import SourceRef, resolve
from app.chat.history import History, NewMessage
from app.chat.prompt import BuiltPrompt, PromptBuilder, Turn
from app.chat.retrieval import (
    STOPWORDS,
    Embedder,
    Passage,
    PassageRetriever,
    RetrievalConfig,
    Retriever,
    content_words,
    word_set,
)
from app.llm.base import ChatModel, GenerationParams
from app.settings import Settings

log = logging.getLogger(__name__)

NO_ANSWER = "I couldn't find anything about that in your library."

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
class Token:
    """A piece of the answer as it is generated."""

    text: str


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


@dataclass(frozen=True)
class Cancelled:
    """The answer was stopped; `partial` is what had been generated."""

    partial: str


ChatEvent = Retrieved | Token | Done | Cancelled


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
    terms: list[str] = []
    for w in re.findall(r"[\w'-]+", last.question):
        lw = w.lower()
        if len(lw) > 1 and lw not in STOPWORDS and lw not in _ANAPHORA and lw not in terms:
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
        """Events for one question: Retrieved, Token…, then Done (or Cancelled)."""
        params = params or self.params
        t0 = time.perf_counter()
        query = standalone_query(question, self.turns)
        found = self.passages.retrieve(query, sources=sources, question=question)
        retrieval_s = time.perf_counter() - t0
        if cancel is not None and cancel.is_set():
            yield Cancelled("")
            return

        if not found:
            yield Retrieved([], query)
            stats = Stats(retrieval_s=retrieval_s, total_s=time.perf_counter() - t0)
            self._remember(question, query, NO_ANSWER, [], True, stats)
            yield Done(NO_ANSWER, [], [], True, stats, self.conversation_id)
            return

        built = self.prompts.build(question, found, self.turns, answer_tokens=params.max_tokens)
        self.last_prompt = built
        yield Retrieved(built.passages, query)

        gen_params = GenerationParams(
            max_tokens=max(1, min(params.max_tokens, built.answer_room)),
            temperature=params.temperature,
            top_p=params.top_p,
            repeat_penalty=params.repeat_penalty,
            stop=params.stop,
        )
        pieces: list[str] = []
        t_gen = time.perf_counter()
        t_first: float | None = None
        for piece in self.model.stream(built.text, gen_params, cancel):
            if t_first is None:
                t_first = time.perf_counter()
            pieces.append(piece)
            yield Token(piece)
            if cancel is not None and cancel.is_set():
                break
        t_end = time.perf_counter()
        raw = "".join(pieces)
        if cancel is not None and cancel.is_set():
            yield Cancelled(raw)
            return

        cited = resolve(raw, built.passages)
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
        self._remember(question, query, cited.text, cited.sources, False, stats)
        yield Done(
            cited.text,
            cited.citations,
            cited.sources,
            False,
            stats,
            self.conversation_id,
            cited.dropped,
        )

    def _remember(
        self,
        question: str,
        query: str,
        answer: str,
        sources: list[SourceRef],
        no_answer: bool,
        stats: Stats,
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
                    answer,
                    model=self.model.name,
                    settings=self.settings.model_dump(mode="json"),
                    retrieval_query=query,
                    no_answer=no_answer,
                    stats=stats.as_dict(),
                    sources=sources,
                ),
            ],
        )


def _turns_from_history(history: History, conversation_id: int) -> list[Turn]:
    turns: list[Turn] = []
    question: str | None = None
    for m in history.load_conversation(conversation_id).messages:
        if m.role == "user":
            question = m.content
        elif question is not None:
            turns.append(Turn(question, m.content))
            question = None
    return turns
