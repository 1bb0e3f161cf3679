"""The library store: a LanceDB folder holding sources, their text chunks and their vectors.

Schema (one LanceDB table each):

- `meta` (key, value): schema version; the embedder's name and dimension once any vector has been
  written (a store built with one embedder refuses another: `EmbedderMismatch`); the number of
  vectors when the vector index was last trained.
- `sources`: one row per source file — source_id (from the identity), path, kind ("zim"/"epub"),
  title, identity (ZIM UUID or EPUB content hash), size, language, author, documents, chunks,
  embedded, stage, error, embedder, added_at, and two resume checkpoints: `read_ordinal` (every
  document with a smaller ordinal has all its chunks in `chunks`) and `embed_ordinal` (every chunk
  of a document with a smaller ordinal has its vector in `vectors`).
  Stages: "reading" (stage 1 running; invisible to search) → "keyword" (all text written and
  full-text indexed) → "embedding" (vectors being filled) → "ready"; or "failed" (error set,
  no chunks, kept so the user sees what went wrong).
- `chunks`: chunk_id ("{source_id}:{ordinal}:{chunk_index}"), source_id, doc_id, title, section,
  ordinal, chunk_index, start, end, text. Native full-text (BM25) index on `text`.
- `vectors`: chunk_id, source_id, ordinal, vector (float16, unit length; libraries from before
  VECTOR_ITEM_TYPE hold float32 until `librarian compact` halves them).

Vectors live in a table of their own so that stage 2 *appends* rows instead of updating the
chunks table: a Lance update rewrites every fragment it touches, so filling a vector column in
place would rewrite the whole text of a Wikipedia-sized table (tens of GB) once per batch. Two
append-only tables joined on chunk_id at query time cost one small lookup per search instead.

Writes are atomic per call (a Lance commit), and every checkpoint is written *after* the rows it
covers, so after a crash anything past a checkpoint is deleted and re-done (see
ingest.pipeline). One writer at a time holds `writer.lock` in the store folder; readers never
lock and always see the latest committed version (read_consistency_interval = 0).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import shutil
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa

from ingest import indexes as ix
from ingest.documents import Locator
from ingest.errors import EmbedderMismatch, StoreError
from ingest.events import VISIBLE_STAGES, SourceStage
from ingest.file_names import real_path, shown, stored_path
from ingest.indexes import IndexWork
from ingest.terms import content_words

if TYPE_CHECKING:
    from ingest.embedding import Embedder
    from ingest.readers import SourceReader

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
SearchMode = Literal["hybrid", "vector", "keyword"]

# Exact (flat) vector search costs about 1.6 ms per thousand 384-d vectors on the 2-core
# development machine: median of 20 queries with a source filter, through LanceDB, on clustered
# unit vectors — 10k: 15 ms, 50k: 76 ms, 100k: 158 ms, 200k: 345 ms, 400k: 810 ms. Past ~50k
# vectors a hybrid search (vector + BM25 + chunk lookup) stops feeling instant, so the IVF index
# is built from there on. Measured with the script in bench/ingest.py (`--vector-search`).
VECTOR_INDEX_THRESHOLD = 50_000
# The vector index: IVF with RaBitQ codes of VECTOR_RQ_BITS bits per dimension (192 bytes per
# 384-d vector), probing an eighth of the partitions (at least 20), the best
# VECTOR_REFINE_ROWS[kind] candidates re-ranked with the exact vectors whatever the limit.
# IVF_PQ (48 one-byte codes) was the first choice; its distances were too coarse at scale:
# recall@10 at 10 M vectors (1,024 partitions, bench/scale.py, 60 queries) 0.90 with 400 rows
# re-ranked, 0.94 with 800, 0.97 with 1,600, at 32, 64 or 128 probes alike — and the 800
# random reads from a 15 GB vector file were most of its 66 ms. RaBitQ at 4 bits: recall@10
# 0.998 with 40 rows re-ranked over 1 M vectors (PQ: 0.88 with 100, 0.98 with 400), and at
# 10 M 1.00 with 40 (p50 34 ms with the index in memory and the raw vectors not) or 100 (40 ms);
# at 100 k an eighth of the partitions gave 0.995, a sixteenth 0.957. A library whose index
# predates this keeps its IVF_PQ settings until maintenance rebuilds it as IVF_RQ.
# Stored vectors are float16: half of float32's 1,536 bytes per 384-d passage. Rounding moves a
# unit vector's cosine to another by ~1e-4, far below the gaps between neighbours (real MiniLM
# neighbours sit 0.01-0.1 apart); at 10 M passages the vector file then fits in the memory a
# float32 one overflowed (15 GB -> 7.7 GB), which is what random re-rank reads needed.
VECTOR_ITEM_TYPE = pa.float16()
VECTOR_INDEX_KIND = "IVF_RQ"
VECTOR_RQ_BITS = 4
VECTOR_REFINE_ROWS = {"IVF_RQ": 40, "IVF_PQ": 800}
# Hybrid ranking: BM25 (as a share of the best BM25 among the candidates), cosine to the query
# and the share of the query's content words the passage holds (with its title and section).
# Weights chosen on bench/answers.py's question sets — hit@1 / hit@5 there: articles 0.96 /
# 1.00 (BM25 0.74 / 0.96, vectors 0.88 / 0.98, the former rank fusion 0.82 / 0.97); book
# passages 0.76 / 0.91 (BM25 0.60 / 0.78, vectors 0.55 / 0.65, rank fusion 0.62 / 0.82).
HYBRID_BM25 = 0.5
HYBRID_COSINE = 1.5
HYBRID_COVERAGE = 1.0
# Each of the keyword and vector searches gives HYBRID_DEPTH * k candidates (at least 40). On
# the question sets above 2, 3 and 4 gave the same hit@1 / hit@5; 2 reads half the rows.
HYBRID_DEPTH = 2
HYBRID_EMBED_MISSING = 8  # candidates without a vector embedded at query time, at most
TIE_MARGIN = 10  # extra keyword hits fetched so passages tied at the cut are chosen by id
# Unindexed vectors a query still compares one by one (~1.6 ms per thousand): past this, only
# the indexed ones are searched until maintenance indexes the rest.
FLAT_VECTOR_SEARCH_MAX = 100_000

# Hybrid search runs its keyword and vector halves side by side (shared by every store).
_SEARCHES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="library-search")

# The chunk columns in table order; the pipeline builds its batches in this order too.
CHUNK_COLUMNS = [
    "chunk_id",
    "source_id",
    "doc_id",
    "title",
    "section",
    "ordinal",
    "chunk_index",
    "start",
    "end",
    "text",
]


_READ_COLUMNS = [c for c in CHUNK_COLUMNS if c != "source_id"]  # see LibraryStore._chunk_rows


def chunks_schema() -> pa.Schema:
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("source_id", pa.string()),
            ("doc_id", pa.string()),
            ("title", pa.string()),
            ("section", pa.string()),
            ("ordinal", pa.int64()),
            ("chunk_index", pa.int32()),
            ("start", pa.int32()),
            ("end", pa.int32()),
            ("text", pa.string()),
        ]
    )


def vectors_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("source_id", pa.string()),
            ("ordinal", pa.int64()),
            ("vector", pa.list_(VECTOR_ITEM_TYPE, dim)),
        ]
    )


@dataclass(frozen=True)
class SourceRecord:
    """One source in the library, as the `sources` table holds it."""

    source_id: str
    path: str
    kind: str
    title: str
    identity: str
    size: int = 0
    language: str = ""
    author: str = ""
    description: str = ""
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    stage: SourceStage = "reading"
    error: str = ""
    embedder: str = ""
    added_at: str = ""
    read_ordinal: int = 0
    embed_ordinal: int = 0
    damaged: int = 0  # documents skipped because their data is damaged
    damaged_names: str = ""  # the first DAMAGED_NAMES_KEPT of them, "name: reason" per line

    @property
    def visible(self) -> bool:
        """Whether search sees this source (its text is fully written and indexed)."""
        return self.stage in VISIBLE_STAGES

    @property
    def damaged_list(self) -> list[str]:
        return [line for line in self.damaged_names.split("\n") if line]

    @property
    def name(self) -> str:
        return Path(self.path).name


def _record(row: dict[str, Any]) -> SourceRecord:
    """A sources row as a record (columns an older library lacks take their defaults)."""
    values = {f.name: row.get(f.name) for f in fields(SourceRecord)}
    record = SourceRecord(**{k: v for k, v in values.items() if v is not None})
    return replace(record, path=real_path(record.path), identity=real_path(record.identity))


def _storable(values: dict[str, Any]) -> dict[str, Any]:
    """Sources values as the table can hold them, whatever bytes a file name has: the path and
    the identity kept reversibly, every other text shown readably."""
    return {
        k: (stored_path(v) if k in ("path", "identity") else shown(v)) if isinstance(v, str) else v
        for k, v in values.items()
    }


def sources_schema() -> pa.Schema:
    types = {int: pa.int64(), "int": pa.int64()}
    return pa.schema(
        [(f.name, types.get(f.type, pa.string())) for f in fields(SourceRecord)]  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Hit:
    """A search result: a chunk's text, its score and where it lives."""

    chunk_id: str
    text: str
    score: float
    locator: Locator
    source_title: str
    source_kind: str
    source_path: str


