"""The prompt for a grounded answer, packed into the model's context with its own tokenizer.

Budget: context length − reserved answer tokens − a small safety margin. Every measurement is
`model.count_tokens(model.format_chat(messages))` of the whole prompt, so the chat template's own
tokens are counted too. Filling order: system prompt and question (always, the question cut
from its start if it alone is too long), then recent history turns (whole turns, newest first,
at most a quarter of the budget), then passages in rank order; the first passage that does not
fit whole is cut to fit, and the rest are dropped. The result always fits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from app.chat.retrieval import Passage
from app.llm.base import ChatMessage, ChatModel
from ingest.documents import heading

log = logging.getLogger(__name__)

# Measured on bench/answers.py with SmolLM2-135M (45 questions, greedy): the earlier prompt
# ("You are Librarian… Be concise.", question after the sources) gave answers that contained the
# fact 20% of the time, cited anything 4%, listed titles 13% and talked about "the sources" 22%;
# this one (short rules, the question before and after the sources, an explicit length and
# citation form) 42% / 36% / 0% / 2%. Small models copy the last instruction they read, so the
# question is repeated right before the answer starts.
SYSTEM_PROMPT = (
    "You answer questions from numbered sources taken from the user's offline library. "
    "Answer in one or two short sentences, using only facts from the sources, and put the "
    "number of the source after each fact, like [1]. If the sources do not answer the "
    "question, say that the library does not say."
)

# Tokens kept free beyond the reserved answer: BOS/EOS and template differences between
# counting the text and llama.cpp's own tokenisation of the prompt.
SAFETY_MARGIN = 8
# A passage cut shorter than this is not worth its header; drop it instead.
MIN_PASSAGE_TOKENS = 24
# The answer reservation may shrink to this when the context is tiny.
MIN_ANSWER_TOKENS = 32
HISTORY_SHARE = 0.25


class PromptTooLongError(Exception):
    """Even the bare question does not fit the model's context; the message is fit to show."""


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of the conversation, as the model will see it."""

    question: str
    answer: str


@dataclass(frozen=True)
class BuiltPrompt:
    """A prompt that fits: its text, token count and what went into it."""

    text: str
    messages: list[ChatMessage]
    passages: list[Passage]  # the passages actually in the prompt (some may be truncated)
    history_turns: int  # how many earlier turns were kept
    prompt_tokens: int
    answer_room: int  # tokens left for the answer; generate at most min(this, max_tokens)
    context_length: int


def source_header(p: Passage) -> str:
    """Where a passage is from, as its block's first line shows it (after its [n])."""
    where = heading(p.title, p.section)
    if p.source_title and p.source_title != p.title:
        where = f"{where} ({p.source_title})"
    return where


def format_passage(p: Passage) -> str:
    """One source block as the model sees it."""
    return f"[{p.number}] {source_header(p)}\n{p.text}"


