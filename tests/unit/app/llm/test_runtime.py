"""Model loading rules that need no weights: refused settings, clear errors, llama.cpp's log."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.llm.base import ModelError
from app.llm.llama_log import buffers_from_log
from app.llm.runtime import (
    check_offload_settings,
    load_model,
    resolve_model_path,
)
from app.settings import ModelSettings, OffloadSettings


@pytest.mark.parametrize("cache", ["q8_0", "q4_0"])
def test_a_quantized_kv_cache_without_flash_attention_is_refused(cache: str) -> None:
    offload = OffloadSettings(kv_cache_type=cache, flash_attention=False)
    with pytest.raises(ModelError, match=f"{cache} KV cache needs flash attention"):
        check_offload_settings(offload)
    with pytest.raises(ModelError, match="flash attention"):
        load_model(ModelSettings(), offload)
    check_offload_settings(OffloadSettings(kv_cache_type=cache, flash_attention=True))


def test_no_configured_model_means_the_bundled_default_and_a_notice() -> None:
    try:
        path, notice = resolve_model_path(ModelSettings(path=None))
    except ModelError as exc:
        pytest.skip(str(exc))
    assert path.suffix == ".gguf" and path.exists()
    assert notice is not None and "SmolLM2" in notice
    assert resolve_model_path(ModelSettings(path="/x/y.gguf")) == (Path("/x/y.gguf"), None)


def test_a_corrupt_or_missing_file_fails_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "broken-model.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 30)
    with pytest.raises(ModelError, match=r"broken-model\.gguf.*no weights"):
        load_model(ModelSettings(path=str(bad)), OffloadSettings())
    with pytest.raises(ModelError, match=r"missing\.gguf.*does not exist"):
        load_model(ModelSettings(path=str(tmp_path / "missing.gguf")), OffloadSettings())


def test_what_llama_cpp_reports_it_allocated_is_read_from_its_log() -> None:
    lines = [
        "load_tensors: offloading 30 repeating layers to GPU",
        "load_tensors: offloaded 31/31 layers to GPU",
        "load_tensors:        CUDA0 model buffer size =    69.59 MiB",
        "load_tensors:   CPU_Mapped model buffer size =    28.69 MiB",
        "llama_kv_cache:      CUDA0 KV buffer size =    90.00 MiB",
        "llama_context:      CUDA0 compute buffer size =   164.50 MiB",
        "llama_context:  CUDA_Host compute buffer size =     9.13 MiB",
    ]
    buffers, offloaded = buffers_from_log(lines)
    assert offloaded == 31
    assert buffers["CUDA0 model"] == pytest.approx(69.59)
    assert buffers["CUDA0 KV"] == 90.0 and buffers["CUDA0 compute"] == 164.5
    assert buffers["CPU_Mapped model"] == pytest.approx(28.69)
