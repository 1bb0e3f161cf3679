"""Opening a library does not import LanceDB's REST namespace client, and the client still works
for whatever asks for it; the process's one Lance session caps its index cache by the computer's
memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from ingest.lance_import import REST_CLIENT


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_library_opens_and_searches_without_the_rest_client(tmp_path: Path) -> None:
    out = _run(
        f"""
        import sys
        from ingest.store import LibraryStore
        store = LibraryStore({str(tmp_path / "lib")!r})
        print(store.chunk_count(), store.search("anything", mode="keyword"))
        print(sorted(m for m in sys.modules if m.startswith("{REST_CLIENT}.api")))
        """
    )
    assert out.splitlines() == ["0 []", "[]"]


def test_the_rest_client_loads_in_full_when_asked_for() -> None:
    out = _run(
        f"""
        import sys
        from ingest.lance_import import import_lancedb
        import_lancedb()
        from lance_namespace import CreateTableRequest  # a model: a submodule, imported as usual
        assert "{REST_CLIENT}.api" not in sys.modules
        from {REST_CLIENT} import ApiClient, TableApi  # the package's own names: __init__ runs
        import {REST_CLIENT} as client
        print(CreateTableRequest.__name__, ApiClient.__name__, TableApi.__name__,
              client.__version__, "{REST_CLIENT}.api" in sys.modules)
        """
    )
    assert out.split()[:3] == ["CreateTableRequest", "ApiClient", "TableApi"]
    assert out.split()[-1] == "True"


def test_the_index_cache_grows_with_the_computers_memory_within_its_bounds() -> None:
    from ingest.lance_import import (
        INDEX_CACHE_MAX_BYTES,
        INDEX_CACHE_MIN_BYTES,
        index_cache_bytes,
    )

    gib = 1 << 30
    assert index_cache_bytes(8 * gib) == INDEX_CACHE_MIN_BYTES  # a small laptop keeps the floor
    assert index_cache_bytes(16 * gib) == 2 * gib
    assert index_cache_bytes(24 * gib) == 3 * gib  # this project's development machine
    assert index_cache_bytes(32 * gib) == 4 * gib
    assert index_cache_bytes(256 * gib) == INDEX_CACHE_MAX_BYTES  # never past Lance's default
    assert index_cache_bytes(0) == INDEX_CACHE_MIN_BYTES  # the platform did not say


def test_the_process_session_is_made_with_this_computers_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ingest.lance_import as li

    made: list[dict[str, int]] = []

    class Session:
        def __init__(self, **caps: int) -> None:
            made.append(caps)

    monkeypatch.setattr(li, "import_lancedb", lambda: SimpleNamespace(Session=Session))
    monkeypatch.setattr(li, "physical_memory_bytes", lambda: 48 << 30)
    monkeypatch.setattr(li, "_SESSION", [])
    li.lance_session()
    assert made == [
        {
            "index_cache_size_bytes": 6 << 30,
            "metadata_cache_size_bytes": li.METADATA_CACHE_BYTES,
        }
    ]
