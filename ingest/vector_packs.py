"""Vector packs: one source's vectors in a file that another library attaches to its own copy of
the same source, so one person with a GPU embeds Wikipedia and everyone else imports it.

A pack is an Arrow IPC file: chunk_id, ordinal and vector (float16) per passage, and in its
schema's metadata the header — the source's identity (ZIM UUID or EPUB content hash), the
chunker version it was read with, the embedder's name and size, how far its vectors go
(`embed_ordinal`: every passage of the documents before it), and a digest of those passages
(ids, titles, sections and texts, in any order). A library attaches a pack only to a source with
the same identity whose passages give the same digest, with the same embedder as its own
vectors: two libraries that chunked the same file differently, or embedded it with another
model, are refused with a message that says which.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from ingest import query_vectors
from ingest.errors import PackError
from ingest.events import PackDone, ProgressEvent
from ingest.file_names import PACK_SUFFIX, shown
from ingest.indexes import IndexCancelled
from ingest.pipeline import index_events
from ingest.records import LEAD_ID_SUFFIX, SourceRecord, source_rows
from ingest.store import LibraryStore

PACK_FORMAT = "librarian-vector-pack"
PACK_VERSION = 1
_HEADER_KEY = b"librarian"
_BATCH_ROWS = 65_536
_PROGRESS_SECONDS = 0.2


@dataclass(frozen=True)
class PackHeader:
    """What a pack says about itself (see the module's docstring)."""

    identity: str
    title: str
    file_name: str
    kind: str
    chunker: str
    embedder: str
    dim: int
    embed_ordinal: int
    vectors: int
    passages_digest: str
    format: str = PACK_FORMAT
    version: int = PACK_VERSION


def default_pack_name(record: SourceRecord) -> str:
    """`wikipedia_en_all_nopic.vectors` for `wikipedia_en_all_nopic.zim`."""
    return Path(record.path).stem + PACK_SUFFIX


def export_pack(
    store_path: Path | str,
    source: str,
    out: Path | str | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[ProgressEvent | PackDone]:
    """Write the vectors of `source` (id, file name, path or title) that stage 2 has finished
    to `out` (default: the source's file name with PACK_SUFFIX, in the current folder), with
    progress; the file appears whole or not at all."""
    store = LibraryStore(store_path)
    record = store.find_source(source)
    if record is None:
        raise PackError(f"No source '{source}' in the library at {store_path}.")
    recorded = store.recorded_embedder()
    if recorded is None or record.embed_ordinal <= 0:
        raise PackError(
            f"'{record.title}' has no vectors yet: run `librarian ingest` to embed it, "
            f"then export its vectors."
        )
    target = Path(out) if out is not None else Path.cwd() / default_pack_name(record)
    if target.is_dir():
        target = target / default_pack_name(record)
    upto = record.embed_ordinal
    total = store.vector_count(record.source_id, before_ordinal=upto)
    progress = _Progress(str(target), record.title, "checking passages", total, "passages")
    try:
        digest = yield from _passages_digest(store, record, upto, progress, cancel)
    except PackCancelled:
        return
    header = PackHeader(
        identity=record.identity,
        title=record.title,
        file_name=Path(record.path).name,
        kind=record.kind,
        chunker=record.chunker,
        embedder=recorded[0],
        dim=recorded[1],
        embed_ordinal=upto,
        vectors=total,
        passages_digest=digest,
    )
    schema = _pack_schema(header.dim).with_metadata(
        {_HEADER_KEY: json.dumps(asdict(header)).encode()}
    )
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    written = 0
    progress = _Progress(str(target), record.title, "writing vectors", total, "vectors")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, schema) as writer:
            for batch in _vector_batches(store, record, upto, header.dim):
                _check(cancel)
                writer.write_batch(batch)
                written += batch.num_rows
                yield from progress.at(written)
        if written != total:  # vectors below the checkpoint only go when the source does
            raise PackError(
                f"'{record.title}' changed while its vectors were exported ({written:,} "
                f"written, {total:,} expected); export it again."
            )
        os.replace(tmp, target)
    except PackCancelled:
        return
    except OSError as exc:
        raise PackError(f"{shown(str(target))}: cannot be written: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    yield from progress.at(written, force=True)
    yield PackDone(str(target), record.title, written)


def read_header(pack: Path | str) -> PackHeader:
    """The header of a pack; PackError (naming the file) when it is not one this version
    reads."""
    name = shown(Path(pack).name)
    if not Path(pack).is_file():
        raise PackError(f"{name}: not found" if not Path(pack).exists() else f"{name}: not a file")
    try:
        with pa.memory_map(str(pack)) as f:
            schema = ipc.open_file(f).schema
    except (OSError, pa.ArrowInvalid) as exc:
        raise PackError(f"{name}: not a vector pack ({exc})") from exc
    raw = (schema.metadata or {}).get(_HEADER_KEY)
    try:
        fields = json.loads(raw) if raw else None
        header = PackHeader(**fields) if isinstance(fields, dict) else None
    except (TypeError, ValueError):
        header = None
    if header is None or header.format != PACK_FORMAT:
        raise PackError(f"{name}: not a Librarian vector pack.")
    if header.version > PACK_VERSION:
        raise PackError(
            f"{name}: made by a newer Librarian (pack version {header.version}); "
            f"update Librarian to import it."
        )
    return header


def import_pack(
    store_path: Path | str,
    pack: Path | str,
    embedder: tuple[str, int] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[ProgressEvent | PackDone]:
    """Attach a pack's vectors to the same source in the library at `store_path`, with
    progress. `embedder`: (name, dim) the library embeds with when it has no vectors yet.

    Refused (PackError, saying which) when the library lacks the source or has not finished
    reading it, when its copy was chunked differently, or when its vectors come from another
    embedder. The vectors the library already has for the source are kept; the pack gives
    those after them, in one commit: a stop or a failure leaves the library as it was.
    """
    header = read_header(pack)
    store = LibraryStore(store_path)
    with store.writing(timeout=5.0):
        record = store.find_identity(header.identity)
        name = shown(Path(pack).name)
        if record is None:
            raise PackError(
                f"{name} holds the vectors of '{header.title}' ({header.file_name}), which "
                f"this library does not have. Add that file first (`librarian ingest "
                f"{header.file_name} --keyword-only` is enough), then import the pack."
            )
        if record.stage not in ("keyword", "embedding", "ready"):
            raise PackError(
                f"'{record.title}' is still being read ({record.stage}); import {name} once "
                f"its text is in the library."
            )
        _check_embedder(store, header, embedder, name)
        if record.chunker and header.chunker and record.chunker != header.chunker:
            raise PackError(
                f"{name} was made from '{header.title}' split into passages by chunker "
                f"version {header.chunker}; this library read it with version "
                f"{record.chunker}. Their passages differ, so the vectors would not fit. "
                f"Export a new pack from a library with chunker version {record.chunker}, "
                f"or remove and add the file again here."
            )
        if record.embed_ordinal >= header.embed_ordinal:
            yield PackDone(str(pack), record.title, 0)  # it has all the pack gives already
            return
        progress = _Progress(record.path, record.title, "checking passages", 0, "passages")
        progress.total = store.chunk_count(record.source_id)
        try:
            digest = yield from _passages_digest(
                store, record, header.embed_ordinal, progress, cancel
            )
        except PackCancelled:
            return
        if digest != header.passages_digest:
            raise PackError(
                f"{name} does not fit this library's copy of '{record.title}': the passages "
                f"differ (the libraries split the text differently, or the files differ "
                f"although their identity is the same). Its vectors were not imported."
            )
        try:
            added = yield from _attach(store, record, header, pack, cancel)
        except PackCancelled:
            return
        store.mark_maintenance_due()
        with contextlib.suppress(IndexCancelled):
            yield from index_events(str(store.location), "library", store.maintenance(cancel))
    yield PackDone(str(pack), record.title, added)


def _attach(
    store: LibraryStore,
    record: SourceRecord,
    header: PackHeader,
    pack: Path | str,
    cancel: threading.Event | None,
) -> Generator[ProgressEvent, None, int]:
    """The pack's vectors of the documents the library has not embedded yet, streamed into
    one commit (on a helper thread, so progress goes on); then the source's checkpoint after
    them. A stop or a failure commits nothing."""
    sid, start, leads = record.source_id, record.embed_ordinal, record.lead_ordinal
    store.record_embedder(header.embedder, header.dim)  # checked: the same, or none yet
    store.delete_vectors(sid, start, keep_leads_below=leads)  # past the checkpoints: not counted
    kept = store.vector_count(sid)
    table = store.vector_table_for(header.dim)
    schema = table.schema
    item = schema.field("vector").type.value_type
    progress = _Progress(record.path, record.title, "importing vectors", header.vectors, "vectors")
    added = 0
    abandoned = threading.Event()

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal added
        with pa.memory_map(str(pack)) as f:
            reader = ipc.open_file(f)
            for i in range(reader.num_record_batches):
                _check(cancel)
                if abandoned.is_set():
                    raise PackCancelled
                batch = reader.get_batch(i)
                ordinal = batch.column("ordinal")
                if start > 0:
                    batch = batch.filter(pc.greater_equal(ordinal, start))
                    ordinal = batch.column("ordinal")
                if leads > start:  # first passages stage 2 embedded ahead of the rest
                    had = pc.and_(
                        pc.ends_with(batch.column("chunk_id"), LEAD_ID_SUFFIX),
                        pc.less(ordinal, leads),
                    )
                    batch = batch.filter(pc.invert(had))
                vectors = batch.column("vector")
                if item != vectors.type.value_type:
                    vectors = vectors.cast(pa.list_(item, header.dim))
                yield pa.RecordBatch.from_arrays(
                    [
                        batch.column("chunk_id"),
                        pa.array([sid] * batch.num_rows, pa.string()),
                        batch.column("ordinal"),
                        vectors,
                    ],
                    schema=schema,
                )
                added += batch.num_rows

    with ThreadPoolExecutor(1, thread_name_prefix="pack-import") as pool:
        adding = pool.submit(table.add, pa.RecordBatchReader.from_batches(schema, batches()))
        try:
            while True:
                try:
                    adding.result(timeout=_PROGRESS_SECONDS)
                    break
                except FutureTimeout:
                    yield from progress.at(added)
                except Exception as exc:  # noqa: BLE001 - LanceDB wraps what the batches raised
                    if abandoned.is_set() or (cancel is not None and cancel.is_set()):
                        raise PackCancelled from exc
                    raise PackError(
                        f"{shown(Path(pack).name)}: its vectors could not be written: {exc}"
                    ) from exc
        except BaseException:
            abandoned.set()  # Ctrl+C, a closed generator: the add fails, nothing is committed
            raise
    embedded = kept + added
    done = embedded >= record.chunks and header.embed_ordinal >= record.read_ordinal
    store.update_source(
        sid,
        embed_ordinal=header.embed_ordinal,
        embedded=embedded,
        stage="ready" if done else "embedding",
    )
    if done:
        query_vectors.drop_all(store.path, sid)
    yield from progress.at(added, force=True)
    return added


def _check_embedder(
    store: LibraryStore, header: PackHeader, embedder: tuple[str, int] | None, name: str
) -> None:
    have = store.recorded_embedder() or embedder
    if have is None:
        return
    if have != (header.embedder, header.dim):
        raise PackError(
            f"{name} holds vectors made with the embedder '{header.embedder}' "
            f"({header.dim} dimensions); this library's are made with '{have[0]}' "
            f"({have[1]}). Mixing them would give wrong results: this library needs a pack "
            f"made with '{have[0]}'."
        )


def _passages_digest(
    store: LibraryStore,
    record: SourceRecord,
    upto: int,
    progress: _Progress,
    cancel: threading.Event | None,
) -> Generator[ProgressEvent, None, str]:
    """A digest of the source's passages of documents before `upto` — their ids, titles,
    sections and texts, in whatever order the table holds them (a sum of per-passage hashes),
    so two libraries compare every passage without holding them all."""
    total, done = 0, 0
    where = source_rows(record.source_id, before_ordinal=upto)
    for batch in store.scan_chunks(where, ["chunk_id", "title", "section", "text"]):
        _check(cancel)
        columns = [batch.column(i).to_pylist() for i in range(4)]
        for chunk_id, title, section, text in zip(*columns, strict=True):
            passage = f"{chunk_id}\x00{title}\x00{section}\x00{text}"
            h = hashlib.blake2b(passage.encode("utf-8", "surrogatepass"), digest_size=8)
            total = (total + int.from_bytes(h.digest(), "little")) % (1 << 64)
        done += batch.num_rows
        yield from progress.at(done)
    return f"{done}:{total:016x}"


def _vector_batches(
    store: LibraryStore, record: SourceRecord, upto: int, dim: int
) -> Iterator[pa.RecordBatch]:
    where = source_rows(record.source_id, before_ordinal=upto)
    for batch in store.scan_vectors(where, ["chunk_id", "ordinal", "vector"]):
        vectors = batch.column("vector")
        if vectors.type.value_type != pa.float16():
            values = np.asarray(vectors.values.to_numpy(zero_copy_only=False), np.float16)
            vectors = pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float16()), dim)
        yield pa.RecordBatch.from_arrays(
            [batch.column("chunk_id"), batch.column("ordinal"), vectors],
            schema=_pack_schema(dim),
        )


def _pack_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("ordinal", pa.int64()),
            ("vector", pa.list_(pa.float16(), dim)),
        ]
    )


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise PackCancelled


class PackCancelled(Exception):
    """Raised inside a pack's export or import when it is cancelled (nothing is left)."""


class _Progress:
    """Progress events for one step, at most every _PROGRESS_SECONDS."""

    def __init__(self, path: str, title: str, step: str, total: int, unit: str) -> None:
        self.path, self.title, self.step, self.total, self.unit = path, title, step, total, unit
        self.started = time.monotonic()
        self.last = 0.0

    def at(self, done: int, force: bool = False) -> Iterator[ProgressEvent]:
        now = time.monotonic()
        if not force and now - self.last < _PROGRESS_SECONDS:
            return
        self.last = now
        rate = done / max(1e-3, now - self.started)
        eta = (self.total - done) / rate if self.total and rate > 0 else None
        yield ProgressEvent(
            self.path, self.title, "embedding", done, self.total, rate, eta, self.unit, self.step
        )