class HeaderEcho:
    """Drops the copies of a source block's header line ("Malaria (Wikipedia …)", with or
    without its [n]) that a small model writes on a line of their own as it streams: the
    bundled 135M model began 25 of 150 answers of bench/answers.py so. A line is held back only
    while it can still become a header; anything else passes at once."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.headers = {
            h for p in passages for h in (source_header(p), format_passage(p).split("\n")[0])
        }
        self.held = ""  # the start of the current line, while it may be a header
        self.line_start = True

    def feed(self, piece: str) -> str:
        out: list[str] = []
        for ch in piece:
            if not (self.line_start or self.held):
                out.append(ch)
                self.line_start = ch == "\n"
                continue
            self.held += ch
            line = self.held.strip()
            if ch == "\n":
                if line not in self.headers:
                    out.append(self.held)
                self.held = ""
                self.line_start = True
            elif line and not any(h.startswith(line) for h in self.headers):
                out.append(self.held)
                self.held = ""
                self.line_start = False
        return "".join(out)

    def flush(self) -> str:
        """What is still held when the answer ends (nothing, if it was a header)."""
        held, self.held = self.held, ""
        return "" if held.strip() in self.headers else held


def user_message(question: str, passages: Sequence[Passage]) -> str:
    """The final user message: the question, the numbered sources, then the question again."""
    if not passages:
        return f"Question: {question}\n\nSources: none."
    blocks = "\n\n".join(format_passage(p) for p in passages)
    return (
        f"Question: {question}\n\nSources:\n\n{blocks}\n\n"
        f'Answer the question "{question}" in one or two sentences. '
        "Cite the source number like [1]."
    )


class PromptBuilder:
    """Builds prompts for one model; see the module docstring for the packing order."""

    def __init__(self, model: ChatModel, system_prompt: str = SYSTEM_PROMPT) -> None:
        self.model = model
        self.system_prompt = system_prompt

    def count(self, messages: Sequence[ChatMessage]) -> int:
        return self.model.count_tokens(self.model.format_chat(messages))

    def build(
        self,
        question: str,
        passages: Sequence[Passage],
        history: Sequence[Turn] = (),
        *,
        answer_tokens: int = 512,
        context_length: int | None = None,
    ) -> BuiltPrompt:
        """The largest prompt that leaves `answer_tokens` (or what is possible) for the answer."""
        ctx = context_length or self.model.context_length
        reserve = min(answer_tokens, max(MIN_ANSWER_TOKENS, ctx // 4))
        budget = ctx - reserve - SAFETY_MARGIN
        system = ChatMessage("system", self.system_prompt)

        def messages(turns: Sequence[Turn], ps: Sequence[Passage], q: str) -> list[ChatMessage]:
            out = [system]
            for t in turns:
                out += [ChatMessage("user", t.question), ChatMessage("assistant", t.answer)]
            out.append(ChatMessage("user", user_message(q, ps)))
            return out

        question = self._fit_question(question, budget, lambda q: messages((), (), q))

        # History: whole turns, newest first, within a share of the budget.
        base = self.count(messages((), (), question))
        history_cap = base + int(budget * HISTORY_SHARE)
        turns: list[Turn] = []
        for turn in reversed(list(history)):
            trial = [turn, *turns]
            if self.count(messages(trial, (), question)) > min(history_cap, budget):
                break
            turns = trial

        # Passages in rank order; cut the first that does not fit whole, drop the rest.
        kept: list[Passage] = []
        for p in passages:
            if self.count(messages(turns, [*kept, p], question)) <= budget:
                kept.append(p)
                continue
            cut = self._cut_passage(p, lambda q: messages(turns, [*kept, q], question), budget)
            if cut is not None:
                kept.append(cut)
            break

        final = messages(turns, kept, question)
        text = self.model.format_chat(final)
        used = self.model.count_tokens(text)
        if used > budget:  # cannot happen unless the tokenizer is not monotonic; never overflow
            raise PromptTooLongError(
                f"The question does not fit the model's context of {ctx} tokens."
            )
        if len(kept) < len(passages):
            log.info("prompt: kept %d of %d passages in %d tokens", len(kept), len(passages), used)
        return BuiltPrompt(
            text=text,
            messages=final,
            passages=kept,
            history_turns=len(turns),
            prompt_tokens=used,
            answer_room=ctx - used - SAFETY_MARGIN,
            context_length=ctx,
        )

    def _fit_question(
        self, question: str, budget: int, make: Callable[[str], list[ChatMessage]]
    ) -> str:
        if self.count(make(question)) <= budget:
            return question
        if self.count(make("")) > budget:
            raise PromptTooLongError(
                "The model's context is too small to hold even the instructions; "
                "raise the context length in Settings."
            )
        # Keep the end of the question: that is where the actual ask usually is.
        words = question.split()
        lo, hi = 0, len(words)  # number of trailing words kept; lo always fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(make("… " + " ".join(words[-mid:]))) <= budget:
                lo = mid
            else:
                hi = mid - 1
        log.info("prompt: question cut to its last %d of %d words", lo, len(words))
        return "… " + " ".join(words[-lo:]) if lo else ""

    def _cut_passage(
        self, p: Passage, make: Callable[[Passage], list[ChatMessage]], budget: int
    ) -> Passage | None:
        """`p` shortened (by words) to the most that fits, or None when too little would."""
        words = p.text.split()
        lo, hi = 0, len(words)  # number of leading words kept
        while lo < hi:
            mid = (lo + hi + 1) // 2
            trial = replace(p, text=" ".join(words[:mid]) + " …", truncated=True)
            if self.count(make(trial)) <= budget:
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            return None
        cut = replace(p, text=" ".join(words[:lo]) + " …", truncated=True)
        if self.model.count_tokens(cut.text) < MIN_PASSAGE_TOKENS and lo < len(words):
            return None
        return cut
