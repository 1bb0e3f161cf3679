"""The library's indexes at any size: built once, then kept up to date in delta segments.

Lance keeps an index as segments, each covering some fragments (data files) of its table.
Folding new rows into an existing segment rewrites that segment, and compacting fragments
rewrites every segment that covers them. At Wikipedia scale that is a rebuild: adding 20,000
passages to a 10 M-passage store through LanceDB's `optimize()` took 9 minutes and 6 GB of
memory (most of it remapping the full-text index after compaction), 2.3 minutes and 5 GB
without the compaction. So here:

- new rows get a segment of their own (a *delta*), built over exactly the fragments no segment
  covers yet: adding a book to a Wikipedia costs what the book costs;
- when more than MAX_SMALL_SEGMENTS small segments (under SMALL_SEGMENT_ROWS rows each) trail
  an index, they are merged into one, so searches do not fan out over hundreds of segments —
  a merge never includes a big segment, so it costs what the small sources cost;
- compaction rewrites only small fragments that no big segment covers (books, the tails of
  sources, vectors not indexed yet), so it never remaps a big segment.

Builds report Lance's own progress (rows tokenized, vectors assigned) and stop when cancelled:
the progress callback raises, Lance abandons the build, and its unfinished files are deleted.
The steps Lance reports nothing for (merging small segments, compacting small fragments, delta
vector segments) are bounded by the rules above; they report elapsed time and stop between
steps.

Threads: a build runs on a thread of its own while the generator that started it keeps
yielding progress (like the pipeline's embedder thread); it is joined before the generator
returns, whether it finished, failed or was cancelled.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ingest.errors import IngestError, StoreError
from ingest.library_location import Location, joined, remove_tree

log = logging.getLogger(__name__)

TEXT_INDEX = "text_idx"
CHUNK_ID_INDEX = "chunk_id_idx"
VECTOR_INDEX = "vector_idx"
VECTOR_CHUNK_ID_INDEX = "vector_chunk_id_idx"
SOURCE_INDEX = "source_id_idx"  # bitmap: searching within some sources filters cheaply
VECTOR_SOURCE_INDEX = "vector_source_id_idx"

# A segment under this many rows may be merged with its neighbours: merging costs about as much
# as indexing its rows again (~1 min per million passages for the full-text index here).
SMALL_SEGMENT_ROWS = 1_000_000
MAX_SMALL_SEGMENTS = 6  # trailing small segments tolerated before they are merged into one
# Stage 1 commits about this many rows at a time, so its fragments are never compaction
# candidates; fragments under it (books, tails) are compacted up to it.
FRAGMENT_TARGET_ROWS = 65_536
MIN_SMALL_FRAGMENTS = 16
# Rows indexed into one new segment at a time (see update_scalar_index): bounds build memory.
SEGMENT_BUILD_ROWS = 2_000_000  # compact small fragments once this many have gathered
COMPACTION_STEP_ROWS = 1_000_000  # rows rewritten per compaction step (progress, cancel)

# The full-text index's analysis: LanceDB's FTS() defaults, which the first libraries were
# built with; every segment of one index must use the same.
TEXT_INDEX_PARAMS: dict[str, Any] = {
    "with_position": False,
    "base_tokenizer": "simple",
    "language": "English",
    "max_token_length": 40,
    "lower_case": True,
    "stem": True,
    "remove_stop_words": True,
    "ascii_folding": True,
}
# Build memory for the full-text index, in MiB, split among its workers: bounds the in-memory
# posting lists of a build at any table size (Lance's default is 2 GiB per worker).
TEXT_INDEX_MEMORY_MB = 512


_M_ARENA_MAX = -8  # mallopt parameter number (glibc malloc.h)


class IndexCancelled(IngestError):
    """An index step was stopped before it finished; nothing of it was committed."""


@dataclass(frozen=True)
class IndexWork:
    """Progress of one index step: `done` of `total` units (total 0: unknown)."""

    what: str  # shown to the user: "keyword index", "vector index", "compacting", …
    done: int
    total: int
    unit: str  # "passages", "vectors", "rows", "seconds"


@dataclass(frozen=True)
class Segment:
    """One segment of an index: the fragments it covers and their rows."""

    uuid: str
    version: int
    fragments: frozenset[int]
    rows: int


def compute_threads() -> int:
    """Threads for Lance's compute work: every core (Lance keeps one back by default, which on
    a 2-core machine halves index builds)."""
    return max(1, os.cpu_count() or 1)


def tune_process() -> None:
    """Process-wide settings Lance needs from its first use, so this runs when `ingest` is
    imported: its compute pool uses every core (it keeps one back by default, which on a
    2-core machine halves index builds), and glibc's malloc keeps at most two arenas. With one
    arena per thread (glibc's default), memory Lance's build threads free is kept, not reused:
    indexing a table a piece at a time grew by 180 MB over 8 pieces of 20,000 rows, and by
    2.8 GB building the index of 10 M passages; with two arenas it stays flat."""
    os.environ.setdefault("LANCE_CPU_THREADS", str(compute_threads()))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(_M_ARENA_MAX, 2)


# ----------------------------------------------------------------------------- policies


def segments(ds: Any, name: str, rows: dict[int, int]) -> list[Segment]:
    """The segments of index `name`, oldest first, with the rows of the fragments they cover."""
    out = []
    for index in ds.describe_indices():
        if index.name != name:
            continue
        for seg in index.segments:
            frags = frozenset(int(f) for f in seg.fragment_ids)
            out.append(
                Segment(
                    uuid=str(seg.uuid),
                    version=int(seg.dataset_version_at_last_update),
                    fragments=frags,
                    rows=sum(rows.get(f, 0) for f in frags),
                )
            )
    return sorted(out, key=lambda s: (s.version, s.uuid))


def has_index(ds: Any, name: str) -> bool:
    return any(index.name == name for index in ds.describe_indices())


def merge_count(segs: list[Segment]) -> int:
    """How many of the newest segments to merge into one (0: none).

    Only the trailing run of small segments is ever merged, and only once it is longer than
    MAX_SMALL_SEGMENTS: a big segment is never rewritten to absorb small ones."""
    trailing = 0
    for seg in reversed(segs):
        if seg.rows >= SMALL_SEGMENT_ROWS:
            break
        trailing += 1
    return trailing if trailing > MAX_SMALL_SEGMENTS else 0


def compaction_candidates(
    rows: dict[int, int], deleted: dict[int, int], covering: list[list[Segment]]
) -> list[int]:
    """Fragments worth compacting: small or with deleted rows, and covered by no big segment of
    any of the table's indexes (rewriting those would remap the big segment). Empty unless
    enough have gathered to be worth a rewrite, or some hold deleted rows."""
    big: set[int] = set()
    for segs in covering:
        for seg in segs:
            if seg.rows >= SMALL_SEGMENT_ROWS:
                big |= seg.fragments
    picked = [
        f
        for f, n in rows.items()
        if f not in big and (n < FRAGMENT_TARGET_ROWS or deleted.get(f, 0) > 0)
    ]
    if any(deleted.get(f, 0) for f in picked) or len(picked) >= MIN_SMALL_FRAGMENTS:
        return sorted(picked)
    return []


# --------------------------------------------------------------------------- operations


def open_table(path: Location) -> Any:
    """The Lance dataset of a LanceDB table, by folder or URI (latest version)."""
    import lance

    return lance.dataset(str(path))


def fragment_rows(ds: Any) -> tuple[dict[int, int], dict[int, int]]:
    """(live rows, deleted rows) of each fragment."""
    rows, deleted = {}, {}
    for frag in ds.get_fragments():
        meta = frag.metadata
        dels = int(meta.num_deletions or 0)
        rows[frag.fragment_id] = int(meta.physical_rows or 0) - dels
        deleted[frag.fragment_id] = dels
    return rows, deleted


def unindexed_fragments(ds: Any, name: str) -> tuple[list[int], int]:
    """Fragments (and their rows) that no segment of index `name` covers yet."""
    rows, _ = fragment_rows(ds)
    covered: set[int] = set()
    for seg in segments(ds, name, rows):
        covered |= seg.fragments
    todo = sorted(f for f in rows if f not in covered and rows[f] > 0)
    return todo, sum(rows[f] for f in todo)


def update_scalar_index(
    table: Location,
    name: str,
    column: str,
    kind: str,
    *,
    what: str,
    unit: str,
    params: dict[str, Any] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[IndexWork]:
    """Index the rows of `table` no segment of `name` covers yet, in new segments of at most
    SEGMENT_BUILD_ROWS rows each (the first segments when there is no index), then merge small
    trailing segments when due.

    Building a segment holds its posting lists and its input in memory (about 1 GB per million
    passages here, whatever Lance's memory limit says), so a big table is indexed a piece at a
    time: memory stays bounded at any size, and a cancelled build loses one piece at most.
    """
    ds = open_table(table)
    todo, todo_rows = unindexed_fragments(ds, name)
    rows, _ = fragment_rows(ds)
    done = 0
    for group in _groups(todo, rows, SEGMENT_BUILD_ROWS):
        group_rows = sum(rows[f] for f in group)
        # Lance names BTree segments itself; an inverted one gets our name, so what a
        # cancelled build wrote can be found and deleted (gigabytes for a Wikipedia).
        segment_uuid = str(uuid.uuid4()) if kind == "INVERTED" else ""
        extra = {"index_uuid": segment_uuid} if segment_uuid else {}

        def build(step: Step, frags: list[int] = group, uuid_arg: dict = extra) -> None:
            ds = open_table(table)
            seg = ds.create_index_uncommitted(
                column,
                kind,
                name=name,
                replace=True,
                fragment_ids=frags,
                progress_callback=step.callback,
                **uuid_arg,
                **(params or {}),
            )
            step.check()  # built, but stopped: not published (its files are deleted below)
            ds.commit_existing_index_segments(name, column, [seg])

        try:
            for work in run_step(build, what, group_rows, unit, cancel):
                yield IndexWork(what, done + work.done, todo_rows, unit)
        except IndexCancelled:
            if segment_uuid:
                _drop_index_files(table, segment_uuid)
            raise
        done += group_rows
    yield from merge_small_segments(table, name, what=what, cancel=cancel)


def update_full_text_index(
    table: Location,
    name: str,
    column: str,
    analysis: dict[str, Any],
    *,
    what: str,
    cancel: threading.Event | None = None,
) -> Iterator[IndexWork]:
    """update_scalar_index for a full-text index of passages with `analysis` (its tokenizer
    settings), within the build memory every full-text index keeps to."""
    yield from update_scalar_index(
        table,
        name,
        column,
        "INVERTED",
        what=what,
        unit="passages",
        params={
            **analysis,
            "memory_limit": TEXT_INDEX_MEMORY_MB,
            "num_workers": compute_threads(),
        },
        cancel=cancel,
    )


def _groups(fragments: list[int], rows: dict[int, int], limit: int) -> Iterator[list[int]]:
    """Consecutive runs of `fragments` of at most `limit` rows (a bigger fragment alone)."""
    group: list[int] = []
    total = 0
    for f in fragments:
        if group and total + rows[f] > limit:
            yield group
            group, total = [], 0
        group.append(f)
        total += rows[f]
    if group:
        yield group


def merge_small_segments(
    table: Location, name: str, *, what: str, cancel: threading.Event | None = None
) -> Iterator[IndexWork]:
    """Merge the trailing small segments of index `name` into one, when there are too many."""
    ds = open_table(table)
    rows, _ = fragment_rows(ds)
    n = merge_count(segments(ds, name, rows))
    if n:
        log.info("merging the %d newest segments of %s in %s", n, name, table)

        def merge(_step: Step) -> None:
            ds.optimize.optimize_indices(index_names=[name], num_indices_to_merge=n)

        yield from run_step(merge, f"{what} (merging)", 0, "seconds", cancel)


def compact_small_fragments(
    table: Location, index_names: list[str], *, cancel: threading.Event | None = None
) -> Iterator[IndexWork]:
    """Rewrite small fragments (and ones with deleted rows) that no big segment covers, about
    COMPACTION_STEP_ROWS rows per step, with progress and a chance to stop between steps."""
    ds = open_table(table)
    rows, deleted = fragment_rows(ds)
    picked = compaction_candidates(rows, deleted, [segments(ds, n, rows) for n in index_names])
    if not picked:
        return
    total = sum(rows[f] + deleted[f] for f in picked)
    excluded = sorted(set(rows) - set(picked))
    while True:
        if cancel is not None and cancel.is_set():
            raise IndexCancelled("compaction stopped")
        current = open_table(table)
        present = {f.fragment_id for f in current.get_fragments()}
        done = sum(rows[f] + deleted[f] for f in picked if f not in present)
        yield IndexWork("compacting", done, total, "rows")

        def compact(_step: Step, d: Any = current) -> Any:
            return d.optimize.compact_files(
                target_rows_per_fragment=FRAGMENT_TARGET_ROWS,
                max_source_rows=COMPACTION_STEP_ROWS,
                materialize_deletions_threshold=0.0,
                excluded_fragment_ids=excluded,
            )

        for _ in run_step(compact, "compacting", 0, "seconds", cancel):
            yield IndexWork("compacting", done, total, "rows")
        if open_table(table).version == current.version:  # nothing left that Lance would merge
            break
    yield IndexWork("compacting", total, total, "rows")


REWRITE_BATCH_ROWS = 8_192  # rows read, cast and written at a time by rewrite_list_items


def rewrite_list_items(
    table: Location,
    column: str,
    item_type: Any,
    *,
    what: str,
    unit: str,
    cancel: threading.Event | None = None,
) -> Iterator[IndexWork]:
    """Rewrite the whole table with list column `column`'s items cast to `item_type` (float32
    vectors to float16: half their bytes), streaming, with progress by rows and a chance to stop
    between batches. One commit at the end replaces the table's rows and drops its indexes (they
    are rebuilt by the next maintenance); until then, and if stopped, the table is as it was.
    Readers mid-query keep the version they opened."""
    import pyarrow as pa
    from lance.dataset import LanceDataset
    from lance.fragment import write_fragments

    ds = open_table(table)
    field = ds.schema.field(column)
    if field.type.value_type == item_type:
        return
    new_type = pa.list_(item_type, field.type.list_size)
    schema = ds.schema.set(ds.schema.get_field_index(column), pa.field(column, new_type))
    total = int(ds.count_rows())

    def rewrite(step: Step) -> None:
        def batches() -> Iterator[Any]:
            done = 0
            for batch in ds.to_batches(batch_size=REWRITE_BATCH_ROWS):  # deleted rows left out
                step.check()
                i = batch.schema.get_field_index(column)
                yield batch.set_column(i, column, batch.column(i).cast(new_type))
                done += batch.num_rows
                step.updates.put(done)

        reader = pa.RecordBatchReader.from_batches(schema, batches())
        transaction = write_fragments(
            reader,
            str(table),
            schema=schema,
            mode="overwrite",
            return_transaction=True,
            max_rows_per_file=FRAGMENT_TARGET_ROWS * 16,
            data_storage_version=ds.data_storage_version,
        )
        step.check()
        LanceDataset.commit(str(table), transaction, read_version=ds.version)

    yield from run_step(rewrite, what, total, unit, cancel)


def drop_dead_segments(table: Location) -> int:
    """Drop the index segments that cover no fragment any more (a removed source's rows were
    theirs alone): Lance keeps them, and their files, until told. Returns how many went."""
    from lance.dataset import Index, LanceDataset, LanceOperation

    ds = open_table(table)
    live = {f.fragment_id for f in ds.get_fragments()}
    dead = [
        Index(
            uuid=str(seg.uuid),
            name=index.name,
            fields=list(index.fields),
            dataset_version=int(seg.dataset_version_at_last_update),
            fragment_ids={int(f) for f in seg.fragment_ids},  # type: ignore[arg-type]
            index_version=int(seg.index_version),
        )
        for index in ds.describe_indices()
        for seg in index.segments
        if not {int(f) for f in seg.fragment_ids} & live
    ]
    if dead:
        operation = LanceOperation.CreateIndex(new_indices=[], removed_indices=dead)
        LanceDataset.commit(str(table), operation, read_version=ds.version)
    return len(dead)


def cleanup(table: Location, older_than: timedelta) -> None:
    """Delete the files of versions older than `older_than` (readers mid-query keep theirs)."""
    ds = open_table(table)
    ds.cleanup_old_versions(older_than=older_than)


def _drop_index_files(table: Location, segment_uuid: str) -> None:
    """Delete what an abandoned build wrote (never committed, so no version refers to it)."""
    remove_tree(joined(table, "_indices", segment_uuid))


# ------------------------------------------------------------------------------ running


class Step:
    """What a step's work gets: `callback` to hand to Lance as its progress callback (it records
    the rows done, and raises to make Lance abandon the build once the step should stop), and
    `check()`, which raises IndexCancelled then — called before publishing what was built, since
    Lance ignores a callback's error raised after its work completed."""

    def __init__(self, what: str, cancel: threading.Event | None) -> None:
        self.what = what
        self.cancel = cancel
        self.stop = threading.Event()  # the consumer stopped iterating
        self.updates: queue.Queue[int | None] = queue.Queue()

    def check(self) -> None:
        if self.stop.is_set() or (self.cancel is not None and self.cancel.is_set()):
            raise IndexCancelled(f"{self.what} stopped")

    def callback(self, p: Any) -> None:
        self.check()
        if p.completed is not None and p.unit in ("rows", "vectors"):
            self.updates.put(int(p.completed))


