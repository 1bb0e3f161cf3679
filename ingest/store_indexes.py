"""The library's indexes kept up to date (the full-text, vector and id indexes), and the
maintenance after a run: LibraryStore's index upkeep (see ingest.indexes for the Lance side)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest import indexes as ix
from ingest.indexes import IndexWork
from ingest.library_location import Location, table_location

log = logging.getLogger(__name__)

# Exact (flat) vector search costs about 1.6 ms per thousand 384-d vectors on the 2-core
# development machine: median of 20 queries with a source filter, through LanceDB, on clustered
# unit vectors — 10k: 15 ms, 50k: 76 ms, 100k: 158 ms, 200k: 345 ms, 400k: 810 ms. Past ~50k
# vectors a hybrid search (vector + BM25 + chunk lookup) stops feeling instant, so the IVF index
# is built from there on. Measured with the script in bench/ingest.py (`--vector-search`).
VECTOR_INDEX_THRESHOLD = 50_000
# The vector index: IVF with RaBitQ codes of VECTOR_RQ_BITS bits per dimension (192 bytes per
# 384-d vector), probing an eighth of the partitions (at least 20, at most VECTOR_MAX_PROBES),
# the best VECTOR_REFINE_ROWS[kind] candidates re-ranked with the exact vectors whatever the
# limit.
# IVF_PQ (48 one-byte codes) was the first choice; its distances were too coarse at scale:
# recall@10 at 10 M vectors (1,024 partitions, bench/scale.py, 60 queries) 0.90 with 400 rows
# re-ranked, 0.94 with 800, 0.97 with 1,600, at 32, 64 or 128 probes alike — and the 800
# random reads from a 15 GB vector file were most of its 66 ms. RaBitQ at 4 bits: recall@10
# 0.998 with 40 rows re-ranked over 1 M vectors (PQ: 0.88 with 100, 0.98 with 400), and at
# 10 M 1.00 with 40 (p50 34 ms with the index in memory and the raw vectors not) or 100 (40 ms);
# at 100 k an eighth of the partitions gave 0.995, a sixteenth 0.957. A library whose index
# predates this keeps its IVF_PQ settings until maintenance rebuilds it as IVF_RQ.
VECTOR_INDEX_KIND = "IVF_RQ"
VECTOR_RQ_BITS = 4
VECTOR_REFINE_ROWS = {"IVF_RQ": 40, "IVF_PQ": 800}
# Probes at most: each reads its partition's codes (~1.9 MB at 10 M vectors: 9,800 vectors of
# 192 bytes), so a question reads 240 MB of codes at 128 probes, 120 MB at 64. At 10 M vectors
# (1,024 partitions, bench/scale.py's 60 queries) recall@10 was 1.000 at 128, 64 and 48
# probes, 0.993 at 32.
VECTOR_MAX_PROBES = 64
# Every vector is compared with every centroid when the index is built: past ~1 M vectors that
# comparison, not the training, is the build's cost, so partitions stop growing there (at 50 M
# vectors a query then scans its probes' ~50,000 codes each, still milliseconds).
MAX_PARTITIONS = 1024


class IndexMixin:
    """LibraryStore's index upkeep (the store's own attributes are declared for the checker)."""

    if TYPE_CHECKING:
        path: Path
        location: Location
        _chunks: Any
        _sources: Any
        _meta: Any
        _terms: Any

        def _table_names(self) -> list[str]: ...
        def meta(self) -> dict[str, str]: ...
        def _set_meta(self, **values: str) -> None: ...
        def _require_writer(self) -> None: ...
        def _vector_table(self, create_dim: int | None = None) -> Any: ...
        def _drop_dead_index_segments(self) -> None: ...
        def terms_index_updates(
            self, cancel: threading.Event | None = None
        ) -> Iterator[IndexWork]: ...
        def terms_maintenance(
            self, cancel: threading.Event | None = None
        ) -> Iterator[IndexWork]: ...
        def terms_backfill_pending(self) -> list[Any]: ...

    def _table_path(self, name: str) -> Location:
        return table_location(self.location, name)

    def _row_tables(self) -> list[Location]:
        """Where the passage, vector and terms tables are, of those the library has (one
        listing: on an object store each is a request)."""
        present = set(self._table_names())
        return [self._table_path(n) for n in ("chunks", "vectors", "terms") if n in present]

    def text_index_updates(self, cancel: threading.Event | None = None) -> Iterator[IndexWork]:
        """Index the passages no keyword index covers yet (the first time: all of them), with
        progress; see ingest.indexes for why new rows get a segment of their own."""
        self._require_writer()
        if self._chunks.count_rows() == 0:
            return
        chunks = self._table_path("chunks")
        yield from ix.update_full_text_index(
            chunks, ix.TEXT_INDEX, "text", ix.TEXT_INDEX_PARAMS, what="keyword index", cancel=cancel
        )
        yield from self.terms_index_updates(cancel)
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
            yield from self.terms_maintenance(cancel)
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
        for table in self._row_tables():
            ix.cleanup(table, cleanup_after)
        self._checkout_latest()
        self._meta.delete("key = 'maintenance_due'")

    def mark_maintenance_due(self) -> None:
        """Record that maintenance should run (it survives a cancelled or killed run)."""
        if self.meta().get("maintenance_due") != "1":
            self._set_meta(maintenance_due="1")

    def maintenance_due(self) -> bool:
        """Asked for (mark_maintenance_due), or sources read by an older version need their
        terms made (ingest.store_terms)."""
        return self.meta().get("maintenance_due") == "1" or bool(self.terms_backfill_pending())

    def maintain(self, cleanup_after: timedelta = timedelta(seconds=30)) -> None:
        """`maintenance` run to the end without watching it."""
        ix.drain(self.maintenance(cleanup_after=cleanup_after))

    def _checkout_latest(self) -> None:
        """Let this object's LanceDB tables see what Lance wrote behind their back."""
        for t in (self._chunks, self._vector_table(), self._terms):
            if t is not None:
                with contextlib.suppress(Exception):
                    t.checkout_latest()

    def _vector_index_updates(
        self, vectors: Location, cancel: threading.Event | None
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

            ivf: dict[str, Any] = {}  # the centroids, from the first step to the second
            assigned = self.path / "cache" / "vector-partitions.lance"

            def assign(step: ix.Step) -> None:
                ivf["centroids"] = ix.train_centroids(ds, "vector", partitions, step)
                step.check()
                ix.assign_partitions(ds, "vector", ivf["centroids"], assigned, step)

            def build(step: ix.Step) -> None:
                centroids = ivf["centroids"]
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
        return min(VECTOR_MAX_PROBES, max(20, partitions // 8))


def _id_indexes(
    table: Location, ids: str, sources: str, unit: str, cancel: threading.Event | None
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
