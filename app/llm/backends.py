"""llama.cpp's compute backends. A portable build (packaging/install_llama.sh with
LIBRARIAN_LLAMA_BUILD=portable, and the bundle) keeps them as modules beside libllama — one CPU
backend per instruction-set level, CUDA when built with it — and llama.cpp loads none until asked:
this asks once, before anything looks for a device or loads a model. A native build has its
backends linked in, and this does nothing."""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: list[str] | None = None


def ensure_backends() -> list[str]:
    """The registered backends ("CPU", "CUDA", ...), loading the modules first when none is
    registered (a portable build). Safe to call often; the loading happens once."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return list(_loaded)
        lib_dir = library_folder()
        count = ggml_function("ggml_backend_reg_count", "ggml")
        count.argtypes, count.restype = [], ctypes.c_size_t
        if count() == 0:
            load_all = ggml_function("ggml_backend_load_all_from_path", "ggml")
            load_all.argtypes, load_all.restype = [ctypes.c_char_p], None
            load_all(str(lib_dir).encode())
            log.info("llama.cpp backends loaded from %s", lib_dir)
        get = ggml_function("ggml_backend_reg_get", "ggml")
        get.argtypes, get.restype = [ctypes.c_size_t], ctypes.c_void_p
        name = ggml_function("ggml_backend_reg_name", "ggml")
        name.argtypes, name.restype = [ctypes.c_void_p], ctypes.c_char_p
        _loaded = [(name(get(i)) or b"?").decode("utf-8", errors="replace") for i in range(count())]
        if not _loaded:
            log.warning("no llama.cpp backend could be loaded from %s", lib_dir)
        return list(_loaded)


def is_portable_build() -> bool:
    """Whether the installed llama.cpp keeps its CPU backend as run-time modules."""
    return any(library_folder().glob("*ggml-cpu-*"))


def library_folder() -> Path:
    import llama_cpp

    return Path(llama_cpp.__file__).parent / "lib"


def ggml_function(name: str, library: str) -> Any:
    """A ggml C function as libllama itself links it.

    A wheel cannot hold symbolic links, so llama_cpp/lib has libggml.so, libggml.so.0, ... as
    separate copies; opening one by another name would give a second ggml with its own backend
    registry and its own CPU buffer type. Looking the symbol up through libllama's handle finds
    the copy libllama uses (its dependencies are searched); where the platform does not search
    dependencies (Windows, where each DLL exists once), the library is opened by name."""
    import llama_cpp.llama_cpp as low_level

    try:
        return getattr(low_level._lib, name)
    except AttributeError:
        from llama_cpp._ctypes_extensions import load_shared_library

        return getattr(load_shared_library(library, library_folder()), name)