# The vector index's IVF centroids are trained in numpy. Lance's own training took 146 s for
# 100,000 clustered 384-d vectors (316 partitions, with a PQ codebook then) on the busy 2-core
# development machine; a few iterations of spherical k-means on a sample (BLAS matrix products)
# took 1.9 s, with better recall at equal probes, and 6 s for 1 M vectors and 1,000 partitions
# (Lance then assigns and encodes every vector: 32 s there for IVF_RQ). At 10 M vectors Lance's
# own training would take hours.
KMEANS_SAMPLE_PER_PARTITION = 64
KMEANS_ITERATIONS = 10
_KMEANS_BLOCK = 8192  # sample rows compared with every centroid at once (bounds memory)


def _sample(ds: Any, column: str, rows: int) -> Any:

    return _unit_rows(ds.sample(rows, columns=[column]).column(column).combine_chunks())


def _unit_rows(vectors: Any) -> Any:
    """A fixed-size-list array of vectors (float16 or float32) as unit float32 numpy rows."""
    import numpy as np

    x = np.array(vectors.values.to_numpy(zero_copy_only=False), np.float32)
    x = x.reshape(-1, vectors.type.list_size)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def _nearest(x: Any, centroids: Any) -> Any:
    """Index of each unit row's nearest unit centroid (the largest dot product)."""
    import numpy as np

    out = np.empty(len(x), np.int64)
    for a in range(0, len(x), _KMEANS_BLOCK):
        out[a : a + _KMEANS_BLOCK] = np.argmax(x[a : a + _KMEANS_BLOCK] @ centroids.T, axis=1)
    return out


