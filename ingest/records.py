"""The library's rows as Python sees them: the chunk, vector and source schemas, a source's
record, a search hit, and the ids that tie them together."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest.documents import Locator
from ingest.events import VISIBLE_STAGES, SourceStage
from ingest.file_names import real_path, shown, stored_path

# Stored vectors are float16: half of float32's 1,536 bytes per 384-d passage. Rounding moves a
# unit vector's cosine to another by ~1e-4, far below the gaps between neighbours (real MiniLM
# neighbours sit 0.01-0.1 apart); at 10 M passages the vector file then fits in the memory a
# float32 one overflowed (15 GB -> 7.7 GB), which is what random re-rank reads needed.
VECTOR_ITEM_TYPE = pa.float16()

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


READ_COLUMNS = [c for c in CHUNK_COLUMNS if c != "source_id"]  # see SearchMixin._chunk_rows


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
    chunker: str = ""  # ingest.chunking.CHUNKER_VERSION it was read with ("": before versions)
    lead_ordinal: int = 0  # the first passage of each document below it has its vector (stage 2)

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


def record_from_row(row: dict[str, Any]) -> SourceRecord:
    """A sources row as a record (columns an older library lacks take their defaults)."""
    values = {f.name: row.get(f.name) for f in fields(SourceRecord)}
    record = SourceRecord(**{k: v for k, v in values.items() if v is not None})
    return replace(record, path=real_path(record.path), identity=real_path(record.identity))


def storable(values: dict[str, Any]) -> dict[str, Any]:
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
    language: str = ""  # the source's (ISO 639-1), "" when not known


def source_of(chunk_id: str) -> str:
    """The source id a chunk id starts with ("{source_id}:{ordinal}:{chunk_index}")."""
    return chunk_id.partition(":")[0]


# A document's first passage (its lead: a Wikipedia article's summary) is chunk 0 of it; in the
# vector table and in vector packs, which have no chunk_index, its chunk id ends so.
LEAD_CHUNK = "chunk_index = 0"
LEAD_ID_SUFFIX = ":0"
LEAD_VECTOR = f"chunk_id LIKE '%{LEAD_ID_SUFFIX}'"


def source_rows(source_id: str, from_ordinal: int = 0, before_ordinal: int | None = None) -> str:
    """The filter for a source's rows (chunks, vectors, terms) of documents [from_ordinal,
    before_ordinal): what checkpoints, resumes and vector packs select and delete."""
    where = f"source_id = {quote(source_id)}"
    if from_ordinal > 0:
        where += f" AND ordinal >= {int(from_ordinal)}"
    if before_ordinal is not None:
        where += f" AND ordinal < {int(before_ordinal)}"
    return where


def source_id_for(identity: str) -> str:
    """A short stable id from a source's identity (same file, same id, in every run)."""
    return hashlib.sha1(identity.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def in_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(quote(v) for v in values) + ")"
