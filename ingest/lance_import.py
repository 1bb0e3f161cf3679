"""Importing LanceDB without paying for the REST client it never uses on a library.

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