def _spread_seeds(x: Any, k: int, rng: Any, step: Step | None) -> Any:
    """k starting centroids drawn as k-means++ does (each far from those drawn before, by
    chance), from at most 20 candidates per centroid: random seeds leave a cluster without a
    centroid of its own often enough that k-means never recovers (two clusters share one)."""
    import numpy as np

    pool = x if len(x) <= 20 * k else x[rng.choice(len(x), 20 * k, replace=False)]
    seeds = np.empty((k, x.shape[1]), np.float32)
    seeds[0] = pool[rng.integers(len(pool))]
    far = np.maximum(1.0 - pool @ seeds[0], 0.0)
    for i in range(1, k):
        if step is not None and i % 64 == 0:
            step.check()
        total = float(far.sum())
        pick = rng.choice(len(pool), p=far / total) if total > 0 else rng.integers(len(pool))
        seeds[i] = pool[pick]
        far = np.minimum(far, np.maximum(1.0 - pool @ seeds[i], 0.0))
    return seeds


def _kmeans(x: Any, k: int, rng: Any, step: Step | None) -> Any:
    """k unit centroids of the unit rows of `x` (spherical k-means), KMEANS_ITERATIONS long."""
    import numpy as np

    centroids = _spread_seeds(x, k, rng, step)
    for _ in range(KMEANS_ITERATIONS):
        if step is not None:
            step.check()
        assign = _nearest(x, centroids)
        order = np.argsort(assign, kind="stable")
        counts = np.bincount(assign, minlength=k)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        used = counts > 0
        sums = np.add.reduceat(x[order], starts[used], axis=0)
        centroids[used] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
        empty = np.flatnonzero(~used)  # an empty cluster restarts from a random row
        if len(empty):
            centroids[empty] = x[rng.choice(len(x), len(empty), replace=False)]
    return centroids


