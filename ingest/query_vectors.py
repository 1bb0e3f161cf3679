"""Vectors embedded at query time for passages stage 2 has not reached yet: kept on disk, per
embedder and source, so later searches and stage 2 itself use them instead of embedding the
same passages again. Only stage 2 writes the vector table (in document order, behind its
checkpoints), so each passage's vector lands there exactly once; it takes these from here.

Layout: `<library>/query_vectors/<embedder key>/<source_id>/<name>.arrow`, one small Arrow file
per search that embedded something (chunk_id, vector as float32), written whole or not at all.
A source's folder goes when the source is ready, removed or re-embedded.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from ingest.records import source_of

log = logging.getLogger(__name__)

FOLDER = "query_vectors"


def embedder_key(name: str, dim: int) -> str:
    """A folder name for one embedder: vectors of another embedder are never looked at."""
    return hashlib.sha1(f"{name}\x00{dim}".encode()).hexdigest()[:12]


class QueryVectors:
    """The query-time vectors of one library, for one embedder (thread-safe)."""

    def __init__(self, library: Path | str, name: str, dim: int) -> None:
        self.root = Path(library) / FOLDER / embedder_key(name, dim)
        self.dim = dim
        self._lock = threading.Lock()
        # source id -> (the folder's listing when read, its vectors)
        self._read: dict[str, tuple[frozenset[str], dict[str, np.ndarray]]] = {}

    def save(self, chunk_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Keep these vectors (of any sources). A library that cannot be written to (read-only,
        full) just does not keep them."""
        by_source: dict[str, list[int]] = {}
        for i, chunk_id in enumerate(chunk_ids):
            by_source.setdefault(source_of(chunk_id), []).append(i)
        for source_id, rows in by_source.items():
            folder = self.root / source_id
            name = f"{uuid.uuid4().hex}.arrow"
            table = pa.table(
                {
                    "chunk_id": pa.array([chunk_ids[i] for i in rows], pa.string()),
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(np.asarray(vectors[rows], np.float32).ravel(), pa.float32()),
                        self.dim,
                    ),
                }
            )
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{name}.part"
                with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as w:
                    w.write_table(table)
                os.replace(tmp, folder / name)
            except OSError as exc:
                log.info("query-time vectors not kept in %s: %s", folder, exc)
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def lookup(self, chunk_ids: Iterable[str]) -> dict[str, np.ndarray]:
        """The kept vectors of these chunks (those never embedded at query time are absent)."""
        wanted: dict[str, list[str]] = {}
        for chunk_id in chunk_ids:
            wanted.setdefault(source_of(chunk_id), []).append(chunk_id)
        out: dict[str, np.ndarray] = {}
        for source_id, ids in wanted.items():
            held = self._source(source_id)
            out.update((c, held[c]) for c in ids if c in held)
        return out

    def _source(self, source_id: str) -> dict[str, np.ndarray]:
        folder = self.root / source_id
        try:
            names = frozenset(n for n in os.listdir(folder) if n.endswith(".arrow"))
        except OSError:
            return {}
        with self._lock:
            read = self._read.get(source_id)
        if read is not None and read[0] == names:
            return read[1]
        held = dict(read[1]) if read is not None else {}
        for name in names - (read[0] if read is not None else frozenset()):
            try:
                with pa.memory_map(str(folder / name)) as f:
                    table = ipc.open_file(f).read_all()
            except (OSError, pa.ArrowInvalid) as exc:
                log.info("query-time vectors %s unreadable: %s", folder / name, exc)
                continue
            column = table.column("vector").combine_chunks()
            vectors = column.values.to_numpy().reshape(len(column), self.dim)
            held.update(zip(table.column("chunk_id").to_pylist(), vectors.copy(), strict=True))
        with self._lock:
            self._read[source_id] = (names, held)
        return held


def drop_all(library: Path | str, source_id: str | None = None) -> None:
    """Forget the kept vectors of a source (or of every source), whatever their embedder."""
    root = Path(library) / FOLDER
    if source_id is None:
        shutil.rmtree(root, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        for key in os.listdir(root):
            shutil.rmtree(root / key / source_id, ignore_errors=True)
