"""LibraryView: the sources table with live progress, add / pause / cancel / remove, search
scope."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.ui.source_list_model import SourceListModel, SourceRow, human_size
from ingest.events import UNFINISHED_STAGES


class StatusDelegate(QStyledItemDelegate):
    """The status column: the text over a thin progress bar while a source is being read."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        row: SourceRow = index.data(SourceListModel.RowRole)
        fraction = index.data(SourceListModel.FractionRole)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        failed = row is not None and (row.stage == "failed" or bool(row.error))
        if failed:
            opt.palette.setColor(QPalette.ColorRole.Text, QColor("#b3261e"))
        elif row is not None and row.stage == "ready" and row.progress is None:
            opt.palette.setColor(QPalette.ColorRole.Text, QColor("#1e7b34"))
        style = opt.widget.style() if opt.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        if fraction is not None:
            r = option.rect
            bar = QRect(r.left() + 6, r.bottom() - 5, r.width() - 12, 3)
            painter.save()
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#dfe5ee"))
            painter.drawRoundedRect(bar, 1.5, 1.5)
            done = QRect(bar.left(), bar.top(), int(bar.width() * float(fraction)), bar.height())
            painter.setBrush(QColor("#3b82f6"))
            painter.drawRoundedRect(done, 1.5, 1.5)
            painter.restore()


class LibraryView(QWidget):
    """The library page: what is in it, how far each source is, and which ones chats search."""

    add_files_requested = Signal()
    add_folder_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    cancel_requested = Signal(str, str)  # path, source_id
    pause_source_requested = Signal(str)  # path: leave this source as it is for now
    resume_source_requested = Signal(str)  # path
    remove_requested = Signal(str, str)  # path, source_id

    def __init__(self, model: SourceListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("libraryView")
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(8)
        head = QHBoxLayout()
        self.summary = QLabel()
        self.summary.setObjectName("librarySummary")
        head.addWidget(self.summary, 1)
        self.add_files_button = QPushButton("Add books or archives…")
        self.add_files_button.clicked.connect(self.add_files_requested)
        self.add_folder_button = QPushButton("Add a folder…")
        self.add_folder_button.clicked.connect(self.add_folder_requested)
        head.addWidget(self.add_files_button)
        head.addWidget(self.add_folder_button)
        layout.addLayout(head)
        hint = QLabel(
            "Drop files or whole folders anywhere on this window to add them. "
            "Tick the sources that chats should search."
        )
        hint.setObjectName("libraryHint")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.table = QTableView()
        self.table.setObjectName("sourcesTable")
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(34)
        self.table.setItemDelegateForColumn(SourceListModel.STATUS, StatusDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(SourceListModel.TITLE, QHeaderView.ResizeMode.Stretch)
        for col in (SourceListModel.KIND, SourceListModel.SIZE, SourceListModel.CHUNKS):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(SourceListModel.STATUS, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(SourceListModel.STATUS, 380)
        layout.addWidget(self.table, 1)
        actions = QHBoxLayout()
        self.paused = False
        self.busy = False
        self.pause_button = QPushButton("Pause reading")
        self.pause_button.setObjectName("pauseButton")
        self.pause_button.clicked.connect(self._on_pause_button_clicked)
        self.source_pause_button = QPushButton("Pause this source")
        self.source_pause_button.setObjectName("sourcePauseButton")
        self.source_pause_button.setToolTip(
            "Leave this source as it is (what is read stays searchable); the others carry on"
        )
        self.source_pause_button.clicked.connect(self._on_source_pause_button_clicked)
        self.cancel_button = QPushButton("Cancel this source")
        self.cancel_button.setToolTip("Stop reading this source and take it out of the library")
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.remove_button = QPushButton("Remove from library")
        self.remove_button.clicked.connect(self._on_remove_button_clicked)
        actions.addWidget(self.pause_button)
        actions.addWidget(self.source_pause_button)
        actions.addWidget(self.cancel_button)
        actions.addStretch(1)
        actions.addWidget(self.remove_button)
        layout.addLayout(actions)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self.update_actions())
        model.modelReset.connect(self.update_actions)
        model.dataChanged.connect(lambda *_: self.update_actions())
        model.rowsInserted.connect(lambda *_: self.update_actions())
        self.update_actions()

    def selected_row(self) -> SourceRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row_at(rows[0].row()) if rows else None

    def select_path(self, path: str) -> None:
        for i, row in enumerate(self.model.rows()):
            if row.key == path:
                self.table.selectRow(i)

    def update_actions(self) -> None:
        row = self.selected_row()
        unfinished = (
            row is not None
            and not row.error
            and (
                row.progress is not None
                or row.queued
                or row.paused
                or row.stage in UNFINISHED_STAGES
            )
        )
        self.pause_button.setEnabled(self.busy or self.paused)
        self.pause_button.setText("Resume reading" if self.paused else "Pause reading")
        self.cancel_button.setEnabled(unfinished)
        alone = row is not None and row.paused and not self.paused  # paused on its own
        self.source_pause_button.setEnabled(unfinished and not self.paused)
        self.source_pause_button.setText("Resume this source" if alone else "Pause this source")
        self.remove_button.setEnabled(row is not None)
        n = self.model.stored_count()
        chunks = self.model.total_chunks()
        size = human_size(self.model.total_size())
        self.summary.setText(
            f"<b>{n} source{'s' if n != 1 else ''}</b> · {chunks:,} passages · {size or '0 B'}"
            if n
            else "<b>Your library is empty</b>"
        )

    def set_state(self, busy: bool, paused: bool) -> None:
        self.busy, self.paused = busy, paused
        self.update_actions()

    def _on_pause_button_clicked(self) -> None:
        if self.paused:
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    def _on_source_pause_button_clicked(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        if row.paused:
            self.resume_source_requested.emit(row.key)
        else:
            self.pause_source_requested.emit(row.key)

    def _on_cancel_button_clicked(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.cancel_requested.emit(row.key, row.source_id)

    def _on_remove_button_clicked(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.remove_requested.emit(row.key, row.source_id)
