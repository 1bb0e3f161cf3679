"""FakeChatModel: a deterministic stand-in for a GGUF model, for tests of the layers above."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from app.llm.base import ChatMessage, GenerationParams, ModelError

# A "token" of the fake tokenizer: a run of word characters, or one other non-space character.
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

Reply = str | Callable[[str], str]


class FakeChatModel:
    """Scripted replies, a whitespace/punctuation tokenizer, a ChatML-like template.

    `replies` are used in turn (the last one repeats); a reply may be a function of the prompt,
    so a test can answer from what was put in the prompt. Every prompt given to `stream` is kept
    in `prompts`. `token_delay` (seconds) is slept between pieces, in small steps so that `cancel`
    is honoured within a few milliseconds. A prompt longer than `context_length` tokens raises
    ModelError, as a real model would.
    """

    def __init__(
        self,
        replies: Sequence[Reply] = ("This is a fake answer [1].",),
        *,
        name: str = "fake-model",
        context_length: int = 2048,
        token_delay: float = 0.0,
        prompt_delay: float = 0.0,
    ) -> None:
        if not replies:
            raise ValueError("FakeChatModel needs at least one reply")
        self.name = name
        self.context_length = context_length
        self.token_delay = token_delay
        self.prompt_delay = prompt_delay
        self.notice: str | None = None
        self.prompts: list[str] = []
        self.closed = False
        self._replies = list(replies)
        self._turn = 0

    # --- ChatModel -------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """The fake tokenizer's tokens: words and single punctuation marks."""
        return _TOKEN.findall(text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def format_chat(self, messages: Sequence[ChatMessage]) -> str:
        parts = [f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages]
        return "".join(parts) + "<|im_start|>assistant\n"

    def stream(
        self,
        prompt: str,
        params: GenerationParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        if self.closed:
            raise ModelError(f"{self.name} has been closed")
        n_prompt = self.count_tokens(prompt)
        if n_prompt + 1 > self.context_length:
            raise ModelError(
                f"The prompt has {n_prompt} tokens, more than the model's context of "
                f"{self.context_length}."
            )
        self.prompts.append(prompt)
        reply = self._next_reply(prompt)
        if _wait(self.prompt_delay, cancel):
            return
        # Pieces keep their leading whitespace so that "".join(pieces) == the reply.
        pieces = re.findall(r"\s*\S+", reply)
        budget = min(params.max_tokens, self.context_length - n_prompt)
        emitted = ""
        for piece in pieces[:budget]:
            if cancel is not None and cancel.is_set():
                return
            if _wait(self.token_delay, cancel):
                return
            emitted += piece
            for stop in params.stop:
                if stop and stop in emitted:
                    head = emitted[: emitted.index(stop)]
                    rest = head[len(emitted) - len(piece) :]
                    if rest:
                        yield rest
                    return
            yield piece

    def close(self) -> None:
        self.closed = True

    # --- helpers ---------------------------------------------------------------------------

    def _next_reply(self, prompt: str) -> str:
        reply = self._replies[min(self._turn, len(self._replies) - 1)]
        self._turn += 1
        return reply(prompt) if callable(reply) else reply


def _wait(seconds: float, cancel: threading.Event | None) -> bool:
    """Sleep `seconds`, waking early when cancelled; True when cancelled."""
    if seconds <= 0:
        return bool(cancel is not None and cancel.is_set())
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)
