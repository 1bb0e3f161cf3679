"""The contract every chat model honours (the llama.cpp runtime and the fake used in tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


class ModelError(Exception):
    """A model that cannot be loaded or run; the message is fit to show to the user."""


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation in the model's chat format."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """How to sample an answer."""

    max_tokens: int = 512
    temperature: float = 0.2
    top_p: float = 0.95
    repeat_penalty: float = 1.1
    stop: Sequence[str] = field(default_factory=tuple)


class ChatModel(Protocol):
    """A loaded model: counts tokens with its own tokenizer, formats chats, streams text."""

    name: str
    context_length: int

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` with the model's own tokenizer (no BOS added)."""
        ...

    def format_chat(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt for `messages` with the model's chat template, ending where the
        assistant's reply begins."""
        ...

    def stream(
        self,
        prompt: str,
        params: GenerationParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        """Pieces of the reply as they are generated; stops soon after `cancel` is set, even
        during prompt evaluation."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...