def train_centroids(
    ds: Any, column: str, partitions: int, step: Step | None = None, seed: int = 0
) -> Any:
    """IVF centroids (unit vectors, partitions x dim) of `ds`'s vector `column`: spherical
    k-means on a random sample. `step.check()` between iterations honours cancel."""
    import numpy as np

    rows = int(ds.count_rows())
    x = _sample(ds, column, int(min(rows, partitions * KMEANS_SAMPLE_PER_PARTITION)))
    return _kmeans(x, min(partitions, len(x)), np.random.default_rng(seed), step)


# Rows whose partition is computed at a time (numpy, as in training): ~6 MB of float32 at 384-d.
ASSIGN_BATCH_ROWS = 4_096


def assign_partitions(ds: Any, column: str, centroids: Any, target: Path, step: Step) -> Path:
    """Every row's nearest IVF centroid, written as the (row_id, partition) dataset that Lance's
    index build takes instead of computing it (`precomputed_partition_dataset`).

    Lance computes each vector's distance to every centroid in the column's own type; with
    float16 vectors that arithmetic is emulated, and assigning 10 M vectors to 1,024 centroids
    took 40 minutes of a 67-minute build here. numpy's float32 products take seconds
    (300,000 vectors, 512 partitions: 1.5 s, then Lance's build 6.9 s, against 68 s for
    Lance alone on float16 and 16 s on float32)."""
    import lance
    import numpy as np
    import pyarrow as pa

    schema = pa.schema([("row_id", pa.uint64()), ("partition", pa.uint32())])
    units = np.asarray(centroids, np.float32)

    def batches() -> Iterator[Any]:
        done = 0
        for batch in ds.to_batches(
            columns=[column], with_row_id=True, batch_size=ASSIGN_BATCH_ROWS
        ):
            step.check()
            part = _nearest(_unit_rows(batch.column(column)), units).astype(np.uint32)
            yield pa.record_batch([batch.column("_rowid"), pa.array(part, pa.uint32())], schema)
            done += batch.num_rows
            step.updates.put(done)

    shutil.rmtree(target, ignore_errors=True)
    lance.write_dataset(
        pa.RecordBatchReader.from_batches(schema, batches()),
        str(target),
        schema=schema,
        max_rows_per_file=2**31 - 1,  # Lance reads it as one file
    )
    return target


