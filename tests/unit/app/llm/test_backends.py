"""llama.cpp's backends as the runtime finds them: the native build has the CPU backend linked
in; a portable build's modules are loaded from llama_cpp/lib (measured in bench/llama_build.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from app.llm.backends import ensure_backends, ggml_function, is_portable_build  # noqa: E402


def test_the_cpu_backend_is_registered() -> None:
    backends = ensure_backends()
    assert "CPU" in backends
    assert ensure_backends() == backends  # loaded once


def test_ggml_is_reached_through_the_copy_libllama_uses() -> None:
    import ctypes

    import llama_cpp

    mine = ggml_function("ggml_backend_reg_count", "ggml")
    mine.restype = ctypes.c_size_t
    theirs = llama_cpp.llama_cpp._lib.ggml_backend_reg_count
    theirs.restype = ctypes.c_size_t
    assert mine() == theirs() >= 1
    assert isinstance(is_portable_build(), bool)
