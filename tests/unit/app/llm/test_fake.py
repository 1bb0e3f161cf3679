"""The fake chat model behaves like a model to the layers above: replies, counts, cancel."""

from __future__ import annotations

import threading
import time

import pytest

from app.llm.base import ChatMessage, GenerationParams, ModelError
from app.llm.fake import FakeChatModel


def test_replies_are_scripted_in_turn_and_the_last_repeats() -> None:
    model = FakeChatModel(["first answer", "second answer"])
    params = GenerationParams()
    assert "".join(model.stream("q1", params)) == "first answer"
    assert "".join(model.stream("q2", params)) == "second answer"
    assert "".join(model.stream("q3", params)) == "second answer"
    assert model.prompts == ["q1", "q2", "q3"]


def test_a_reply_can_be_computed_from_the_prompt() -> None:
    model = FakeChatModel([lambda prompt: f"echo: {prompt}"])
    assert "".join(model.stream("hello", GenerationParams())) == "echo: hello"


def test_counts_words_and_punctuation() -> None:
    model = FakeChatModel()
    assert model.count_tokens("Hello, world!") == 4
    assert model.count_tokens("") == 0


def test_format_chat_ends_where_the_assistant_reply_begins() -> None:
    model = FakeChatModel()
    prompt = model.format_chat([ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")])
    assert prompt.index("Be brief.") < prompt.index("Hi")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_max_tokens_and_stop_strings_end_the_reply() -> None:
    model = FakeChatModel(["one two three four five"])
    assert "".join(model.stream("q", GenerationParams(max_tokens=2))) == "one two"
    assert "".join(model.stream("q", GenerationParams(stop=("four",)))) == "one two three "


def test_a_prompt_longer_than_the_context_is_an_error() -> None:
    model = FakeChatModel(context_length=5)
    with pytest.raises(ModelError, match="context"):
        list(model.stream("a b c d e f g", GenerationParams()))


def test_cancel_stops_a_slow_reply_quickly() -> None:
    model = FakeChatModel(["word " * 100], token_delay=0.05)
    cancel = threading.Event()
    pieces = []
    start = time.monotonic()
    for piece in model.stream("q", GenerationParams(), cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            threading.Timer(0.01, cancel.set).start()
    assert time.monotonic() - start < 5.0  # wall clock; the piece count below is the real check
    assert 3 <= len(pieces) < 10


def test_cancel_during_prompt_delay_yields_nothing() -> None:
    model = FakeChatModel(prompt_delay=30.0)
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    start = time.monotonic()
    assert list(model.stream("q", GenerationParams(), cancel)) == []
    # Wall clock, generous for a busy machine, yet far inside the 30 s an ignored cancel takes.
    assert time.monotonic() - start < 5.0
