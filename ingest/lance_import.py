"""Importing LanceDB without paying for the REST client it never uses on a library, and the
one Lance session (its index and metadata caches) every library opened in a process shares.

`import lancedb` imports `lance_namespace`, which re-exports the request and response models of
`lance_namespace_urllib3_client`. That package's `__init__` also imports every REST API class
(hundreds of pydantic-validated methods), which is 0.5-1 s of every process that opens a
library on a 2-core machine: the CLI's `search` and `ask`, each `ingest` run, the window's
start. Librarian reaches libraries through a folder or an object store, never through a REST
namespace, so the package's own `__init__` runs only when something first asks the package
itself for a name (its submodules, the models among them, import as usual).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from types import ModuleType
from typing import Any

REST_CLIENT = "lance_namespace_urllib3_client"


def defer_rest_client() -> None:
    """Put the REST client package in sys.modules with its `__init__` not yet run: its
    submodules import as usual, and the first name asked of the package runs the real
    `__init__`. A no-op once it is imported, or when it is not installed."""
    if REST_CLIENT in sys.modules:
        return
    spec = importlib.util.find_spec(REST_CLIENT)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(name: str) -> Any:  # PEP 562: called only for names the module lacks
        if name.startswith("__"):
            raise AttributeError(name)
        module.__dict__.pop("__getattr__", None)
        loader.exec_module(module)
        return getattr(module, name)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[REST_CLIENT] = module


def import_lancedb() -> ModuleType:
    """The lancedb module (see the module's docstring)."""
    defer_rest_client()
    import lancedb

    return lancedb


# What every library this process opens keeps of its indexes in memory, shared by all its
# LibraryStores (Lance's default, a cache per connection, is read again by each new store: the
# window opens one per question). Index cache: posting lists, the full-text index's per-passage
# lengths, vector partitions, as read. bench/scale.py's 10 M-passage library holds ~3.1 GiB of
# them once its few hundred searches are done; a cap below that costs searches that read again
# what was dropped (1 GiB: ~300 against ~220 ms a hybrid search there; 2 against 3 GiB: see
# index_cache_bytes). So the cap is an eighth of the computer's memory, from 2 GiB (also where
# the platform does not say) up to 6 GiB, Lance's own default: room for the chat model beside it.
INDEX_CACHE_SHARE = 8
INDEX_CACHE_MIN_BYTES = 2 << 30
INDEX_CACHE_MAX_BYTES = 6 << 30
METADATA_CACHE_BYTES = 256 << 20
_SESSION: list[Any] = []  # the process's Lance session, made on first use
_SESSION_LOCK = threading.Lock()


def lance_session() -> Any:
    """The Lance session (index and metadata caches) of every library opened in this process.

    A question in the window opens the library afresh; with a cache of its own each time, a
    search at 10 M passages read its indexes again (the full-text index's lengths of every
    passage, the vector index's partitions): a hybrid search took 593 ms p50 against 210 ms with
    this one session (bench/scale.py --only search)."""
    with _SESSION_LOCK:
        if not _SESSION:
            lancedb = import_lancedb()
            _SESSION.append(
                lancedb.Session(
                    index_cache_size_bytes=index_cache_bytes(),
                    metadata_cache_size_bytes=METADATA_CACHE_BYTES,
                )
            )
        return _SESSION[0]


def index_cache_bytes(physical: int | None = None) -> int:
    """The index cache's cap for a computer of `physical` bytes of memory (this one's when not
    given): an eighth of it, within INDEX_CACHE_MIN_BYTES and INDEX_CACHE_MAX_BYTES."""
    if physical is None:
        physical = physical_memory_bytes()
    if not physical:
        return INDEX_CACHE_MIN_BYTES
    return max(INDEX_CACHE_MIN_BYTES, min(INDEX_CACHE_MAX_BYTES, physical // INDEX_CACHE_SHARE))


def physical_memory_bytes() -> int | None:
    """The computer's memory, where the platform says (POSIX); None elsewhere (Windows)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def forget_lance_session() -> None:
    """Start the next library opened with empty caches: after a table was dropped (a table made
    again at the same place must not meet what the old one left in the cache: its versions
    start again at 1)."""
    with _SESSION_LOCK:
        _SESSION.clear()
