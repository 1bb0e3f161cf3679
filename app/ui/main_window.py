"""MainWindow: chat, reader and library in one window; drives workers, never blocks on them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QWidget,
)

from app import __version__
from app import settings as settings_store
from app.llm.manager import needs_reload
from app.settings import Settings, library_path
from app.ui import services as sv
from app.ui.chat_control import ChatControl
from app.ui.chat_view import ChatView, ConversationList
from app.ui.ingest_queue import IngestQueue
from app.ui.library_control import LibraryControl
from app.ui.library_view import LibraryView
from app.ui.reader_view import ReaderView
from app.ui.settings_dialog import SettingsDialog
from app.ui.source_list_model import SourceListModel
from app.ui.welcome_panel import WelcomePanel
from app.ui.workers import WorkerPool
from ingest.file_names import SOURCE_SUFFIXES

log = logging.getLogger(__name__)

ABOUT_HTML = f"""
<h2>Librarian {__version__}</h2>
<p>Chat with your offline library — Kiwix ZIM archives and EPUB books — through a language
model that runs on this computer, with answers that cite their passages.</p>
<p>Licence: GNU General Public License, version 3 or later (GPL-3.0-or-later).</p>
<p>Built on libzim (GPL), ebooklib (AGPL), llama.cpp, LanceDB, sentence-transformers and Qt
(PySide6, LGPL). The default model is SmolLM2-135M-Instruct (Apache-2.0); the embedder is
all-MiniLM-L6-v2 (Apache-2.0).</p>
<p>The demo library holds article text from <b>Wikipedia</b>, the free encyclopedia, by its
contributors, under the Creative Commons Attribution-ShareAlike licence (CC BY-SA 4.0).</p>
"""


def local_paths(urls: list[QUrl]) -> list[str]:
    return [u.toLocalFile() for u in urls if u.isLocalFile() and u.toLocalFile()]


class MainWindow(QMainWindow):
    """The window. It owns the workers (WorkerPool) and joins them when it closes."""

    model_loaded = Signal(str)  # model name
    model_failed = Signal(str)
    sources_refreshed = Signal()
    answer_finished = Signal()
    conversations_refreshed = Signal()  # the conversation list shows the history anew

    def __init__(
        self,
        settings: Settings | None = None,
        services: sv.Services | None = None,
        qsettings: QSettings | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Librarian")
        self.setAcceptDrops(True)
        self.settings = settings or settings_store.load()
        self.services = services or sv.Services()
        self.qsettings = qsettings or QSettings(
            str(sv.paths.home() / "window.ini"), QSettings.Format.IniFormat
        )
        self.pool = WorkerPool(self)
        self.services.choose_embedder(self.settings.retrieval.embedder)
        self.store_path = library_path(self.settings)
        self.services.library = self.store_path
        self._closing = False
        self.embedder_warm = False  # the query embedder is loaded (Services.warm_up)

        self.source_model = SourceListModel(self)
        self.ingest = IngestQueue(
            self.pool, self.services, self.store_path, self.settings.retrieval.embed_device, self
        )
        self._build_ui()
        self._connect()
        self._restore_window_state()

    # --- building ----------------------------------------------------------------------------

    def _build_ui(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.conversations = ConversationList()
        self.chat_view = ChatView()
        self.welcome = WelcomePanel()
        self.center = QStackedWidget()
        self.center.addWidget(self.chat_view)
        self.center.addWidget(self.welcome)
        self.reader_view = ReaderView(
            run_task=lambda task, shown, failed: self.pool.run_task(
                task, shown, failed, name="reader-page"
            )
        )
        self.reader_view.hide()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("chatSplitter")
        self.splitter.addWidget(self.conversations)
        self.splitter.addWidget(self.center)
        self.splitter.addWidget(self.reader_view)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 3)
        self.splitter.setSizes([220, 700, 0])
        self.splitter.setChildrenCollapsible(False)
        self.library_view = LibraryView(self.source_model)
        self.tabs.addTab(self.splitter, "Chat")
        self.tabs.addTab(self.library_view, "Library")
        self.setCentralWidget(self.tabs)
        # Text widgets would swallow dropped files as text: the window takes them instead.
        self.chat_view.input.setAcceptDrops(False)
        self.reader_view.browser.setAcceptDrops(False)
        self.reader_view.browser.viewport().setAcceptDrops(False)

        bar = self.statusBar()
        self.model_label = QLabel("Model: not loaded")
        self.model_label.setObjectName("modelStatus")
        self.embed_label = QLabel()
        self.embed_label.setObjectName("embedStatus")
        self.upkeep_label = QLabel()
        self.upkeep_label.setObjectName("upkeepStatus")
        self.upkeep_label.hide()
        self.library_label = QLabel()
        self.library_label.setObjectName("libraryStatus")
        # Normal (not permanent) widgets: a message ("Opening Photosynthesis…") takes the whole
        # bar while it shows, instead of the sliver the labels leave it; they come back after.
        bar.addWidget(QWidget(), 1)
        for label in (self.upkeep_label, self.model_label, self.embed_label, self.library_label):
            bar.addWidget(label)

        file_menu = self.menuBar().addMenu("&File")
        self.add_files_action = QAction("Add books or archives…", self)
        self.add_files_action.setShortcut(QKeySequence.StandardKey.Open)
        self.add_folder_action = QAction("Add a folder…", self)
        self.compact_action = QAction("Reclaim disk space", self)
        self.compact_action.setToolTip("Give the disk back what removed sources still hold")
        self.settings_action = QAction("Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for a in (
            self.add_files_action,
            self.add_folder_action,
            self.compact_action,
            self.settings_action,
            quit_action,
        ):
            file_menu.addAction(a)
        chat_menu = self.menuBar().addMenu("&Chat")
        self.new_chat_action = QAction("New chat", self)
        self.new_chat_action.setShortcut(QKeySequence("Ctrl+N"))
        self.stop_action = QAction("Stop the answer", self)
        self.stop_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.export_action = QAction("Export as Markdown…", self)
        for a in (self.new_chat_action, self.stop_action, self.export_action):
            chat_menu.addAction(a)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("About Librarian", self)
        about.triggered.connect(self._on_about_triggered)
        help_menu.addAction(about)
        # Esc must work wherever the focus is, the question box included.
        self.esc_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.esc_shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        self.stop_action.setShortcut(QKeySequence())
        self.stop_action.setText("Stop the answer\tEsc")

    def _connect(self) -> None:
        """The window's own wiring; the library and chat sides wire theirs (library_control,
        chat_control)."""
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(2000)
        self.library = LibraryControl(self)
        self.chat = ChatControl(self)
        self.add_files_action.triggered.connect(self._on_add_files_triggered)
        self.add_folder_action.triggered.connect(self._on_add_folder_triggered)
        self.settings_action.triggered.connect(self.open_settings)
        self.chat_view.citation_activated.connect(self._on_chat_view_citation_activated)
        self.chat_view.scope_clicked.connect(lambda: self.tabs.setCurrentWidget(self.library_view))
        self.reader_view.closed.connect(self._on_reader_view_closed)
        self.reader_view.message_posted.connect(
            lambda text: self.statusBar().showMessage(text, 6000)
        )
        self.welcome.add_files_requested.connect(self._on_add_files_triggered)
        self.library_view.add_files_requested.connect(self._on_add_files_triggered)
        self.library_view.add_folder_requested.connect(self._on_add_folder_triggered)

    # --- start -------------------------------------------------------------------------------

    def start(self, files: list[str] | None = None) -> None:
        """List the conversations and the library, load the model — all off the GUI thread."""
        self.chat.refresh_conversations()
        self.library.refresh_sources()
        self.chat.load_model()
        services, device = self.services, self.settings.retrieval.embed_device
        self.pool.run_task(
            lambda cancel: services.warm_up(device),
            lambda _r: setattr(self, "embedder_warm", True),
            lambda msg: log.warning("the embedder could not be loaded: %s", msg),
            name="warm-up",
        )
        if files:
            self.add_paths(files)

    # --- library -----------------------------------------------------------------------------

    def add_paths(self, paths: list[str]) -> None:
        """Add files or folders (recursively) to the library."""
        self.library.add_paths(paths)

    def new_chat(self) -> None:
        self.chat.new_chat()

    # --- reader ------------------------------------------------------------------------------

    def _on_chat_view_citation_activated(self, ref: Any) -> None:
        self.open_citation(ref)

    def open_citation(self, ref: Any) -> None:
        """Open the source of `ref` in the reader at its passage."""
        store_path = self.store_path
        source_id = ref.locator.source_id
        self.statusBar().showMessage(f"Opening {ref.locator.title}…", 3000)
        self.pool.run_task(
            lambda cancel: sv.open_reader(store_path, source_id),
            lambda reader: self._on_reader_opened(reader, ref),
            lambda msg: self.statusBar().showMessage(f"The source cannot be opened: {msg}", 8000),
            name="open-reader",
        )

    def _on_reader_opened(self, reader: Any, ref: Any) -> None:
        if self.reader_view.isHidden():
            self.reader_view.show()
            total = sum(self.splitter.sizes())
            left = self.splitter.sizes()[0]
            rest = max(total - left, 600)
            self.splitter.setSizes([left, rest // 2, rest - rest // 2])
        self.tabs.setCurrentIndex(0)
        self.reader_view.open_passage(reader, ref)

    def _on_reader_view_closed(self) -> None:
        self.reader_view.close_reader()
        self.reader_view.hide()

    # --- settings ----------------------------------------------------------------------------

    def open_settings(self, page: str = "") -> SettingsDialog:
        dialog = SettingsDialog(self.settings, self.pool, self)
        dialog.settings_saved.connect(self._on_settings_dialog_settings_saved)
        if page:
            dialog.show_page(page)
        dialog.open()
        self.settings_dialog = dialog
        return dialog

    def _on_settings_dialog_settings_saved(self, new: Settings, old: Settings) -> None:
        self.settings = new
        if needs_reload((old.model, old.offload), (new.model, new.offload)):
            # temperature or answer length apply to the next answer as they are
            self.chat.load_model()
        if new.retrieval.embed_device != old.retrieval.embed_device:
            self.ingest.device = new.retrieval.embed_device
        if new.retrieval.embedder != old.retrieval.embedder:
            self.services.choose_embedder(new.retrieval.embedder)
            self.library.reembed()
        if library_path(new) != library_path(old):
            self.store_path = library_path(new)
            self.ingest.store_path = self.store_path
            self.services.library = self.store_path
            self.library.refresh_sources()
        self.library.update_embed_label()
        self.statusBar().showMessage("Settings saved.", 3000)

    def _on_about_triggered(self) -> None:
        QMessageBox.about(self, "About Librarian", ABOUT_HTML)

    # --- files from outside ------------------------------------------------------------------

    def _on_add_files_triggered(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Add books or archives",
            str(Path.home()),
            f"Books and archives ({' '.join('*' + s for s in SOURCE_SUFFIXES)});;All files (*)",
        )
        self.add_paths(files)

    def _on_add_folder_triggered(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Add a folder (searched for ZIM and EPUB files)", str(Path.home())
        )
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls() and local_paths(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = local_paths(event.mimeData().urls())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)
            self.tabs.setCurrentWidget(
                self.library_view
            ) if self.center.currentWidget() is not self.welcome else None

    # --- closing -----------------------------------------------------------------------------

    def _restore_window_state(self) -> None:
        geometry = self.qsettings.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(QByteArray(geometry))
        else:
            self.resize(1280, 820)
        splitter = self.qsettings.value("window/splitter")
        if isinstance(splitter, QByteArray | bytes):
            self.splitter.restoreState(QByteArray(splitter))
        unchecked = self.qsettings.value("library/unchecked", [], type=list)
        self.source_model.set_unchecked({str(x) for x in (unchecked or [])})  # type: ignore[attr-defined]

    def save_window_state(self) -> None:
        self.qsettings.setValue("window/geometry", self.saveGeometry())
        self.qsettings.setValue("window/splitter", self.splitter.saveState())
        self.qsettings.setValue("library/unchecked", sorted(self.source_model.unchecked()))
        self.qsettings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self._closing = True
        self.save_window_state()
        self.refresh_timer.stop()
        self.ingest.stop()
        self.pool.stop_all()
        self.reader_view.close_reader()
        self.chat.chat_model = None
        self.services.models.close()  # a load still running frees its model when it ends
        event.accept()
