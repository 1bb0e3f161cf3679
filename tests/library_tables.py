"""A library's tables as plain values, to compare two libraries that must be equal (a resumed or
a cluster run against an uninterrupted single-process one)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ingest.library_location import Location
from ingest.store import LibraryStore


def library_tables(lib: Location) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
    """(every chunk row, the vectors' chunk ids, the vectors), in the tables' order."""
    chunks, vectors = LibraryStore(lib).table_snapshot()
    assert vectors is not None
    return (
        chunks.to_pylist(),
        vectors.column("chunk_id").to_pylist(),
        np.array(vectors.column("vector").to_pylist(), dtype=np.float32),
    )
