"""Opening a library does not import LanceDB's REST namespace client, and the client still works
for whatever asks for it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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
