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
# lengths, vector partitions, as read. bench/scale.py's 10 M-passage library fills it (2.28 GiB
# with the metadata after its searches); Lance's default cap is 6 GiB, and a smaller one lost the
# gain there (1 GiB: ~300 against ~220 ms a hybrid search).
INDEX_CACHE_BYTES = 2 << 30
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
                    index_cache_size_bytes=INDEX_CACHE_BYTES,
                    metadata_cache_size_bytes=METADATA_CACHE_BYTES,
                )
            )
        return _SESSION[0]


def forget_lance_session() -> None:
    """Start the next library opened with empty caches: after a table was dropped (a table made
    again at the same place must not meet what the old one left in the cache: its versions
    start again at 1)."""
    with _SESSION_LOCK:
        _SESSION.clear()