def run_step(
    call: Callable[[Step], Any],
    what: str,
    total: int,
    unit: str,
    cancel: threading.Event | None,
) -> Iterator[IndexWork]:
    """Run `call(step)` on a thread; yield IndexWork at least every 0.2 s until it ends.

    With `total` 0 the work is reported in elapsed seconds.
    """
    step = Step(what, cancel)
    updates = step.updates
    outcome: dict[str, BaseException] = {}

    def work() -> None:
        try:
            step.check()
            call(step)
        except BaseException as exc:  # noqa: BLE001 - handed to the generator to raise
            outcome["error"] = exc
        finally:
            updates.put(None)

    thread = threading.Thread(target=work, name="librarian-index", daemon=True)
    started = time.monotonic()
    done = 0
    thread.start()
    try:
        yield IndexWork(what, 0, total, unit if total else "seconds")
        while True:
            try:
                item = updates.get(timeout=0.2)
            except queue.Empty:
                item = -1
            if item is None:
                break
            if item >= 0:
                done = max(done, min(item, total) if total else 0)
            if total:
                yield IndexWork(what, done, total, unit)
            else:
                yield IndexWork(what, int(time.monotonic() - started), 0, "seconds")
    finally:
        step.stop.set()
        thread.join()
    error = outcome.get("error")
    if error is not None:
        if isinstance(error, IndexCancelled) or (cancel is not None and cancel.is_set()):
            raise IndexCancelled(f"{what} stopped") from None
        if isinstance(error, IngestError):
            raise error
        raise StoreError(f"Building the {what} failed: {error}") from error
    if total:
        yield IndexWork(what, total, total, unit)


def drain(steps: Iterator[IndexWork]) -> None:
    """Run index steps to the end without watching them (tests, small libraries)."""
    for _ in steps:
        pass
