"""The library store: a LanceDB folder holding sources, their text chunks and their vectors.

Schema (one LanceDB table each; the rows as Python sees them are in ingest.records):

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
lock and always see the latest committed version (read_consistency_interval = 0). A library
on an object store (ingest.library_location) keeps its lock and caches in a local state folder,
so it admits one writing machine at a time, and its readers see other processes' commits within
OBJECT_STORE_CONSISTENCY (a look for a newer version there is a listing request per table).

LibraryStore is this module (meta, sources, chunks, the writer lock) with its vectors from
ingest.store_vectors, its searches from ingest.store_search (hybrid ranking in
ingest.store_fusion) and its index upkeep from ingest.store_indexes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ingest import indexes as ix
from ingest import query_vectors, records
from ingest.errors import StoreError
from ingest.file_names import stored_path
from ingest.indexes import IndexWork
from ingest.lance_import import import_lancedb, lance_session
from ingest.library_location import (
    Location,
    UnsupportedLocation,
    failure_reason,
    is_remote,
    library_location,
    state_folder,
    stored_bytes,
)
from ingest.records import (
    CHUNK_COLUMNS,
    Hit,
    SourceRecord,
    chunks_schema,
    in_list,
    quote,
    record_from_row,
    source_id_for,
    source_of,
    source_rows,
    sources_schema,
    storable,
)
from ingest.store_indexes import IndexMixin
from ingest.store_search import SearchMixin, SearchMode
from ingest.store_terms import TermsMixin
from ingest.store_vectors import SCAN_BATCH_ROWS, VectorsMixin
from ingest.tables import create_or_open, open_listed
from ingest.writer_lock import WriterLock

if TYPE_CHECKING:
    from ingest.embedding import Embedder
    from ingest.readers import SourceReader

# What other modules find here: the store, and the records it keeps.
__all__ = [
    "CHUNK_COLUMNS",
    "Hit",
    "LibraryStore",
    "SearchMode",
    "SourceRecord",
    "chunks_schema",
    "document_slices",
    "source_id_for",
    "source_of",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"

# How stale a reader of a library on an object store may be about other processes' commits (its
# own it sees at once): asking for the newest version on every search costs a listing request
# per table; 2 s cut keyword search from 104 to 23 ms (p50) on an S3 endpoint on this machine
OBJECT_STORE_CONSISTENCY = timedelta(seconds=2)


class LibraryStore(IndexMixin, SearchMixin, VectorsMixin, TermsMixin):
    """The library on disk: search for everyone, writes for one writer at a time.

    `embedder` is needed for vector and hybrid search and for stage 2; without one, hybrid
    search falls back to keywords. Opening a store whose vectors came from another embedder
    raises EmbedderMismatch unless `check_embedder=False` (used to rebuild the vectors).
    """

    def __init__(
        self,
        path: Location,
        embedder: Embedder | None = None,
        *,
        check_embedder: bool = True,
    ) -> None:
        lancedb = import_lancedb()

        # the library's tables (a folder, or an object-store URI), and the local folder of this
        # computer's work on it (the same folder for a library on disk)
        try:
            self.location = library_location(path)
        except UnsupportedLocation as exc:
            raise StoreError(str(exc)) from exc
        self.path = state_folder(self.location)
        self.embedder = embedder
        remote = is_remote(self.location)
        # Two handles creating a new bucket library's tables at once (the window listing it
        # while its first ingest opens it) made an object store commit one creation over the
        # other, failing the first handle's next write: on this computer they take turns.
        creating = WriterLock(self.path / "tables.lock") if remote else None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if creating is not None:
                creating.acquire(timeout=60.0)
            fresh = OBJECT_STORE_CONSISTENCY if remote else timedelta(0)
            self._db = lancedb.connect(
                str(self.location), read_consistency_interval=fresh, session=lance_session()
            )
            self._meta = create_or_open(
                self._db, "meta", pa.schema([("key", pa.string()), ("value", pa.string())])
            )
            sources = None
            if "sources" in self._table_names():  # maybe from an earlier version: migrate
                sources = open_listed(self._db, "sources")
            if sources is not None:
                self._sources = sources
                self._add_new_source_columns()
            else:
                self._sources = create_or_open(self._db, "sources", sources_schema())
            self._chunks = create_or_open(self._db, "chunks", chunks_schema())
        except (OSError, ValueError, RuntimeError) as exc:  # an object store's errors: ValueError
            raise StoreError(
                f"The library at {self.location} cannot be opened: {failure_reason(exc)}"
            ) from exc
        finally:
            if creating is not None:
                creating.release()
        self._vectors: Any = None
        self._terms: Any = None  # the second keyword index's table (ingest.store_terms)
        self._unindexed_cache: tuple[int, bool] | None = None  # (vectors version, too many)
        self._kept: Any = None  # (embedder, QueryVectors): see SearchMixin.query_vectors
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
        self._meta.delete(f"key IN {in_list(keys)}")
        self._meta.add([{"key": k, "value": v} for k, v in values.items()])

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

    def _table_names(self) -> list[str]:
        return list(self._db.list_tables().tables)

    # ----------------------------------------------------------------------- writer lock

    @contextlib.contextmanager
    def writing(self, timeout: float | None = 30.0) -> Iterator[None]:
        """Hold the store's writer lock (re-entrant within this object)."""
        if self._lock_depth == 0:
            self._lock.acquire(timeout)
            if is_remote(self.location):
                self._see_every_commit()  # a writer starts from the newest of every table
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0:
                self._lock.release()

    def _see_every_commit(self) -> None:
        """Bring this object's tables to their newest versions now (a bucket library's
        readers look for them only every OBJECT_STORE_CONSISTENCY)."""
        for table in (self._meta, self._sources):
            table.checkout_latest()
        self._checkout_latest()

    def _require_writer(self) -> None:
        if self._lock_depth == 0:
            raise RuntimeError("store writes need `with store.writing():`")

    # --------------------------------------------------------------------------- sources

    def sources(self) -> list[SourceRecord]:
        """Every source, failed ones included, oldest first."""
        version = self._sources.version
        if self._sources_read is None or self._sources_read[0] != version:
            rows = self._sources.search().limit(None).to_list()
            records = [record_from_row(r) for r in rows]
            self._sources_read = (version, sorted(records, key=lambda r: (r.added_at, r.source_id)))
        return list(self._sources_read[1])

    def source(self, source_id: str) -> SourceRecord | None:
        rows = self._sources.search().where(f"source_id = {quote(source_id)}").limit(None).to_list()
        return record_from_row(rows[0]) if rows else None

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
        wanted = quote(stored_path(identity))
        rows = self._sources.search().where(f"identity = {wanted}").limit(None).to_list()
        return record_from_row(rows[0]) if rows else None

    def add_source(self, record: SourceRecord) -> SourceRecord:
        self._require_writer()
        if not record.added_at:
            record = replace(record, added_at=datetime.now(UTC).isoformat(timespec="seconds"))
        self._sources.delete(f"source_id = {quote(record.source_id)}")
        self._sources.add([storable(asdict(record))])
        return record

    def update_source(self, source_id: str, **values: Any) -> None:
        self._require_writer()
        self._sources.update(where=f"source_id = {quote(source_id)}", values=storable(values))

    def remove(self, name_or_id: str) -> SourceRecord:
        """Remove a source with all its chunks and vectors; returns what was removed."""
        record = self.find_source(name_or_id)
        if record is None:
            raise StoreError(f"No source '{name_or_id}' in the library.")
        with self.writing():
            # Hide it first so a crash half-way never leaves a visible half-source.
            self.update_source(record.source_id, stage="reading")
            self.delete_chunks(record.source_id)
            self._sources.delete(f"source_id = {quote(record.source_id)}")
            self.drop_cache(record.source_id)
            query_vectors.drop_all(self.path, record.source_id)
            # A source's rows fill fragments of their own, which the delete drops whole: their
            # files go now (what shares fragments with other sources waits for `compact`).
            self._drop_dead_index_segments()
            for table in self._row_tables():
                ix.cleanup(table, timedelta(0))
        return record

    def _drop_dead_index_segments(self) -> None:
        """Drop the index segments of both tables that cover only rows deleted since."""
        for table in self._row_tables():
            ix.drop_dead_segments(table)
        self._checkout_latest()

    def reclaim(self, cancel: threading.Event | None = None) -> Iterator[IndexWork]:
        """Give the disk back all that removed sources and old versions still hold: float32
        vectors rewritten as float16 (libraries from before VECTOR_ITEM_TYPE), compaction of
        fragments with deleted rows, indexes brought up to date, old versions' files deleted at
        once (`librarian compact`). Needs the writer lock."""
        self._require_writer()
        wanted = records.VECTOR_ITEM_TYPE
        if self._vector_table() is not None and self._vector_item_type() != wanted:
            self.mark_maintenance_due()  # a stop after the rewrite leaves the indexes to build
            yield from ix.rewrite_list_items(
                self._table_path("vectors"),
                "vector",
                wanted,
                what="halving vectors",
                unit="vectors",
                cancel=cancel,
            )
            self._vectors = None  # reopened with the new schema
        yield from self.maintenance(cancel, cleanup_after=timedelta(0))

    def disk_bytes(self) -> int:
        """Bytes the library's files take on disk (or in its object store)."""
        return stored_bytes(self.location)

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
            self.add_terms(rows)

    def delete_chunks(self, source_id: str, from_ordinal: int = 0) -> None:
        """Delete a source's chunks and vectors of documents from `from_ordinal` on."""
        self._require_writer()
        self._chunks.delete(source_rows(source_id, from_ordinal))
        self.delete_terms(source_id, from_ordinal)
        self.delete_vectors(source_id, from_ordinal)

    def chunk_count(self, source_id: str | None = None) -> int:
        if source_id is None:
            return int(self._chunks.count_rows())
        return int(self._chunks.count_rows(f"source_id = {quote(source_id)}"))

    def iter_chunks(
        self,
        source_id: str,
        from_ordinal: int = 0,
        to_ordinal: int | None = None,
        batch_rows: int = 4096,
        window_docs: int = 5000,
        only: str = "",
    ) -> Iterator[pa.Table]:
        """A source's chunks of documents [from_ordinal, to_ordinal), in (ordinal, chunk_index)
        order, in batches that end at document boundaries; `only`: a further condition on them.

        Read a window of documents at a time, so resuming the embedding of a Wikipedia-sized
        source never holds its whole text in memory.
        """
        if to_ordinal is None:
            record = self.source(source_id)
            to_ordinal = record.read_ordinal if record else 0
        start_doc = from_ordinal
        while start_doc < to_ordinal:
            end_doc = min(to_ordinal, start_doc + window_docs)
            where = source_rows(source_id, start_doc, end_doc)
            if only:
                where += f" AND ({only})"
            table = self._chunks.search().where(where).select(CHUNK_COLUMNS).limit(None).to_arrow()
            start_doc = end_doc
            if table.num_rows == 0:
                continue
            table = table.sort_by([("ordinal", "ascending"), ("chunk_index", "ascending")])
            yield from document_slices(table, batch_rows)

    def sample_texts(self, source_id: str, rows: int) -> list[str]:
        """The texts of up to `rows` of a source's passages (the first the table holds)."""
        where = f"source_id = {quote(source_id)}"
        table = self._chunks.search().where(where).select(["text"]).limit(rows).to_arrow()
        return [str(t) for t in table.column("text").to_pylist()]

    def scan_chunks(self, where: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
        """The chunk rows `where` selects, in batches, in table order (no sort: any size)."""
        yield from self._chunks.to_lance().to_batches(
            filter=where, columns=columns, batch_size=SCAN_BATCH_ROWS
        )

    def table_snapshot(self) -> tuple[pa.Table, pa.Table | None]:
        """The chunks and vectors tables sorted by chunk_id (for tests and checks)."""
        chunks = self._chunks.search().limit(None).to_arrow().sort_by("chunk_id")
        table = self._vector_table()
        vectors = None
        if table is not None:
            vectors = table.search().limit(None).to_arrow().sort_by("chunk_id")
        return chunks, vectors

    def open_reader(self, source_id: str) -> SourceReader:
        """The source's reader, for the reader view (raises SourceError if the file moved)."""
        from ingest.readers import open_source

        record = self.source(source_id)
        if record is None:
            raise StoreError(f"No source '{source_id}' in the library.")
        return open_source(record.path)


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


def load_native_libraries() -> None:
    """Import the native libraries that adding a source uses in this process: Lance's core
    (tens of MB of Rust, first imported by a table update), libzim and the HTML parser (opening
    a source to plan it). A first import loads its shared library while holding Python's lock —
    a GUI calls this while it starts, so that stall does not come while a library is added."""
    import ebooklib  # noqa: F401
    import lance  # noqa: F401
    import libzim  # noqa: F401
    import selectolax.lexbor  # noqa: F401
