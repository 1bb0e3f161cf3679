"""Prompt packing: the prompt never overflows the context, whatever the passages or the chat."""

from __future__ import annotations

import random

import pytest

from app.chat.prompt import SAFETY_MARGIN, PromptBuilder, PromptTooLongError, Turn
from app.chat.retrieval import Passage
from app.llm.fake import FakeChatModel
from ingest.documents import Locator

WORDS = ("lava", "ash", "crater", "magma", "eruption", "basalt", "tephra,", "vent.", "fissure;")


def passage(number: int, n_words: int, rng: random.Random) -> Passage:
    text = " ".join(rng.choice(WORDS) for _ in range(n_words))
    loc = Locator("wiki", f"Doc_{number}", f"Doc {number}", "History", number, 0, 0, len(text))
    return Passage(
        number=number, chunk_id=f"wiki:{number}:0", text=text, locator=loc, source_title="Wiki"
    )


def words(n: int, rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def test_short_inputs_go_in_whole_with_system_prompt_and_numbered_sources() -> None:
    rng = random.Random(1)
    model = FakeChatModel(context_length=4096)
    ps = [passage(1, 30, rng), passage(2, 30, rng)]
    built = PromptBuilder(model).build("Why do volcanoes erupt?", ps, [Turn("Hi?", "Hello.")])
    assert built.passages == ps
    assert built.history_turns == 1
    assert "[1] Doc 1 — History (Wiki)" in built.text and "[2] Doc 2" in built.text
    assert "using only facts from the sources" in built.text
    assert built.text.endswith("<|im_start|>assistant\n")  # the model's own template
    assert built.text.rindex("Why do volcanoes erupt?") > built.text.rindex("[2]")


@pytest.mark.parametrize("seed", range(60))
def test_prompt_never_overflows_the_context(seed: int) -> None:
    rng = random.Random(seed)
    ctx = rng.choice([256, 300, 512, 700, 1024, 2048, 4096])
    max_tokens = rng.choice([16, 64, 256, 512, 2048])
    model = FakeChatModel(context_length=ctx)
    ps = [
        passage(i, rng.choice([0, 5, 80, 400, 3000]), rng) for i in range(1, rng.randint(0, 12) + 1)
    ]
    history = [
        Turn(words(rng.randint(1, 300), rng), words(rng.randint(1, 900), rng))
        for _ in range(rng.randint(0, 10))
    ]
    question = words(rng.choice([3, 40, 600, 5000]), rng)

    built = PromptBuilder(model).build(question, ps, history, answer_tokens=max_tokens)

    assert model.count_tokens(built.text) == built.prompt_tokens
    answer = min(max_tokens, built.answer_room)
    assert answer >= min(max_tokens, 32)
    assert built.prompt_tokens + answer + SAFETY_MARGIN <= ctx
    # Passages keep their order and numbers; only the last kept one may be cut.
    assert [p.number for p in built.passages] == list(range(1, len(built.passages) + 1))
    assert all(not p.truncated for p in built.passages[:-1])
    # The fake model refuses a prompt that does not fit, as llama.cpp would.
    list(model.stream(built.text, model_params(answer)))


def model_params(max_tokens: int):
    from app.llm.base import GenerationParams

    return GenerationParams(max_tokens=max_tokens)


def test_long_passages_are_cut_not_lost_and_the_rest_dropped() -> None:
    rng = random.Random(7)
    model = FakeChatModel(context_length=1024)
    ps = [passage(1, 200, rng), passage(2, 2000, rng), passage(3, 50, rng)]
    built = PromptBuilder(model).build("What is basalt?", ps, answer_tokens=256)
    assert [p.number for p in built.passages] == [1, 2]
    assert built.passages[0].text == ps[0].text
    assert built.passages[1].truncated and built.passages[1].text.endswith("…")
    assert ps[2].text not in built.text


def test_oldest_history_turns_are_dropped_first() -> None:
    model = FakeChatModel(context_length=1024)
    history = [
        Turn(f"question {i} " + "word " * 40, f"answer {i} " + "word " * 40) for i in range(10)
    ]
    built = PromptBuilder(model).build("And now?", [], history, answer_tokens=256)
    assert 0 < built.history_turns < 10
    assert "question 9" in built.text
    assert "question 0 " not in built.text


def test_a_huge_question_keeps_its_end() -> None:
    model = FakeChatModel(context_length=512)
    question = "filler " * 2000 + "so what is magma?"
    built = PromptBuilder(model).build(question, [], answer_tokens=128)
    assert "what is magma?" in built.text
    assert built.prompt_tokens + 128 + SAFETY_MARGIN <= 512


def test_context_too_small_for_the_instructions_is_a_clear_error() -> None:
    model = FakeChatModel(context_length=64)
    with pytest.raises(PromptTooLongError, match="context"):
        PromptBuilder(model).build("What is lava?", [], answer_tokens=16)


def test_header_echo_drops_only_whole_header_lines_in_any_chunking() -> None:
    import random

    from app.chat.prompt import HeaderEcho
    from ingest.documents import Locator

    loc = Locator("wiki", "Malaria", "Malaria", "", 1, 0, 0, 10)
    p = Passage(1, "wiki:1:0", "Malaria is a disease.", loc, "Test Wiki")
    rng = random.Random(3)
    cases = {
        "Malaria (Test Wiki)\nMalaria is a disease [1].": "Malaria is a disease [1].",
        "[1] Malaria (Test Wiki)\nIt spreads.": "It spreads.",
        "Malaria is spread by mosquitoes [1].": "Malaria is spread by mosquitoes [1].",
        "Malaria\nA line.": "Malaria\nA line.",
        "One.\nMalaria (Test Wiki)\nTwo.": "One.\nTwo.",
        "Malaria (Test Wiki)": "",
    }
    for text, want in cases.items():
        for _ in range(20):
            echo = HeaderEcho([p])
            cuts = sorted(rng.sample(range(1, len(text)), min(4, len(text) - 1)))
            parts = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
            assert "".join(echo.feed(x) for x in parts) + echo.flush() == want, text
