"""The parser processes of an ingest run (spawned, one per core): each reads a range of a
source's documents in the archive's own order, cleans their HTML and cuts them into chunks, and
hands the rows back as one Arrow buffer."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest.chunking import chunk_document
from ingest.errors import SourceError
from ingest.log_file import attach_inherited
from ingest.records import CHUNK_COLUMNS, chunks_schema
from ingest.terms import index_terms

log = logging.getLogger("ingest.pipeline")  # what a parser logs is the pipeline's

# One task for a worker process: (path, source_id, start, stop, saved ZIM reading order or "",
# passage size in tokens).
Task = tuple[str, str, int, "int | None", str, int]

_WORKER_STATE: dict[str, Any] = {}


def worker_init() -> None:
    """Parser processes yield to the main process (the writer, the window) when cores are
    scarce: they are the many, it is the one the others wait for."""
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(5)
    attach_inherited()  # what goes wrong here lands in the app's log file
    # What readers warn about is said once, by the main process: it opens every source itself
    # to plan, and damaged documents come back with each task's rows.
    logging.getLogger("ingest.readers").setLevel(logging.ERROR)


def _worker_reader(path: str, order_file: str) -> Any:
    """The worker's open reader of `path` (one source at a time per worker).

    A ZIM opens with the reading order the main process saved, so a worker never parses the
    directory (20 M entries for a Wikipedia) itself, however its tasks jump around the archive.
    """
    from ingest.readers import open_source

    if _WORKER_STATE.get("path") != path:
        old = _WORKER_STATE.pop("reader", None)
        if old is not None:
            old.close()
        _WORKER_STATE.clear()
        # A cluster's worker on another machine cannot see the order a driver saved in its
        # own state folder (a library on an object store): it works the same order out once.
        if order_file and Path(order_file).is_file():
            from ingest.readers.zim import ReadingOrder, ZimReader

            reader: Any = ZimReader(path, order=ReadingOrder.load(Path(order_file)))
        else:
            reader = open_source(path)
        # The language its file gives: passages in a Latin-script language other than English
        # get their stemmed words for the terms index (ingest.terms.index_terms).
        language = reader.language
        _WORKER_STATE.update(
            path=path, reader=reader, iter=None, next=-1, ahead=None, language=language
        )
    return _WORKER_STATE["reader"]


def parse_range(task: Task) -> tuple[int, bytes, str, list[str]]:
    """In a worker: chunk documents [start, stop) of a source.

    Returns (next ordinal to read, or -1 when the source is exhausted; the chunk rows as an
    Arrow IPC stream; an error or ""; the documents skipped as damaged). A task that continues
    where the worker's last one stopped continues the same document iterator.
    """
    from ingest.html_text import html_to_text

    path, source_id, start, stop, order_file, max_tokens = task
    cols: dict[str, list[Any]] = {name: [] for name in CHUNK_COLUMNS}
    next_ordinal = start
    language = ""
    try:
        reader = _worker_reader(path, order_file)
        language = _WORKER_STATE["language"]
        state = _WORKER_STATE
        if state["next"] != start or state["iter"] is None:
            state.update(iter=reader.documents(start), next=start, ahead=None)
        while True:
            doc = state["ahead"]
            state["ahead"] = None
            if doc is None:
                doc = next(state["iter"], None)
            if doc is None:
                state["next"] = -1  # exhausted
                return (
                    (-1 if stop is None else stop),
                    _ipc(cols, language),
                    "",
                    _damaged(reader, start, stop),
                )
            if stop is not None and doc.ordinal >= stop:
                state["ahead"] = doc
                state["next"] = stop
                return stop, _ipc(cols, language), "", _damaged(reader, start, stop)
            text = html_to_text(doc.html, doc.title)
            for chunk in chunk_document(
                source_id, doc.ordinal, doc.doc_id, text, max_tokens=max_tokens
            ):
                loc = chunk.locator
                cols["chunk_id"].append(chunk.chunk_id)
                cols["source_id"].append(source_id)
                cols["doc_id"].append(loc.doc_id)
                cols["title"].append(loc.title)
                cols["section"].append(loc.section)
                cols["ordinal"].append(loc.ordinal)
                cols["chunk_index"].append(loc.chunk_index)
                cols["start"].append(loc.start)
                cols["end"].append(loc.end)
                cols["text"].append(chunk.text)
            next_ordinal = doc.ordinal + 1
            state["next"] = next_ordinal
    except SourceError as exc:
        _WORKER_STATE.clear()
        return next_ordinal, _ipc(cols, language), exc.reason, []
    except Exception as exc:  # noqa: BLE001 - a damaged file must fail its source, not the run
        _WORKER_STATE.clear()
        # the user reads the reason in the result line; the trace is for a bug report (-v)
        log.info("reading %s failed", path, exc_info=True)
        return (
            next_ordinal,
            _ipc(cols, language),
            f"could not be read ({type(exc).__name__}: {exc})",
            [],
        )


def _damaged(reader: Any, start: int, stop: int | None) -> list[str]:
    """The documents of [start, stop) the reader skipped as damaged, taken out of it: each is
    counted by the task whose range holds it, however far the reader's iterator ran (past
    `stop` through damaged documents) and however often a range was read again."""
    damaged: dict[int, str] = reader.damaged
    mine = [
        k for k in damaged if (k < 0 and start == 0) or (start <= k and (stop is None or k < stop))
    ]
    return [damaged.pop(k) for k in sorted(mine)]


def _ipc(cols: dict[str, list[Any]], language: str) -> bytes:
    """Chunk rows as one Arrow IPC buffer: cheap to pickle, no per-row Python objects in the
    main process; with each text's words for the second keyword index (ingest.store_terms),
    made here, in the parser processes, not by the writer, for the source's `language`."""
    table = pa.table(cols, schema=chunks_schema())
    terms = [index_terms(text, (language,)) for text in cols["text"]]
    table = table.append_column("terms", pa.array(terms, pa.string()))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_rows(buffer: bytes) -> pa.Table:
    return pa.ipc.open_stream(buffer).read_all()
