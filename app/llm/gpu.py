"""The GPUs of this machine (NVML, when nvidia-ml-py is installed), its free RAM, and llama.cpp's
GPU support: what the fit estimate is made against."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from functools import cache

from ingest.lance_import import physical_memory_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML reports it right now."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int


def list_gpus() -> list[GpuInfo]:
    """The NVIDIA GPUs with their free memory; empty without nvidia-ml-py, a driver or a GPU."""
    try:
        import pynvml  # optional dependency (extra "gpu")
    except ImportError:
        log.debug("nvidia-ml-py is not installed: no GPU inventory")
        return []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError: no driver / no device; the library has no base class
        log.debug("NVML is unavailable: %s", exc)
        return []
    gpus: list[GpuInfo] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            if isinstance(name, bytes):
                name = name.decode("utf-8", errors="replace")
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(GpuInfo(index, str(name), int(memory.total), int(memory.free)))
    except Exception as exc:
        log.warning("reading the GPUs through NVML failed: %s", exc)
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return gpus


def ram_available_bytes() -> int | None:
    """RAM the model can take now: MemAvailable on Linux (free plus reclaimable cache), else the
    physical RAM where the platform says only that; None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return physical_memory_bytes()


@cache
def gpu_offload_supported() -> bool:
    """Whether the installed llama.cpp was built with a GPU backend (CUDA, Metal, Vulkan...)."""
    try:
        import llama_cpp

        from app.llm.backends import ensure_backends
    except ImportError:
        return False
    try:
        ensure_backends()
        return bool(llama_cpp.llama_supports_gpu_offload())
    except (AttributeError, OSError):
        return False
