"""Keeping a mixture-of-experts model's expert weights in system RAM while the rest of each layer
runs on the GPU: llama.cpp's tensor buffer-type overrides (what `--n-cpu-moe N` and `-ot
exps=CPU` set), reached through llama-cpp-python's low-level API because its `Llama(...)` does not
take them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator
from typing import Any

from app.llm.backends import ggml_function
from app.llm.base import ModelError
from app.llm.gguf_info import EXPERT_TENSOR_PATTERN

# The model params are built inside Llama.__init__; the hook below is process-wide for the
# moment a model is constructed, so two constructions never overlap.
_construct_lock = threading.Lock()


def expert_patterns(n_layers: int, cpu_moe: int) -> list[str]:
    """The tensor-name patterns that keep the routed experts of the first `cpu_moe` layers
    (-1 or at least `n_layers`: all) in RAM, as llama.cpp's own options write them."""
    if cpu_moe == 0 or n_layers <= 0:
        return []
    if cpu_moe < 0 or cpu_moe >= n_layers:
        return [EXPERT_TENSOR_PATTERN]
    return [rf"blk\.{layer}{EXPERT_TENSOR_PATTERN}" for layer in range(cpu_moe)]


class _BufferTypeOverride(ctypes.Structure):
    # struct llama_model_tensor_buft_override { const char * pattern; ggml_backend_buffer_type_t
    # buft; } (llama.h); a list of them ends with a NULL pattern.
    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


class BufferOverrides:
    """A NULL-terminated C array of overrides sending every matching tensor to the CPU buffer
    type. llama.cpp reads it while loading; the loaded model keeps a reference to this object
    anyway, so the strings and the array outlive every use."""

    def __init__(self, patterns: list[str]) -> None:
        import llama_cpp

        limit = int(llama_cpp.llama_max_tensor_buft_overrides())
        if len(patterns) >= limit:
            raise ModelError(
                f"Keeping the experts of {len(patterns)} layers in RAM needs more tensor "
                f"overrides than this llama.cpp accepts ({limit - 1})."
            )
        self.patterns = list(patterns)
        self._encoded = [p.encode("ascii") for p in self.patterns]
        cpu = cpu_buffer_type()
        self.array = (_BufferTypeOverride * (len(self._encoded) + 1))()
        for index, pattern in enumerate(self._encoded):
            self.array[index].pattern = pattern
            self.array[index].buft = cpu
        self.array[len(self._encoded)].pattern = None
        self.array[len(self._encoded)].buft = None

    @property
    def pointer(self) -> int:
        return ctypes.addressof(self.array)


def cpu_buffer_type() -> int:
    """llama.cpp's CPU buffer type, the one its loader compares overrides against
    (ggml_backend_cpu_buffer_type of the ggml-base libllama links)."""
    function = ggml_function("ggml_backend_cpu_buffer_type", "ggml-base")
    function.argtypes = []
    function.restype = ctypes.c_void_p
    value = function()
    if not value:
        raise ModelError("llama.cpp did not return its CPU buffer type.")
    return int(value)


def amx_unsafe() -> bool:
    """Whether llama.cpp would run weights through its AMX buffer type: a build made with AMX
    (a native build on a Sapphire Rapids or later Xeon) crashes at the first token on many of
    those machines (llama.cpp #20824: virtual machines, sandboxes; measured here: SmolLM2
    killed by SIGSEGV in decode). LIBRARIAN_LLAMA_AMX=1 keeps AMX for a machine where it works."""
    if os.environ.get("LIBRARIAN_LLAMA_AMX") == "1":
        return False
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info()
    except (ImportError, AttributeError, OSError):
        return False
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    return "AMX_INT8 = 1" in text


@contextlib.contextmanager
def overrides_applied(
    overrides: BufferOverrides | None, extra_buffers: bool = True
) -> Iterator[None]:
    """While open, models constructed with llama-cpp-python's `Llama(...)` get `overrides`,
    and no extra buffer types (weight repacking, AMX) unless `extra_buffers`.

    Llama.__init__ starts from `llama_model_default_params()` and sets the fields it knows;
    `tensor_buft_overrides` and `use_extra_bufts` are not among them, so defaults that already
    carry them reach llama_model_load_from_file unchanged."""
    if overrides is None and extra_buffers:
        with _construct_lock:
            yield
        return
    import llama_cpp.llama_cpp as low_level

    original = low_level.llama_model_default_params

    def with_overrides() -> Any:
        params = original()
        if overrides is not None:
            params.tensor_buft_overrides = overrides.pointer
        if not extra_buffers:
            params.use_extra_bufts = False
        return params

    with _construct_lock:
        low_level.llama_model_default_params = with_overrides
        try:
            yield
        finally:
            low_level.llama_model_default_params = original