def source_of(chunk_id: str) -> str:
    """The source id a chunk id starts with ("{source_id}:{ordinal}:{chunk_index}")."""
    return chunk_id.partition(":")[0]


def source_id_for(identity: str) -> str:
    """A short stable id from a source's identity (same file, same id, in every run)."""
    return hashlib.sha1(identity.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(_quote(v) for v in values) + ")"


class WriterLock:
    """An advisory lock file: one writing process (or thread) per store at a time.

    The OS releases it when the holder dies, even by kill -9, so a crash never leaves the
    library locked.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def acquire(self, timeout: float | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+b")  # noqa: SIM115 - held open for the lock's lifetime
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                _lock_file(fh)
                self._fh = fh
                return
            except OSError:
                if deadline is not None and time.monotonic() >= deadline:
                    fh.close()
                    raise StoreError(
                        "The library is being updated by another Librarian process; "
                        "try again when it has finished."
                    ) from None
                time.sleep(0.05)

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                _unlock_file(self._fh)
            self._fh.close()
            self._fh = None


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(fh: Any) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]

    def _unlock_file(fh: Any) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]

else:
    import fcntl

    def _lock_file(fh: Any) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_file(fh: Any) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class LibraryStore:
    """The library on disk: search for everyone, writes for one writer at a time.

    `embedder` is needed for vector and hybrid search and for stage 2; without one, hybrid
    search falls back to keywords. Opening a store whose vectors came from another embedder
    raises EmbedderMismatch unless `check_embedder=False` (used to rebuild the vectors).
    """

    def __init__(
        self,
        path: Path | str,
        embedder: Embedder | None = None,
        *,
        check_embedder: bool = True,
    ) -> None:
        import lancedb

        self.path = Path(path)
        self.embedder = embedder
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._db = lancedb.connect(str(self.path), read_consistency_interval=timedelta(0))
            self._meta = self._db.create_table(
                "meta",
                schema=pa.schema([("key", pa.string()), ("value", pa.string())]),
                exist_ok=True,
            )
            if "sources" in self._table_names():  # maybe from an earlier version: migrate
                self._sources = self._db.open_table("sources")
                self._add_new_source_columns()
            else:
                self._sources = self._db.create_table(
                    "sources", schema=sources_schema(), exist_ok=True
                )
            self._chunks = self._db.create_table("chunks", schema=chunks_schema(), exist_ok=True)
        except OSError as exc:
            raise StoreError(f"The library at {self.path} cannot be opened: {exc}") from exc
        self._vectors: Any = None
        self._unindexed_cache: tuple[int, bool] | None = None  # (vectors version, too many)
        self._last_query: tuple[Any, np.ndarray] | None = None  # (embedder and query, vector)
        # meta and sources as last read, by table version: a search reads them several times
        # (4-5 ms a read; asking a table's version costs 0.3 ms)
        self._meta_read: tuple[int, dict[str, str]] | None = None
        self._sources_read: tuple[int, list[SourceRecord]] | None = None
        self._lock = WriterLock(self.path / "writer.lock")
        self._lock_depth = 0
        if embedder is not None and check_embedder:
            self.check_embedder(embedder)

    def _add_new_source_columns(self) -> None:
        """Give a library made by an earlier version the sources columns added since (with
        their defaults): its records read and update like new ones."""
        have = set(self._sources.schema.names)
        missing = [f for f in sources_schema() if f.name not in have]
        if not missing:
            return
        try:
            self._sources.add_columns(
                {f.name: "0" if pa.types.is_integer(f.type) else "''" for f in missing}
            )
        except Exception as exc:  # noqa: BLE001 - another process added them, or read-only
            log.warning("could not add %s to the library's sources table: %s",
                        ", ".join(f.name for f in missing), exc)  # fmt: skip

    # ----------------------------------------------------------------- meta and embedder

    def meta(self) -> dict[str, str]:
        version = self._meta.version
        if self._meta_read is None or self._meta_read[0] != version:
            rows = self._meta.search().limit(None).to_list()
            self._meta_read = (version, {r["key"]: r["value"] for r in rows})
        return dict(self._meta_read[1])

    def _set_meta(self, **values: str) -> None:
        keys = list(values)
        self._meta.delete(f"key IN {_in_list(keys)}")
        self._meta.add([{"key": k, "value": v} for k, v in values.items()])

    def recorded_embedder(self) -> tuple[str, int] | None:
        """(name, dim) of the embedder this store's vectors were made with, if any."""
        meta = self.meta()
        if "embedder" not in meta:
            return None
        return meta["embedder"], int(meta.get("embedder_dim", "0"))

    def check_embedder(self, embedder: Embedder) -> None:
        """Raise EmbedderMismatch when the store's vectors come from another embedder."""
        recorded = self.recorded_embedder()
        if recorded is None or recorded == (embedder.name, embedder.dim):
            return
        name, dim = recorded
        raise EmbedderMismatch(
            f"This library's vectors were made with the embedder '{name}' ({dim} dimensions), "
            f"not '{embedder.name}' ({embedder.dim}); mixing them would give wrong results. "
            f"Re-embed every source with the new one by running "
            f"`librarian ingest --rebuild-vectors` (keyword search keeps working meanwhile), "
            f"or go back to '{name}'."
        )

    def passage_tokens(self, asked: int | None = None) -> int:
        """The passage size (in estimated tokens) of this library, recorded the first time.

        Every source of a library is cut the same way, and a source half-read must go on the
        way it started, so the size is chosen once: `asked` (or the default) for a new library;
        200 for a library from before the size was recorded, which is what it was built with.
        """
        from ingest.chunking import DEFAULT_MAX_TOKENS

        recorded = self.meta().get("passage_tokens")
        if recorded is None:
            size = asked or (200 if self.sources() else DEFAULT_MAX_TOKENS)
            self._set_meta(passage_tokens=str(size))
            return size
        if asked is not None and asked != int(recorded):
            raise StoreError(
                f"This library's passages are cut at {recorded} tokens; a library keeps one "
                f"passage size (start a new library to try {asked})."
            )
        return int(recorded)

    def reset_vectors(self, embedder: Embedder) -> None:
        """Drop every vector and record `embedder`; sources go back to stage "embedding"."""
        with self.writing():
            if "vectors" in self._table_names():
                self._db.drop_table("vectors")
            self._vectors = None
            self._set_meta(embedder=embedder.name, embedder_dim=str(embedder.dim))
            self._meta.delete("key = 'vector_index_rows'")
            for rec in self.sources():
                if rec.stage in ("embedding", "ready"):
                    self.update_source(
                        rec.source_id,
                        stage="embedding",
                        embedded=0,
                        embed_ordinal=0,
                        embedder=embedder.name,
                    )
            self.embedder = embedder

    def _table_names(self) -> list[str]:
        return list(self._db.list_tables().tables)

    def _vector_table(self, create_dim: int | None = None) -> Any:
        if self._vectors is None:
            if "vectors" in self._table_names():
                self._vectors = self._db.open_table("vectors")
            elif create_dim is not None:
                self._vectors = self._db.create_table(
                    "vectors", schema=vectors_schema(create_dim), exist_ok=True
                )
        return self._vectors

    # ----------------------------------------------------------------------- writer lock

    @contextlib.contextmanager
    def writing(self, timeout: float | None = 30.0) -> Iterator[None]:
        """Hold the store's writer lock (re-entrant within this object)."""
        if self._lock_depth == 0:
            self._lock.acquire(timeout)
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                self._lock.release()

    def _require_writer(self) -> None:
        if self._lock_depth == 0:
            raise RuntimeError("store writes need `with store.writing():`")

    # --------------------------------------------------------------------------- sources

    def sources(self) -> list[SourceRecord]:
        """Every source, failed ones included, oldest first."""
        version = self._sources.version
        if self._sources_read is None or self._sources_read[0] != version:
            rows = self._sources.search().limit(None).to_list()
            records = [_record(r) for r in rows]
            self._sources_read = (version, sorted(records, key=lambda r: (r.added_at, r.source_id)))
        return list(self._sources_read[1])

    def source(self, source_id: str) -> SourceRecord | None:
        rows = (
            self._sources.search().where(f"source_id = {_quote(source_id)}").limit(None).to_list()
        )
        return _record(rows[0]) if rows else None

    def find_source(self, name: str) -> SourceRecord | None:
        """A source by id, identity, path, file name or title (case-insensitive).

        Raises StoreError when a name or title fits more than one source.
        """
        records = self.sources()
        try:
            resolved = str(Path(name).expanduser().resolve())
        except OSError:
            resolved = name
        for test in (
            lambda r: name in (r.source_id, r.identity),
            lambda r: r.path in (name, resolved),
            lambda r: r.name.lower() == name.lower(),
            lambda r: r.title.lower() == name.lower(),
        ):
            found = [r for r in records if test(r)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                listing = ", ".join(f"{r.source_id} ({r.path})" for r in found)
                raise StoreError(f"'{name}' fits several sources: {listing}; use an id.")
        return None

    def find_identity(self, identity: str) -> SourceRecord | None:
        wanted = _quote(stored_path(identity))
        rows = self._sources.search().where(f"identity = {wanted}").limit(None).to_list()
        return _record(rows[0]) if rows else None

    def add_source(self, record: SourceRecord) -> SourceRecord:
        self._require_writer()
        if not record.added_at:
            record = replace(record, added_at=datetime.now(UTC).isoformat(timespec="seconds"))
        self._sources.delete(f"source_id = {_quote(record.source_id)}")
        self._sources.add([_storable(asdict(record))])
        return record

    def update_source(self, source_id: str, **values: Any) -> None:
        self._require_writer()
        self._sources.update(where=f"source_id = {_quote(source_id)}", values=_storable(values))

    def remove(self, name_or_id: str) -> SourceRecord:
        """Remove a source with all its chunks and vectors; returns what was removed."""
        record = self.find_source(name_or_id)
        if record is None:
            raise StoreError(f"No source '{name_or_id}' in the library.")
        with self.writing():
            # Hide it first so a crash half-way never leaves a visible half-source.
            self.update_source(record.source_id, stage="reading")
            self.delete_chunks(record.source_id)
            self._sources.delete(f"source_id = {_quote(record.source_id)}")
            self.drop_cache(record.source_id)
            # A source's rows fill fragments of their own, which the delete drops whole: their
            # files go now (what shares fragments with other sources waits for `compact`).
            self._drop_dead_index_segments()
            for name in ("chunks", "vectors"):
                if self._table_path(name).is_dir():
                    ix.cleanup(self._table_path(name), timedelta(0))
        return record

    def _drop_dead_index_segments(self) -> None:
        """Drop the index segments of both tables that cover only rows deleted since."""
        for name in ("chunks", "vectors"):
            if self._table_path(name).is_dir():
                ix.drop_dead_segments(self._table_path(name))
        self._checkout_latest()

    def reclaim(self, cancel: threading.Event | None = None) -> Iterator[IndexWork]:
        """Give the disk back all that removed sources and old versions still hold: float32
        vectors rewritten as float16 (libraries from before VECTOR_ITEM_TYPE), compaction of
        fragments with deleted rows, indexes brought up to date, old versions' files deleted at
        once (`librarian compact`). Needs the writer lock."""
        self._require_writer()
        if self._vector_table() is not None and self._vector_item_type() != VECTOR_ITEM_TYPE:
            self.mark_maintenance_due()  # a stop after the rewrite leaves the indexes to build
            yield from ix.rewrite_list_items(
                self._table_path("vectors"),
                "vector",
                VECTOR_ITEM_TYPE,
                what="halving vectors",
                unit="vectors",
                cancel=cancel,
            )
            self._vectors = None  # reopened with the new schema
        yield from self.maintenance(cancel, cleanup_after=timedelta(0))

    def disk_bytes(self) -> int:
        """Bytes the library's files take on disk."""
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    # ---------------------------------------------------------------------------- caches

    def cache_path(self, source_id: str, suffix: str) -> Path:
        """A file for work in progress on a source (e.g. a ZIM's saved reading order)."""
        return self.path / "cache" / f"{source_id}.{suffix}"

    def drop_cache(self, source_id: str) -> None:
        """Delete a source's work-in-progress files (its stage 1 is over, or it is gone)."""
        folder = self.path / "cache"
        if folder.is_dir():
            for path in folder.glob(f"{source_id}.*"):
                with contextlib.suppress(OSError):
                    path.unlink()

    # ---------------------------------------------------------------------------- chunks

    def add_chunks(self, rows: pa.Table) -> None:
        self._require_writer()
        if rows.num_rows:
            self._chunks.add(rows.select(CHUNK_COLUMNS).cast(chunks_schema()))

    def delete_chunks(self, source_id: str, from_ordinal: int = 0) -> None:
        """Delete a source's chunks and vectors of documents from `from_ordinal` on."""
        self._require_writer()
        where = f"source_id = {_quote(source_id)}"
        if from_ordinal > 0:
            where += f" AND ordinal >= {int(from_ordinal)}"
        self._chunks.delete(where)
        self.delete_vectors(source_id, from_ordinal)

    def delete_vectors(self, source_id: str, from_ordinal: int = 0) -> None:
        self._require_writer()
        table = self._vector_table()
        if table is None:
            return
        where = f"source_id = {_quote(source_id)}"
        if from_ordinal > 0:
            where += f" AND ordinal >= {int(from_ordinal)}"
        table.delete(where)

    def add_vectors(
        self, source_id: str, chunk_ids: Sequence[str], ordinals: Sequence[int], vectors: np.ndarray
    ) -> None:
        """Append vectors; the first ones record the store's embedder."""
        self._require_writer()
        if not len(chunk_ids):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = int(vectors.shape[1])
        if self.recorded_embedder() is None:
            if self.embedder is None:
                raise StoreError("Vectors can only be written with an embedder.")
            self._set_meta(embedder=self.embedder.name, embedder_dim=str(self.embedder.dim))
        table = self._vector_table(create_dim=dim)
        item = self._vector_item_type()
        table.add(
            pa.table(
                {
                    "chunk_id": pa.array(list(chunk_ids), pa.string()),
                    "source_id": pa.array([source_id] * len(chunk_ids), pa.string()),
                    "ordinal": pa.array(list(ordinals), pa.int64()),
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(vectors.astype(item.to_pandas_dtype()).ravel(), item), dim
                    ),
                }
            )
        )

    def _vector_item_type(self) -> pa.DataType:
        """What the vector table stores a vector's numbers as (float16; float32 in libraries
        written before VECTOR_ITEM_TYPE, until `reclaim` halves them). Read afresh: another
        process may have halved them since."""
        table = self._vector_table()
        return VECTOR_ITEM_TYPE if table is None else table.schema.field("vector").type.value_type

    def chunk_count(self, source_id: str | None = None) -> int:
        if source_id is None:
            return int(self._chunks.count_rows())
        return int(self._chunks.count_rows(f"source_id = {_quote(source_id)}"))

    def vector_count(self, source_id: str | None = None) -> int:
        table = self._vector_table()
        if table is None:
            return 0
        if source_id is None:
            return int(table.count_rows())
        return int(table.count_rows(f"source_id = {_quote(source_id)}"))

    def iter_chunks(
        self,
        source_id: str,
        from_ordinal: int = 0,
        to_ordinal: int | None = None,
        batch_rows: int = 4096,
        window_docs: int = 5000,
    ) -> Iterator[pa.Table]:
        """A source's chunks of documents [from_ordinal, to_ordinal), in (ordinal, chunk_index)
        order, in batches that end at document boundaries.

        Read a window of documents at a time, so resuming the embedding of a Wikipedia-sized
        source never holds its whole text in memory.
        """
        if to_ordinal is None:
            record = self.source(source_id)
            to_ordinal = record.read_ordinal if record else 0
        start_doc = from_ordinal
        while start_doc < to_ordinal:
            end_doc = min(to_ordinal, start_doc + window_docs)
            where = (
                f"source_id = {_quote(source_id)} AND ordinal >= {int(start_doc)}"
                f" AND ordinal < {int(end_doc)}"
            )
            table = self._chunks.search().where(where).select(CHUNK_COLUMNS).limit(None).to_arrow()
            start_doc = end_doc
            if table.num_rows == 0:
                continue
            table = table.sort_by([("ordinal", "ascending"), ("chunk_index", "ascending")])
            yield from document_slices(table, batch_rows)

    def table_snapshot(self) -> tuple[pa.Table, pa.Table | None]:
        """The chunks and vectors tables sorted by chunk_id (for tests and checks)."""
        chunks = self._chunks.search().limit(None).to_arrow().sort_by("chunk_id")
        table = self._vector_table()
        vectors = None
        if table is not None:
            vectors = table.search().limit(None).to_arrow().sort_by("chunk_id")
        return chunks, vectors

    # ------------------------------------------------------------------------ indexes

    def _table_path(self, name: str) -> Path:
        return self.path / f"{name}.lance"

    def text_index_updates(self, cancel: threading.Event | None = None) -> Iterator[IndexWork]:
        """Index the passages no keyword index covers yet (the first time: all of them), with
        progress; see ingest.indexes for why new rows get a segment of their own."""
        self._require_writer()
        if self._chunks.count_rows() == 0:
            return
        chunks = self._table_path("chunks")
        yield from ix.update_scalar_index(
            chunks,
            ix.TEXT_INDEX,
            "text",
            "INVERTED",
            what="keyword index",
            unit="passages",
            params={
                **ix.TEXT_INDEX_PARAMS,
                "memory_limit": ix.TEXT_INDEX_MEMORY_MB,
                "num_workers": ix.compute_threads(),
            },
            cancel=cancel,
        )
        yield from _id_indexes(chunks, ix.CHUNK_ID_INDEX, ix.SOURCE_INDEX, "passages", cancel)

    def refresh_text_index(self) -> None:
        """`text_index_updates` run to the end without watching it."""
        ix.drain(self.text_index_updates())

    def maintenance(
        self,
        cancel: threading.Event | None = None,
        cleanup_after: timedelta = timedelta(seconds=30),
    ) -> Iterator[IndexWork]:
        """After an ingest run: compact small fragments, bring every index up to date (the
        vector index built once there are enough vectors), and delete old versions' files
        (keeping the last `cleanup_after` for readers mid-query). Bounded work at any size."""
        self._require_writer()
        chunks = self._table_path("chunks")
        self._drop_dead_index_segments()  # a removed source's go first
        if self._chunks.count_rows():
            yield from ix.compact_small_fragments(
                chunks, [ix.TEXT_INDEX, ix.CHUNK_ID_INDEX, ix.SOURCE_INDEX], cancel=cancel
            )
            yield from self.text_index_updates(cancel)
        table = self._vector_table()
        if table is not None and table.count_rows():
            vectors = self._table_path("vectors")
            yield from ix.compact_small_fragments(
                vectors,
                [ix.VECTOR_INDEX, ix.VECTOR_CHUNK_ID_INDEX, ix.VECTOR_SOURCE_INDEX],
                cancel=cancel,
            )
            yield from self._vector_index_updates(vectors, cancel)
            yield from _id_indexes(
                vectors, ix.VECTOR_CHUNK_ID_INDEX, ix.VECTOR_SOURCE_INDEX, "vectors", cancel
            )
        with warnings.catch_warnings():  # cleanup_after=0 (`librarian compact`) is meant
            warnings.simplefilter("ignore", UserWarning)
            for t in (self._sources, self._meta):
                t.optimize(cleanup_older_than=cleanup_after)
        for name in ("chunks", "vectors"):
            if self._table_path(name).is_dir():
                ix.cleanup(self._table_path(name), cleanup_after)
        self._checkout_latest()
        self._meta.delete("key = 'maintenance_due'")

    def mark_maintenance_due(self) -> None:
        """Record that maintenance should run (it survives a cancelled or killed run)."""
        if self.meta().get("maintenance_due") != "1":
            self._set_meta(maintenance_due="1")

    def maintenance_due(self) -> bool:
        return self.meta().get("maintenance_due") == "1"

    def maintain(self, cleanup_after: timedelta = timedelta(seconds=30)) -> None:
        """`maintenance` run to the end without watching it."""
        ix.drain(self.maintenance(cleanup_after=cleanup_after))

    def _checkout_latest(self) -> None:
        """Let this object's LanceDB tables see what Lance wrote behind their back."""
        for t in (self._chunks, self._vector_table()):
            if t is not None:
                with contextlib.suppress(Exception):
                    t.checkout_latest()

    def _vector_index_updates(
        self, vectors: Path, cancel: threading.Event | None
    ) -> Iterator[IndexWork]:
        """Build the vector index once there are VECTOR_INDEX_THRESHOLD vectors, rebuild it when
        the table has doubled since it was trained (partitions trained on a small, different
        sample lose recall); otherwise index new vectors as a delta segment."""
        ds = ix.open_table(vectors)
        rows = int(ds.count_rows())
        trained = int(self.meta().get("vector_index_rows", "0"))
        if rows < VECTOR_INDEX_THRESHOLD:
            return
        if (
            not ix.has_index(ds, ix.VECTOR_INDEX)
            or not trained
            or rows >= 2 * trained
            or self._vector_index_kind() != VECTOR_INDEX_KIND
        ):
            partitions = vector_partitions(rows)
            log.info("building the vector index over %d vectors (%d partitions)", rows, partitions)

            trained: dict[str, Any] = {}
            assigned = self.path / "cache" / "vector-partitions.lance"

            def assign(step: ix.Step) -> None:
                trained["centroids"] = ix.train_centroids(ds, "vector", partitions, step)
                step.check()
                ix.assign_partitions(ds, "vector", trained["centroids"], assigned, step)

            def build(step: ix.Step) -> None:
                centroids = trained["centroids"]
                ds.create_index(
                    "vector",
                    VECTOR_INDEX_KIND,
                    name=ix.VECTOR_INDEX,
                    metric="cosine",
                    num_partitions=len(centroids),
                    ivf_centroids=centroids,
                    precomputed_partition_dataset=str(assigned),
                    num_bits=VECTOR_RQ_BITS,
                    replace=True,
                    progress_callback=step.callback,
                )

            try:
                yield from ix.run_step(assign, "vector index (partitions)", rows, "vectors", cancel)
                yield from ix.run_step(build, "vector index", rows, "vectors", cancel)
            finally:
                shutil.rmtree(assigned, ignore_errors=True)
            self._set_meta(
                vector_index_rows=str(rows),
                vector_index_partitions=str(partitions),
                vector_index_kind=VECTOR_INDEX_KIND,
            )
            return
        todo, todo_rows = ix.unindexed_fragments(ds, ix.VECTOR_INDEX)
        if todo:

            def delta(_step: ix.Step) -> None:
                ds.optimize.optimize_indices(index_names=[ix.VECTOR_INDEX], num_indices_to_merge=0)

            yield from ix.run_step(delta, "vector index", 0, "seconds", cancel)
        yield from ix.merge_small_segments(vectors, ix.VECTOR_INDEX, what="vector index")

    def _vector_index_kind(self) -> str:
        """The kind of the built vector index (libraries from before it was recorded: IVF_PQ)."""
        return self.meta().get("vector_index_kind", "IVF_PQ")

    def _nprobes(self) -> int:
        partitions = int(self.meta().get("vector_index_partitions", "0"))
        return max(20, partitions // 8)

    # --------------------------------------------------------------------------- search

    def visible_sources(self, only: Sequence[str] | None = None) -> dict[str, SourceRecord]:
        """Sources search may return: stage 1 complete, and among `only` (ids) when given."""
        wanted = set(only) if only is not None else None
        return {
            r.source_id: r
            for r in self.sources()
            if r.visible and (wanted is None or r.source_id in wanted)
        }

    def search(
        self,
        query: str,
        k: int = 10,
        mode: SearchMode = "hybrid",
        sources: Sequence[str] | None = None,
    ) -> list[Hit]:
        """The k best chunks for `query`.

        hybrid: vector top-N and BM25 top-N fused by reciprocal rank (vectors where they exist,
        keywords everywhere); vector: cosine similarity; keyword: BM25. `sources` limits the
        search to those source ids. Sources still in stage 1 are never returned.
        """
        if mode not in ("hybrid", "vector", "keyword"):
            raise ValueError(f"unknown search mode {mode!r}")
        self._last_query = None  # the query is embedded once per search, afresh each search
        records = self.sources()
        wanted = set(sources) if sources is not None else None
        visible = {
            r.source_id: r
            for r in records
            if r.visible and (wanted is None or r.source_id in wanted)
        }
        if not query.strip() or not visible or k <= 0:
            return []
        # Only the sources asked for are filtered before ranking (their bitmap index makes that
        # cheap). A source still being read is invisible: the keyword search never reaches its
        # rows (`fast_search` skips rows no index covers, and a source is indexed before it
        # becomes visible); what is left of it elsewhere is filtered out after ranking.
        where = None if wanted is None else f"source_id IN {_in_list(sorted(visible))}"
        hidden = wanted is None and any(not r.visible and r.stage != "failed" for r in records)
        fetch = 2 * k if hidden else k

        def shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [r for r in rows if r["source_id"] in visible] if hidden else rows

        if mode == "keyword":
            rows = shown(self._keyword(query, fetch, where))[:k]
            return [self._hit(r, r["_score"], visible) for r in rows]
        if mode == "vector":
            if self.embedder is None:
                raise StoreError("Vector search needs an embedder.")
            rows = shown(self._vector(query, fetch, where))[:k]
            return [self._hit(r, 1.0 - r["_distance"], visible) for r in rows]
        depth = max(HYBRID_DEPTH * k, 40)

        # Two chains side by side (each mostly waits on Lance's reads): the keyword search and
        # the stored vectors of what it found; the query's embedding, the vector search and
        # the rows of what that found. A passage both find is read twice; no chain waits.
        def keywords_and_vectors() -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
            found = shown(self._keyword(query, depth, where))
            return found, self.chunk_vectors([r["chunk_id"] for r in found])

        keywords = _SEARCHES.submit(keywords_and_vectors)
        try:
            vector_rows = shown(self._vector(query, depth, where)) if self.embedder else []
        finally:
            keyword_rows, stored = keywords.result()
        fused = self._fuse(query, keyword_rows, vector_rows, stored)
        best = sorted(fused, key=lambda cid: (-fused[cid][0], cid))[:k]
        return [self._hit(fused[cid][1], fused[cid][0], visible) for cid in best]

    def _fuse(
        self,
        query: str,
        keyword_rows: list[dict[str, Any]],
        vector_rows: list[dict[str, Any]],
        stored: dict[str, np.ndarray],
    ) -> dict[str, tuple[float, dict[str, Any]]]:
        """Hybrid scores of the union of the keyword and vector candidates (see HYBRID_*).

        Scores, not ranks: rank fusion puts a passage that is merely in both lists above the one
        that answers (on the project's question sets it fell below vector search for articles
        and gained little over BM25 for book passages). A candidate missing from the vector
        list is compared with its `stored` vector, or embedded now when its source has none yet
        (the best HYBRID_EMBED_MISSING of them by BM25; the rest count no meaning).
        """
        rows: dict[str, dict[str, Any]] = {}
        cosine: dict[str, float] = {}
        for r in vector_rows:
            rows.setdefault(r["chunk_id"], r)
            cosine[r["chunk_id"]] = 1.0 - float(r["_distance"])
        top_bm25 = max((float(r["_score"]) for r in keyword_rows), default=0.0) or 1.0
        bm25: dict[str, float] = {}
        for r in keyword_rows:
            rows.setdefault(r["chunk_id"], r)
            bm25[r["chunk_id"]] = float(r["_score"]) / top_bm25
        if self.embedder is not None:
            missing = [cid for cid in bm25 if cid not in cosine]
            qvec: np.ndarray | None = None
            for cid in missing:
                if cid in stored:
                    qvec = self._query_vector(query) if qvec is None else qvec
                    cosine[cid] = float(stored[cid] @ qvec)
            unembedded = [cid for cid in missing if cid not in stored][:HYBRID_EMBED_MISSING]
            if unembedded:
                from ingest.chunking import embedding_text

                texts = [query] + [
                    embedding_text(rows[c]["title"], rows[c]["section"], rows[c]["text"])
                    for c in unembedded
                ]
                vecs = self.embedder.embed(texts)
                for cid, vec in zip(unembedded, vecs[1:], strict=True):
                    cosine[cid] = float(vec @ vecs[0])
        asked = content_words(query)
        fused = {}
        for cid, row in rows.items():
            held = content_words(f"{row['title']} {row['section']} {row['text']}")
            cover = len(asked & held) / len(asked) if asked else 0.0
            score = (
                HYBRID_BM25 * bm25.get(cid, 0.0)
                + HYBRID_COSINE * cosine.get(cid, 0.0)
                + HYBRID_COVERAGE * cover
            )
            fused[cid] = (score, row)
        return fused

    def _keyword(self, query: str, limit: int, where: str | None) -> list[dict[str, Any]]:
        """BM25 top `limit`, ties broken by chunk id: the same results however the rows were
        batched into fragments (one parser process or eight)."""
        if self._chunks.count_rows() == 0:
            return []
        try:
            q = self._chunks.search(query, query_type="fts").fast_search()  # type: ignore[attr-defined]
            if where:
                q = q.where(where, prefilter=True)
            rows = q.select([*_READ_COLUMNS, "_score"]).limit(limit + TIE_MARGIN).to_list()
        except (ValueError, RuntimeError, OSError) as exc:
            log.warning("keyword search for %r failed: %s", query, exc)
            return []
        for r in rows:
            r["source_id"] = source_of(r["chunk_id"])
        rows.sort(key=lambda r: (-round(r["_score"], 4), r["chunk_id"]))
        return rows[:limit]

    def _vector(self, query: str, limit: int, where: str | None) -> list[dict[str, Any]]:
        hits = self._vector_hits(query, limit, where)
        rows = {r["chunk_id"]: r for r in self._chunk_rows([h["chunk_id"] for h in hits])}
        return [
            {**rows[h["chunk_id"]], "_distance": h["_distance"]}
            for h in hits
            if h["chunk_id"] in rows
        ]

    def _vector_hits(self, query: str, limit: int, where: str | None) -> list[dict[str, Any]]:
        """The nearest `limit` vectors: chunk_id, source_id and _distance of each."""
        table = self._vector_table()
        if table is None or self.embedder is None:
            return []
        self.check_embedder(self.embedder)
        qvec = self._query_vector(query)
        q = table.search(qvec, vector_column_name="vector").distance_type("cosine")
        if self._many_unindexed_vectors(table):
            # Millions of vectors not indexed yet (a big source still embedding) would be
            # compared one by one on every query: search the indexed ones only until the
            # index catches up (see ingest.indexes).
            q = q.fast_search()
        if where:
            q = q.where(where, prefilter=True)
        hits = (
            q.nprobes(self._nprobes())
            .refine_factor(max(1, math.ceil(self._refine_rows() / max(1, limit))))
            .select(["chunk_id", "_distance"])  # source_id from the id: see _chunk_rows
            .limit(limit)
            .to_list()
        )
        for h in hits:
            h["source_id"] = source_of(h["chunk_id"])
        return hits

    def _refine_rows(self) -> int:
        return VECTOR_REFINE_ROWS.get(self._vector_index_kind(), max(VECTOR_REFINE_ROWS.values()))

    def _query_vector(self, query: str) -> np.ndarray:
        """The query's vector, embedded once per search (hybrid needs it twice)."""
        assert self.embedder is not None
        key = (id(self.embedder), query)
        if self._last_query is None or self._last_query[0] != key:
            self._last_query = (key, np.asarray(self.embedder.embed([query])[0], np.float32))
        return self._last_query[1]

    def _many_unindexed_vectors(self, table: Any) -> bool:
        version = table.version
        if self._unindexed_cache is None or self._unindexed_cache[0] != version:
            stats = None
            with contextlib.suppress(Exception):
                stats = table.index_stats(ix.VECTOR_INDEX)
            many = stats is not None and stats.num_unindexed_rows > FLAT_VECTOR_SEARCH_MAX
            self._unindexed_cache = (version, many)
        return self._unindexed_cache[1]

    def _chunk_rows(self, chunk_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The rows of these chunks. Their source_id comes from the chunk id, not the column:
        reading a few scattered rows of that column (dictionary-encoded) cost ~5 ms here and
        ~20 ms in the vector table at 10 M rows (bench/scale.py), a fifth of a hybrid search."""
        if not chunk_ids:
            return []
        rows = (
            self._chunks.search()
            .where(f"chunk_id IN {_in_list(chunk_ids)}")
            .select(_READ_COLUMNS)
            .limit(None)
            .to_list()
        )
        for r in rows:
            r["source_id"] = source_of(r["chunk_id"])
        return rows

    @staticmethod
    def _hit(row: dict[str, Any], score: float, sources: dict[str, SourceRecord]) -> Hit:
        src = sources[row["source_id"]]
        return Hit(
            chunk_id=row["chunk_id"],
            text=row["text"],
            score=float(score),
            locator=Locator(
                source_id=row["source_id"],
                doc_id=row["doc_id"],
                title=row["title"],
                section=row["section"],
                ordinal=int(row["ordinal"]),
                chunk_index=int(row["chunk_index"]),
                start=int(row["start"]),
                end=int(row["end"]),
            ),
            source_title=src.title,
            source_kind=src.kind,
            source_path=src.path,
        )

    def chunks_by_id(self, chunk_ids: Sequence[str]) -> dict[str, Hit]:
        """The chunks of visible sources with these ids (absent ids are left out)."""
        if not chunk_ids:
            return {}
        visible = self.visible_sources()
        return {
            r["chunk_id"]: self._hit(r, 0.0, visible)
            for r in self._chunk_rows(list(chunk_ids))
            if r["source_id"] in visible
        }

    def chunk_vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these chunks (those not embedded yet are absent)."""
        table = self._vector_table()
        if table is None or not chunk_ids:
            return {}
        rows = (
            table.search()
            .where(f"chunk_id IN {_in_list(list(chunk_ids))}")
            .select(["chunk_id", "vector"])
            .limit(None)
            .to_list()
        )
        return {r["chunk_id"]: np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def document_chunks(self, source_id: str, doc_id: str) -> list[Hit]:
        """Every chunk of one document in order (for the reader view to highlight)."""
        record = self.source(source_id)
        if record is None:
            return []
        rows = (
            self._chunks.search()
            .where(f"source_id = {_quote(source_id)} AND doc_id = {_quote(doc_id)}")
            .select(CHUNK_COLUMNS)
            .limit(None)
            .to_list()
        )
        rows.sort(key=lambda r: r["chunk_index"])
        return [self._hit(r, 0.0, {source_id: record}) for r in rows]

    def open_reader(self, source_id: str) -> SourceReader:
        """The source's reader, for the reader view (raises SourceError if the file moved)."""
        from ingest.readers import open_source

        record = self.source(source_id)
        if record is None:
            raise StoreError(f"No source '{source_id}' in the library.")
        return open_source(record.path)


# Every vector is compared with every centroid when the index is built: past ~1 M vectors that
# comparison, not the training, is the build's cost, so partitions stop growing there (at 50 M
# vectors a query then scans its probes' ~50,000 codes each, still milliseconds).
MAX_PARTITIONS = 1024


def document_slices(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    """`table` (sorted by ordinal) in slices of about `rows` rows that end at document ends."""
    ordinals = table.column("ordinal").to_numpy()
    start = 0
    while start < table.num_rows:
        end = min(start + rows, table.num_rows)
        while end < table.num_rows and ordinals[end] == ordinals[end - 1]:
            end += 1  # extend to the end of the document the slice stops in
        yield table.slice(start, end - start)
        start = end


def _id_indexes(
    table: Path, ids: str, sources: str, unit: str, cancel: threading.Event | None
) -> Iterator[IndexWork]:
    """Bring a table's chunk-id (BTree: lookups by id) and source-id (bitmap: filters by
    source) indexes up to date."""
    name = "passage" if unit == "passages" else "vector"
    yield from ix.update_scalar_index(
        table, ids, "chunk_id", "BTREE", what=f"{name} ids", unit=unit, cancel=cancel
    )
    yield from ix.update_scalar_index(
        table, sources, "source_id", "BITMAP", what=f"{name} sources", unit=unit, cancel=cancel
    )


def vector_partitions(rows: int) -> int:
    """IVF partitions for `rows` vectors: about sqrt(rows), the usual balance of probe cost,
    up to MAX_PARTITIONS."""
    return max(16, min(MAX_PARTITIONS, int(rows**0.5)))
