"""SourceListModel: the library's sources as table rows — stored records merged with live
progress."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from ingest.events import UNFINISHED_STAGES, VISIBLE_STAGES, damaged_words
from ingest.file_names import kind_from_name, same_file, shown

Index = QModelIndex | QPersistentModelIndex

STAGE_ORDER = {"reading": 0, "keyword": 1, "embedding": 2, "ready": 3, "failed": 4}


@dataclass
class Progress:
    """The latest progress event of a source being ingested."""

    stage: str
    done: int
    total: int
    rate: float = 0.0
    eta: float | None = None
    unit: str = ""
    step: str = ""  # in the "indexing" stage: "keyword index", "compacting", …


@dataclass
class SourceRow:
    """One source as the library table shows it."""

    key: str  # the resolved file path: the same for a stored record and for live progress
    source_id: str = ""
    kind: str = ""
    title: str = ""
    size: int = 0
    chunks: int = 0
    embedded: int = 0
    stage: str = "reading"
    error: str = ""
    progress: Progress | None = None
    paused: bool = False
    queued: bool = False
    damaged: int = 0  # documents skipped as damaged, and the first of them
    damaged_names: list[str] = field(default_factory=list)


path_key = same_file  # a source's key in the window: its file, one spelling


def human_size(size: int) -> str:
    if size <= 0:
        return ""
    units = ["B", "KB", "MB", "GB", "TB"]
    power = min(int(math.log(size, 1024)), len(units) - 1)
    value = size / 1024**power
    return (
        f"{value:.0f} {units[power]}"
        if power == 0 or value >= 10
        else f"{value:.1f} {units[power]}"
    )


def human_eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0 or math.isinf(seconds) or math.isnan(seconds):
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


def status_text(row: SourceRow) -> str:
    """The status column: keyword-searchable / embedding n% / ready / failed with its reason."""
    if row.stage == "failed" or row.error:
        return f"Failed: {row.error or 'unknown error'}"
    if row.paused:
        return "Paused" + (f" · {embedded_percent(row)}% embedded" if row.chunks else "")
    p = row.progress
    if p is not None:
        speed = f" · {p.rate:,.0f} {p.unit or 'passages'}/s" if p.rate > 0 and p.total else ""
        eta = human_eta(p.eta)
        eta = f" · {eta} left" if eta else ""
        pct = int(100 * p.done / p.total) if p.total else 0
        if p.stage == "embedding":
            return f"Keyword-searchable · embedding {pct}%{speed}{eta}"
        if p.stage in ("reading", "keyword"):
            counted = f" {pct}%" if p.total else ""
            unit = f" ({p.done:,} of {p.total:,} {p.unit})" if p.total and p.unit else ""
            return f"Reading{counted}{unit}{speed}{eta}"
        if p.stage == "indexing":
            return indexing_text(p)
        return p.stage.capitalize()
    lost = f" · {damaged_words(row.damaged, row.key)} skipped" if row.damaged else ""
    if row.stage == "ready":
        return "Ready" + lost
    if row.stage in ("keyword", "embedding"):
        waiting = " (waiting)" if row.queued else ""
        return f"Keyword-searchable · embedding {embedded_percent(row)}%{waiting}{lost}"
    return "Waiting to be read" if row.queued else "Not read yet"


def indexing_text(p: Progress) -> str:
    """An index step in words: "Building the keyword index 45% · 2 min left"."""
    step = p.step or "index"
    if not p.total:  # a step Lance reports no progress for: say how long it has run
        return f"{step.capitalize()}… {human_eta(p.done) or '0 s'}"
    pct = int(100 * p.done / p.total)
    eta = human_eta(p.eta)
    what = f"Building the {step}" if "index" in step else step.capitalize()
    return f"{what} {pct}%" + (f" · {eta} left" if eta else "")


def embedded_percent(row: SourceRow) -> int:
    return int(100 * row.embedded / row.chunks) if row.chunks else 0


def progress_fraction(row: SourceRow) -> float | None:
    """0…1 for the progress bar of the status column; None when no bar is due."""
    if row.stage == "failed" or row.error:
        return None
    if row.progress is not None and row.progress.total:
        return min(1.0, row.progress.done / row.progress.total)
    if row.stage in ("keyword", "embedding") and row.chunks:
        return row.embedded / row.chunks
    return None


class SourceListModel(QAbstractTableModel):
    """Rows: title (checkable: does a chat search it?), kind, size, passages, status."""

    selection_changed = Signal()

    COLUMNS = ("Title", "Kind", "Size", "Passages", "Status")
    TITLE, KIND, SIZE, CHUNKS, STATUS = range(5)
    RowRole = Qt.ItemDataRole.UserRole + 1
    FractionRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[SourceRow] = []
        self._unchecked: set[str] = set()

    # --- feeding -----------------------------------------------------------------------------

    def set_records(self, records: list[Any]) -> None:
        """Replace the stored part with `records` (SourceRecords), keeping live progress."""
        by_key = {r.key: r for r in self._rows}
        rows: list[SourceRow] = []
        seen: set[str] = set()
        for rec in records:
            key = path_key(getattr(rec, "path", "") or getattr(rec, "source_id", ""))
            old = by_key.get(key)
            row = SourceRow(
                key=key,
                source_id=str(getattr(rec, "source_id", "")),
                kind=str(getattr(rec, "kind", "")),
                title=shown(str(getattr(rec, "title", "") or Path(key).name)),
                size=int(getattr(rec, "size", 0) or 0),
                chunks=int(getattr(rec, "chunks", 0) or 0),
                embedded=int(getattr(rec, "embedded", 0) or 0),
                stage=str(getattr(rec, "stage", "ready") or "ready"),
                error=str(getattr(rec, "error", "") or ""),
                damaged=int(getattr(rec, "damaged", 0) or 0),
                damaged_names=list(getattr(rec, "damaged_list", []) or []),
            )
            if old is not None:
                row.progress, row.paused, row.queued = old.progress, old.paused, old.queued
                if row.stage == "ready":
                    row.progress, row.queued = None, False
            rows.append(row)
            seen.add(key)
        # Sources the store does not list yet (being read, or failed before being recorded).
        rows += [
            r
            for r in self._rows
            if r.key not in seen and (r.progress or r.queued or r.error or r.paused)
        ]
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def mark_queued(self, paths: list[str]) -> None:
        for p in paths:
            row = self._ensure(path_key(p))
            row.queued, row.paused = True, False
            if row.stage == "failed":
                row.stage, row.error = "reading", ""
            self._changed(row)

    def set_progress(self, path: str, progress: Progress | None) -> None:
        row = self._ensure(path_key(path))
        row.progress = progress
        if progress is not None:
            row.queued = False
            if progress.stage == "embedding" and row.stage in ("reading", "keyword"):
                row.stage = "embedding"
            if progress.stage == "embedding":
                row.chunks = max(row.chunks, progress.total)
                row.embedded = progress.done
        self._changed(row)

    def set_failed(self, path: str, error: str) -> None:
        row = self._ensure(path_key(path))
        row.stage, row.error, row.progress, row.queued = "failed", error, None, False
        self._changed(row)

    def set_paused(self, path: str, paused: bool) -> None:
        row = self._ensure(path_key(path))
        row.paused, row.progress = paused, None
        if paused:
            row.queued = False
        self._changed(row)

    def set_all_paused(self, paused: bool) -> None:
        """Pause shows on every source that is not finished (the pipeline stops as a whole)."""
        for row in self._rows:
            unfinished = row.stage in UNFINISHED_STAGES or row.queued or row.progress
            row.paused = paused and bool(unfinished) and not row.error
            if paused:
                row.progress = None
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(self.COLUMNS) - 1)
            )

    def clear_live(self, paths: list[str]) -> None:
        """A run ended: its sources show their stored stage again."""
        for p in paths:
            row = self.row_for(p)
            if row is not None:
                row.progress, row.queued = None, False
                self._changed(row)

    def remove_row(self, path: str) -> None:
        key = path_key(path)
        for i, row in enumerate(self._rows):
            if row.key == key:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self._rows[i]
                self.endRemoveRows()
                return

    # --- reading -----------------------------------------------------------------------------

    def rows(self) -> list[SourceRow]:
        return [replace(r) for r in self._rows]

    def row_at(self, index: int) -> SourceRow:
        return self._rows[index]

    def row_for(self, path: str) -> SourceRow | None:
        key = path_key(path)
        return next((r for r in self._rows if r.key == key), None)

    def searchable_ids(self) -> list[str]:
        """Source ids a chat searches: stored, searchable by keyword at least, and checked."""
        return [
            r.source_id
            for r in self._rows
            if r.source_id and r.stage in VISIBLE_STAGES and r.source_id not in self._unchecked
        ]

    def all_searchable_checked(self) -> bool:
        return not any(
            r.source_id in self._unchecked for r in self._rows if r.stage in VISIBLE_STAGES
        )

    def unchecked(self) -> set[str]:
        return set(self._unchecked)

    def set_unchecked(self, ids: set[str]) -> None:
        self._unchecked = set(ids)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, 0))
        self.selection_changed.emit()

    def total_chunks(self) -> int:
        return sum(r.chunks for r in self._rows if r.stage != "failed")

    def total_size(self) -> int:
        return sum(r.size for r in self._rows if r.stage != "failed")

    def stored_count(self) -> int:
        return sum(1 for r in self._rows if r.source_id and r.stage != "failed")

    def embedding_summary(self) -> str:
        """The library's meaning-search progress, for the status bar: "62% embedded · 40
        passages/s · 2 h 10 min left" while vectors are filling in, "" when all are."""
        live = [r for r in self._rows if r.stage != "failed" and not r.error]
        total = sum(r.chunks for r in live)
        done = sum(min(r.embedded, r.chunks) for r in live)
        if not total or done >= total:
            return ""
        running = [r.progress for r in live if r.progress and r.progress.stage == "embedding"]
        rate = sum(p.rate for p in running if p.rate > 0)
        text = f"{int(100 * done / total)}% embedded"
        if rate > 0:
            text += f" · {rate:,.0f} passages/s"
            left = human_eta((total - done) / rate)
            text += f" · {left} left" if left else ""
        elif any(r.paused for r in live):
            text += " · paused"
        return text

    # --- Qt model ----------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        row = self._rows[index.row()]
        if index.column() == self.TITLE and row.source_id and row.stage in VISIBLE_STAGES:
            base |= Qt.ItemFlag.ItemIsUserCheckable
        return base

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == self.RowRole:
            return row
        if role == self.FractionRole:
            return progress_fraction(row) if col == self.STATUS else None
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.TITLE:
                return row.title or shown(Path(row.key).name)
            if col == self.KIND:
                return {"zim": "ZIM", "epub": "EPUB"}.get(
                    row.kind, row.kind.upper() or _kind_from(row.key)
                )
            if col == self.SIZE:
                return human_size(row.size) or human_size(_file_size(row.key))
            if col == self.CHUNKS:
                return f"{row.chunks:,}" if row.chunks else ""
            if col == self.STATUS:
                return status_text(row)
        if (
            role == Qt.ItemDataRole.CheckStateRole
            and col == self.TITLE
            and row.source_id
            and row.stage in VISIBLE_STAGES
        ):
            return (
                Qt.CheckState.Unchecked
                if row.source_id in self._unchecked
                else Qt.CheckState.Checked
            )
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == self.STATUS and row.error:
                return row.error
            if col == self.STATUS and row.damaged:
                more = row.damaged - len(row.damaged_names)
                return "Could not be read (damaged data):\n" + "\n".join(
                    row.damaged_names + ([f"… and {more:,} more"] if more > 0 else [])
                )
            if col == self.TITLE:
                return shown(row.key)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (self.SIZE, self.CHUNKS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.CheckStateRole or index.column() != self.TITLE:
            return False
        row = self._rows[index.row()]
        checked = (
            Qt.CheckState(value) == Qt.CheckState.Checked if not isinstance(value, bool) else value
        )
        if checked:
            self._unchecked.discard(row.source_id)
        else:
            self._unchecked.add(row.source_id)
        self.dataChanged.emit(index, index, [role])
        self.selection_changed.emit()
        return True

    # --- helpers -----------------------------------------------------------------------------

    def _ensure(self, key: str) -> SourceRow:
        for row in self._rows:
            if row.key == key:
                return row
        row = SourceRow(key=key, title=Path(key).name, kind=_kind_from(key).lower())
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
        self._rows.append(row)
        self.endInsertRows()
        return row

    def _changed(self, row: SourceRow) -> None:
        i = self._rows.index(row)
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))


def _kind_from(path: str) -> str:
    return (kind_from_name(path) or "").upper()


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
