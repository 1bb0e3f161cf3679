"""SettingsDialog: the settings pages in a list (app.ui.settings_pages, app.ui.offload_page);
OK checks every page, then saves them all."""

from __future__ import annotations

import logging

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.settings import Settings
from app.ui.offload_page import OffloadPage
from app.ui.settings_pages import LibraryPage, ModelPage, RetrievalPage, SettingsPage
from app.ui.workers import WorkerPool

log = logging.getLogger(__name__)


class SettingsDialog(QDialog):
    """The pages in a list; OK checks every page, then saves all of them, then emits."""

    settings_saved = Signal(object, object)  # new Settings, old Settings

    def __init__(self, settings: Settings, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Librarian settings")
        self.resize(820, 600)
        self._settings = settings
        self.model_page = ModelPage(pool)
        self.offload_page = OffloadPage(pool)
        self.retrieval_page = RetrievalPage()
        self.library_page = LibraryPage()
        self.pages: list[SettingsPage] = [
            self.model_page,
            self.offload_page,
            self.retrieval_page,
            self.library_page,
        ]
        self.model_page.model_changed.connect(self.offload_page.refresh_machine)
        self.model_page.context_changed.connect(self.offload_page.set_context)
        layout = QVBoxLayout(self)
        body = QHBoxLayout()
        self.page_list = QListWidget()
        self.page_list.setObjectName("settingsPages")
        self.page_list.setFixedWidth(160)
        self.stack = QStackedWidget()
        for page in self.pages:
            self.page_list.addItem(page.title)
            page.setContentsMargins(12, 0, 4, 0)
            self.stack.addWidget(page)
        self.page_list.currentRowChanged.connect(self.stack.setCurrentIndex)
        body.addWidget(self.page_list)
        body.addWidget(self.stack, 1)
        layout.addLayout(body, 1)
        self.error_label = QLabel()
        self.error_label.setObjectName("settingsError")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        for page in self.pages:
            page.load(settings)
        self.page_list.setCurrentRow(0)

    def show_page(self, title: str) -> None:
        for i, page in enumerate(self.pages):
            if page.title == title:
                self.page_list.setCurrentRow(i)

    def accept(self) -> None:
        for i, page in enumerate(self.pages):
            problem = page.check()
            if problem:
                self.page_list.setCurrentRow(i)
                self.error_label.setText(f"⚠ {page.title}: {problem}")
                self.error_label.show()
                return
        new = self._settings.model_copy(deep=True)
        for page in self.pages:
            page.save(new)
        try:
            new = Settings.model_validate(new.model_dump())
        except ValueError as exc:
            self.error_label.setText(f"⚠ {exc}")
            self.error_label.show()
            return
        from app import settings as settings_store

        settings_store.save(new)
        old = self._settings
        self._settings = new
        super().accept()
        self.settings_saved.emit(new, old)
