"""Expert weights kept in RAM: llama.cpp's tensor buffer-type overrides, applied through
llama-cpp-python's low-level API and checked in llama.cpp's own load log, on a tiny MoE model
written here (a llama with 4 routed experts per layer) that the CPU build loads and runs."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from app.llm.base import GenerationParams
from app.llm.expert_offload import (
    BufferOverrides,
    amx_unsafe,
    cpu_buffer_type,
    expert_patterns,
    overrides_applied,
)
from app.llm.gguf_info import EXPERT_TENSOR_PATTERN, read_gguf_info
from app.settings import ModelSettings, OffloadSettings
from tests.gguf_models import write_tiny_model

llama_cpp = pytest.importorskip("llama_cpp")

from app.llm.runtime import load_model  # noqa: E402

EXPERT_TENSORS = ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")


@pytest.fixture(scope="module")
def tiny_moe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("moe") / "tiny-moe.gguf", layers=3, experts=4)


@pytest.fixture(scope="module")
def tiny_dense(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("dense") / "tiny-dense.gguf", layers=3)


def load(path: Path, cpu_moe: int, gpu_layers: int = -1):  # type: ignore[no-untyped-def]
    return load_model(
        ModelSettings(path=str(path), context_length=512),
        OffloadSettings(gpu_layers=gpu_layers, cpu_moe_layers=cpu_moe),
    )


def test_the_patterns_are_llama_cpps_own() -> None:
    assert expert_patterns(36, 0) == []
    assert expert_patterns(36, -1) == [EXPERT_TENSOR_PATTERN] == expert_patterns(36, 36)
    assert expert_patterns(36, 99) == [EXPERT_TENSOR_PATTERN]
    assert expert_patterns(36, 2) == [
        rf"blk\.0{EXPERT_TENSOR_PATTERN}",
        rf"blk\.1{EXPERT_TENSOR_PATTERN}",
    ]


def test_the_header_of_the_tiny_moe_says_what_is_an_expert(tiny_moe: Path) -> None:
    info = read_gguf_info(tiny_moe)
    assert info.is_moe and (info.expert_count, info.expert_used_count) == (4, 2)
    # three f16 expert stacks of 4 x 128 x 64 per layer
    assert info.expert_layer_bytes == (3 * 4 * 128 * 64 * 2,) * 3
    assert not read_gguf_info(write_tiny_model(tiny_moe.with_name("d.gguf"))).is_moe


def test_the_overrides_use_the_cpu_buffer_type_libllama_compares_against() -> None:
    function = llama_cpp.llama_cpp._lib.ggml_backend_cpu_buffer_type
    function.restype = ctypes.c_void_p
    assert cpu_buffer_type() == function()
    overrides = BufferOverrides(["a", "b"])
    assert [overrides.array[i].pattern for i in range(3)] == [b"a", b"b", None]
    assert overrides.array[0].buft == cpu_buffer_type()


def test_experts_of_the_first_layers_are_assigned_to_the_cpu_and_it_still_answers(
    tiny_moe: Path,
) -> None:
    model = load(tiny_moe, cpu_moe=2)
    try:
        overridden = model.stats.overridden
        expected = {f"blk.{i}.{t}.weight" for i in (0, 1) for t in EXPERT_TENSORS}
        assert set(overridden) == expected  # layer 2's experts are left where the layer goes
        assert set(overridden.values()) == {"CPU"}
        assert model.stats.expert_layers_in_ram == 2
        pieces = list(model.stream("hello", GenerationParams(max_tokens=6, temperature=0)))
        assert pieces and all(isinstance(p, str) for p in pieces)
    finally:
        model.close()


def test_all_experts_or_none(tiny_moe: Path) -> None:
    every = load(tiny_moe, cpu_moe=-1)
    none = load(tiny_moe, cpu_moe=0)
    try:
        assert len(every.stats.overridden) == 9 and every.stats.expert_layers_in_ram == 3
        assert none.stats.overridden == {} and none.stats.expert_layers_in_ram == 0
    finally:
        every.close()
        none.close()


def test_a_dense_model_gets_no_overrides(tiny_dense: Path) -> None:
    model = load(tiny_dense, cpu_moe=-1)
    try:
        assert model.stats.overridden == {} and model.stats.expert_layers_in_ram == 0
    finally:
        model.close()


def test_the_hook_is_gone_after_loading(tiny_moe: Path) -> None:
    load(tiny_moe, cpu_moe=-1).close()
    assert not llama_cpp.llama_cpp.llama_model_default_params().tensor_buft_overrides
    with overrides_applied(BufferOverrides(["x"])):
        assert llama_cpp.llama_cpp.llama_model_default_params().tensor_buft_overrides
    assert not llama_cpp.llama_cpp.llama_model_default_params().tensor_buft_overrides


@pytest.mark.parametrize("kind", ["dense", "gpt-oss"])
def test_the_kv_estimate_is_what_llama_cpp_allocates(
    kind: str, tiny_dense: Path, tmp_path: Path
) -> None:
    from app.llm.placement import kv_cache_bytes
    from tests.gguf_models import write_tiny_gpt_oss

    # gpt-oss slides a 32-token window on every other layer: those layers cache 768 cells
    # (window + one 512-token batch, padded to 256), the others the whole context.
    path = tiny_dense if kind == "dense" else write_tiny_gpt_oss(tmp_path / "oss.gguf", window=32)
    info = read_gguf_info(path)
    model = load_model(ModelSettings(path=str(path), context_length=2048), OffloadSettings())
    try:
        reported = model.stats.buffers_mib["CPU KV"]
        n_ctx = model.context_length  # the dense one was written for 512 tokens
        assert kv_cache_bytes(info, n_ctx) / 2**20 == pytest.approx(reported, abs=0.01)
        if kind == "gpt-oss":
            assert info.swa_layers == (True, False, True, False)
            assert kv_cache_bytes(info, 2048) < kv_cache_bytes(info, 2048, swa_full=True)
    finally:
        model.close()


def test_a_build_with_amx_loads_models_without_extra_buffer_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """llama.cpp's AMX buffer type crashes the first token on many AMX machines (the development
    machine among them): such a build loads weights without extra buffer types."""
    import llama_cpp

    defaults = llama_cpp.llama_cpp.llama_model_default_params
    assert defaults().use_extra_bufts
    with overrides_applied(None, extra_buffers=False):
        assert not llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts
    assert llama_cpp.llama_cpp.llama_model_default_params is defaults
    monkeypatch.delenv("LIBRARIAN_LLAMA_AMX", raising=False)
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: b"AVX2 = 1 | AMX_INT8 = 1 |")
    assert amx_unsafe()
    monkeypatch.setenv("LIBRARIAN_LLAMA_AMX", "1")
    assert not amx_unsafe()
    monkeypatch.delenv("LIBRARIAN_LLAMA_AMX")
    monkeypatch.setattr(llama_cpp, "llama_print_system_info", lambda: b"AVX2 = 1 | AMX_INT8 = 0 |")
    assert not amx_unsafe()
