"""LibraryStore's vectors: the embedder they were made with (one per library, never mixed),
the table that holds them (float16; see ingest.records.VECTOR_ITEM_TYPE), writing, counting and
dropping them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ingest import query_vectors, records
from ingest.errors import EmbedderMismatch, StoreError
from ingest.lance_import import forget_lance_session
from ingest.records import LEAD_VECTOR, SourceRecord, source_rows, vectors_schema
from ingest.tables import create_or_open, open_listed

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

    from ingest.embedding import Embedder


SCAN_BATCH_ROWS = 16_384  # rows per batch of a scan (scan_vectors, LibraryStore.scan_chunks)


class VectorsMixin:
    """LibraryStore's vectors (the store's own attributes are declared for the checker)."""

    if TYPE_CHECKING:
        embedder: Embedder | None
        path: Path
        _db: Any
        _meta: Any
        _vectors: Any

        def meta(self) -> dict[str, str]: ...
        def _set_meta(self, **values: str) -> None: ...
        def _require_writer(self) -> None: ...
        def _table_names(self) -> list[str]: ...
        def writing(self, timeout: float | None = 30.0) -> AbstractContextManager[None]: ...
        def sources(self) -> list[SourceRecord]: ...
        def update_source(self, source_id: str, **values: Any) -> None: ...

    def recorded_embedder_folder(self) -> str | None:
        """The model folder the store's vectors were made with, when it is not the bundled
        embedder and still exists (`librarian search` and `ask` use it when not told)."""
        folder = self.meta().get("embedder_folder") or ""
        return folder if folder and Path(folder).is_dir() else None

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

    def reset_vectors(self, embedder: Embedder) -> None:
        """Drop every vector and record `embedder`; sources go back to stage "embedding"."""
        with self.writing():
            if "vectors" in self._table_names():
                self._db.drop_table("vectors")
                forget_lance_session()
            self._vectors = None
            query_vectors.drop_all(self.path)
            self._set_meta(**_embedder_meta(embedder))
            self._meta.delete("key = 'vector_index_rows'")
            for rec in self.sources():
                if rec.stage in ("embedding", "ready"):
                    self.update_source(
                        rec.source_id,
                        stage="embedding",
                        embedded=0,
                        embed_ordinal=0,
                        lead_ordinal=0,
                        embedder=embedder.name,
                    )
            self.embedder = embedder

    def record_embedder(self, name: str, dim: int) -> None:
        """Record the embedder of a store that has no vectors yet (a vector pack's)."""
        self._require_writer()
        if self.recorded_embedder() is None:
            self._set_meta(embedder=name, embedder_dim=str(dim))

    def vector_table_for(self, dim: int) -> Any:
        """The vector table, created for `dim`-dimensional vectors if there is none yet."""
        self._require_writer()
        return self._vector_table(create_dim=dim)

    def scan_vectors(self, where: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
        """The vector rows `where` selects, in batches, in table order (no sort: any size)."""
        table = self._vector_table()
        if table is not None:
            yield from table.to_lance().to_batches(
                filter=where, columns=columns, batch_size=SCAN_BATCH_ROWS
            )

    def _vector_table(self, create_dim: int | None = None) -> Any:
        if self._vectors is None:
            if "vectors" in self._table_names():
                self._vectors = open_listed(self._db, "vectors")
            if self._vectors is None and create_dim is not None:
                self._vectors = create_or_open(self._db, "vectors", vectors_schema(create_dim))
        return self._vectors

    def delete_vectors(
        self, source_id: str, from_ordinal: int = 0, keep_leads_below: int = 0
    ) -> None:
        """Delete a source's vectors of documents from `from_ordinal` on, but those of the
        documents' first passages below `keep_leads_below` (stage 2's first pass wrote them)."""
        self._require_writer()
        table = self._vector_table()
        if table is None:
            return
        where = source_rows(source_id, from_ordinal)
        if keep_leads_below > from_ordinal:
            where += f" AND NOT ({LEAD_VECTOR} AND ordinal < {int(keep_leads_below)})"
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
            self._set_meta(**_embedder_meta(self.embedder))
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
        if table is None:
            return records.VECTOR_ITEM_TYPE
        return table.schema.field("vector").type.value_type

    def vector_count(self, source_id: str | None = None, before_ordinal: int | None = None) -> int:
        """Vectors in the library, of one source, or of its documents before an ordinal."""
        table = self._vector_table()
        if table is None:
            return 0
        if source_id is None:
            return int(table.count_rows())
        return int(table.count_rows(source_rows(source_id, before_ordinal=before_ordinal)))


def _embedder_meta(embedder: Embedder) -> dict[str, str]:
    """What the store records of the embedder its vectors come from: the name and dimension
    (vectors of another never mix) and, for a model the user chose, its folder."""
    from ingest.embedding import DEFAULT_MODEL_NAME

    folder = getattr(embedder, "model_dir", None)
    chosen = folder is not None and embedder.name != DEFAULT_MODEL_NAME
    return {
        "embedder": embedder.name,
        "embedder_dim": str(embedder.dim),
        "embedder_folder": str(Path(str(folder)).resolve()) if chosen else "",
    }
