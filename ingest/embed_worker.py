"""The embedder thread of an ingest run: turns written chunk batches into vectors while the
parsers read on (see ingest.pipeline), or reads a source's chunks back from the store to embed
them (a resumed run, or a feed that fell too far behind)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ingest.chunking import embedding_text
from ingest.embedding import Embedder
from ingest.library_location import Location, state_folder
from ingest.query_vectors import QueryVectors
from ingest.records import LEAD_CHUNK
from ingest.store import LibraryStore, document_slices

log = logging.getLogger("ingest.pipeline")

# Rows per embedder batch, each one vector commit and checkpoint. Passages fed as they are read
# go EMBED_FEED_ROWS at a time: sorted by length within a batch, they pad little (1,000
# articles on 2 cores: 0.95 of a bare encode; batches of 256-1,024 rows gave 0.80-0.84).
# What a resumed run embeds (read back from the store) is committed about every
# EMBED_COMMIT_SECONDS of the embedder's measured work (EMBED_FIRST_ROWS before it is
# measured): a run killed again and again must still get on (4,096 rows are 100 s on a
# 2-core CPU; five kills during embedding each kept nothing).
EMBED_FEED_ROWS = 4096
EMBED_FIRST_ROWS = 512
EMBED_COMMIT_SECONDS = 30.0
EMBED_SUB_BATCH = 256  # texts per embedder call: progress granularity and cancel latency


@dataclass
class EmbedBatch:
    source_id: str
    chunk_ids: list[str]
    ordinals: list[int]
    texts: list[str]
    end_ordinal: int  # every chunk of documents below this is in this batch or an earlier one


@dataclass
class EmbedScan:
    """Embed a source's chunks of documents [from_ordinal, end_ordinal) read back from the
    store. With `leads_first`, the first passage of every document from `lead_from` on goes
    first (Embedded.lead), then the rest; the first passages of documents below `leads_below`
    have their vectors already and are skipped."""

    source_id: str
    from_ordinal: int
    end_ordinal: int
    lead_from: int = 0
    leads_first: bool = False
    leads_below: int = 0


@dataclass
class Embedded:
    source_id: str
    chunk_ids: list[str]
    ordinals: list[int]
    vectors: np.ndarray
    end_ordinal: int
    lead: bool = False  # first passages only: end_ordinal is the `lead_ordinal` checkpoint


def feed_batches(table: pa.Table, rows: int, end_ordinal: int) -> Iterator[tuple[pa.Table, int]]:
    """`table` in slices of about `rows` that end at document ends, each with the ordinal below
    which every chunk is in it or an earlier slice (the last one: `end_ordinal`)."""
    slices = list(document_slices(table, rows))
    for i, part in enumerate(slices):
        end = end_ordinal if i == len(slices) - 1 else int(slices[i + 1]["ordinal"][0].as_py())
        yield part, end


def batch_from_table(source_id: str, table: pa.Table, end_ordinal: int) -> EmbedBatch:
    titles = table.column("title").to_pylist()
    sections = table.column("section").to_pylist()
    texts = table.column("text").to_pylist()
    return EmbedBatch(
        source_id=source_id,
        chunk_ids=table.column("chunk_id").to_pylist(),
        ordinals=table.column("ordinal").to_pylist(),
        texts=[embedding_text(t, s, x) for t, s, x in zip(titles, sections, texts, strict=True)],
        end_ordinal=end_ordinal,
    )


class EmbedWorker(threading.Thread):
    """Embeds batches in order; torch releases the GIL, so this overlaps the main thread's
    parsing and writes."""

    def __init__(
        self, embedder: Embedder, library: Location, prepare: Callable[[], None] | None = None
    ) -> None:
        super().__init__(name="librarian-embedder", daemon=True)
        self.embedder = embedder
        # run on this thread before the first batch (a cluster's embedder places its actors)
        self._prepare = prepare
        self.library = library  # reopened on this thread to read passages back
        self._kept: QueryVectors | None = None  # made on this thread: `dim` may load the model
        self.inbox: queue.Queue[EmbedBatch | EmbedScan | None] = queue.Queue()
        self.outbox: queue.Queue[Embedded | BaseException] = queue.Queue()
        self.stop = threading.Event()
        self.in_flight: dict[str, int] = {}  # chunks embedded but not yet handed over
        self.busy = 0.0  # seconds inside embed()
        self.embedded_rows = 0
        self.idle = 0.0  # seconds waiting for work while work was expected
        self._lock = threading.Lock()
        self._queued = 0  # rows in the inbox

    def put(self, batch: EmbedBatch) -> None:
        with self._lock:
            self._queued += len(batch.texts)
        self.inbox.put(batch)

    def queued_rows(self) -> int:
        with self._lock:
            return self._queued

    def commit_rows(self) -> int:
        """Rows per batch: about EMBED_COMMIT_SECONDS of this embedder's measured work."""
        if self.embedded_rows < EMBED_SUB_BATCH or self.busy <= 0:
            return EMBED_FIRST_ROWS
        rows = int(self.embedded_rows / self.busy * EMBED_COMMIT_SECONDS)
        rows = -(-rows // EMBED_SUB_BATCH) * EMBED_SUB_BATCH  # whole sub-batches
        return max(EMBED_SUB_BATCH, min(EMBED_FEED_ROWS, rows))

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                item = self.inbox.get()
                self.idle += time.perf_counter() - t0
                if item is None:
                    return
                if self._prepare is not None:
                    self._prepare()
                    self._prepare = None
                if isinstance(item, EmbedScan):
                    leads_below = item.leads_below
                    if item.leads_first:
                        if not self._scan(item, item.lead_from, LEAD_CHUNK, lead=True):
                            return
                        leads_below = item.end_ordinal
                    skip = f"NOT ({LEAD_CHUNK} AND ordinal < {leads_below})"
                    if not self._scan(item, item.from_ordinal, skip if leads_below else ""):
                        return
                else:
                    with self._lock:
                        self._queued -= len(item.texts)
                    self._embed(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread to report
            self.outbox.put(exc)

    def _scan(self, item: EmbedScan, start: int, only: str, lead: bool = False) -> bool:
        """Embed the chunks of documents [start, item.end_ordinal) that meet `only`, read back
        from the store, then mark the end (False: stopped)."""
        reader = LibraryStore(self.library)
        for table in reader.iter_chunks(item.source_id, start, item.end_ordinal, only=only):
            if self.stop.is_set():
                return False
            last = int(table.column("ordinal")[-1].as_py()) + 1
            # the final window covers documents up to the source's end
            end = last if last < item.end_ordinal else item.end_ordinal
            for part, part_end in feed_batches(table, self.commit_rows(), end):
                if self.stop.is_set():
                    return False
                self._embed(batch_from_table(item.source_id, part, part_end), lead)
        empty = np.zeros((0, 1), np.float32)
        self.outbox.put(Embedded(item.source_id, [], [], empty, item.end_ordinal, lead))
        return True

    def _embed(self, batch: EmbedBatch, lead: bool = False) -> None:
        vectors = np.zeros((len(batch.texts), self.embedder.dim), np.float32)
        # Passages a search embedded already (ingest.query_vectors) are not embedded again.
        if self._kept is None:
            self._kept = QueryVectors(
                state_folder(self.library), self.embedder.name, self.embedder.dim
            )
        kept = self._kept.lookup(batch.chunk_ids)
        for i, chunk_id in enumerate(batch.chunk_ids):
            if chunk_id in kept:
                vectors[i] = kept[chunk_id]
        # Sub-batches of similar length, as the model pads every text to the longest of its
        # batch: without this the pipeline pays for padding that one big encode() avoids.
        todo = [i for i, chunk_id in enumerate(batch.chunk_ids) if chunk_id not in kept]
        order = sorted(todo, key=lambda i: -len(batch.texts[i]))
        # A GPU takes its whole batch at once; a CPU a sub-batch (progress, cancel).
        step = max(EMBED_SUB_BATCH, int(getattr(self.embedder, "batch_size", 0) or 0))
        for i in range(0, len(order), step):
            if self.stop.is_set():
                return
            picked = order[i : i + step]
            t0 = time.perf_counter()
            vectors[picked] = self.embedder.embed([batch.texts[j] for j in picked])
            self.busy += time.perf_counter() - t0
            self.embedded_rows += len(picked)
            with self._lock:
                self.in_flight[batch.source_id] = self.in_flight.get(batch.source_id, 0) + len(
                    picked
                )
        with self._lock:
            self.in_flight[batch.source_id] = self.in_flight.get(batch.source_id, 0) - len(order)
        self.outbox.put(
            Embedded(
                batch.source_id, batch.chunk_ids, batch.ordinals, vectors, batch.end_ordinal, lead
            )
        )


# ---------------------------------------------------------------------------------- the run
