"""Every file in ../shared/fixtures in one ingest: damaged archives fail alone, the rest land."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.pipeline import ProgressEvent, SourceResult, ingest_paths
from ingest.readers import open_source
from ingest.store import LibraryStore

pytestmark = pytest.mark.real


def test_all_fixtures_in_one_call(shared_fixtures: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    events = list(ingest_paths([shared_fixtures], lib, keyword_only=True, workers=1))
    results = {Path(e.path).name: e for e in events if isinstance(e, SourceResult)}
    assert any(isinstance(e, ProgressEvent) for e in events)

    invalid = sorted(p.name for p in (shared_fixtures / "zim").glob("invalid.*.zim"))
    assert invalid
    for name in invalid:
        assert results[name].status == "failed", results[name]
        assert results[name].line.startswith(f"{name}: ") and results[name].reason

    good = [
        p
        for p in sorted(shared_fixtures.rglob("*"))
        if p.suffix in (".zim", ".epub", ".zimaa") and not p.name.startswith("invalid.")
    ]
    identities = set()
    for path in good:
        assert results[path.name].status in ("added", "already"), results[path.name]
        reader = open_source(path)
        identities.add(reader.info().identity)
        reader.close()

    store = LibraryStore(lib)  # still opens
    landed = {r.identity for r in store.sources() if r.stage == "keyword"}
    assert landed == identities
    for rec in store.sources():
        if rec.stage == "failed":
            assert store.chunk_count(rec.source_id) == 0
        else:
            assert rec.chunks == store.chunk_count(rec.source_id) > 0
    assert store.search("Devil", k=3, mode="keyword")

    # a second run adds nothing
    again = [
        e
        for e in ingest_paths([shared_fixtures], lib, keyword_only=True, workers=1)
        if isinstance(e, SourceResult)
    ]
    assert {e.status for e in again if not Path(e.path).name.startswith("invalid.")} <= {
        "already",
        "skipped",
    }
    assert LibraryStore(lib).chunk_count() == store.chunk_count()
