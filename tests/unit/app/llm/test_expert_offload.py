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
