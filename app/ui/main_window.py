"""MainWindow: chat, reader and library in one window; drives workers, never blocks on them."""

from __future__ import annotations

import logging
import subprocess
import sys
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
from app.chat.session import Done
from app.llm.manager import needs_reload
from app.settings import Settings, library_path
from app.ui import services as sv
from app.ui.chat_view import ChatView, ConversationList
from app.ui.ingest_queue import IngestQueue
from app.ui.library_view import LibraryView
from app.ui.reader_view import ReaderView
from app.ui.settings_dialog import SettingsDialog
from app.ui.source_list_model import SourceListModel, human_size, indexing_text
from app.ui.welcome_panel import WelcomePanel
from app.ui.workers import GeneratorWorker, WorkerPool
from ingest.events import UNFINISHED_STAGES, VISIBLE_STAGES
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
        self.store_path = library_path(self.settings)
        self.chat_model: Any = None
        self.model_state = "none"  # none / loading / ready / failed
        self.model_error = ""
        self.conversation_id: int | None = None
        self._answer_saved_in: dict[str, int | None] | None = None
        self.answer_worker: GeneratorWorker | None = None
        self._pending_question: str | None = None
        self._reload_after_answer = False
        self._refreshing = False
        self._refresh_again = False
        self._sources_loaded = False
        self._closing = False

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
        self._update_embed_label()

        file_menu = self.menuBar().addMenu("&File")
        self.add_files_action = QAction("Add books or archives…", self)
        self.add_files_action.setShortcut(QKeySequence.StandardKey.Open)
        self.add_folder_action = QAction("Add a folder…", self)
        self.compact_action = QAction("Reclaim disk space", self)
        self.compact_action.setToolTip("Give the disk back what removed sources still hold")
        self.compact_action.triggered.connect(self._on_compact_action_triggered)
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
        self.add_files_action.triggered.connect(self._on_add_files_triggered)
        self.add_folder_action.triggered.connect(self._on_add_folder_triggered)
        self.settings_action.triggered.connect(self.open_settings)
        self.new_chat_action.triggered.connect(self.new_chat)
        self.stop_action.triggered.connect(self.stop_answer)
        self.esc_shortcut.activated.connect(self.stop_answer)
        self.export_action.triggered.connect(self._on_export_triggered)
        self.chat_view.question_submitted.connect(self._on_chat_view_question_submitted)
        self.chat_view.stop_requested.connect(self.stop_answer)
        self.chat_view.citation_activated.connect(self._on_chat_view_citation_activated)
        self.chat_view.scope_clicked.connect(lambda: self.tabs.setCurrentWidget(self.library_view))
        self.conversations.new_requested.connect(self.new_chat)
        self.conversations.conversation_selected.connect(
            self._on_conversations_conversation_selected
        )
        self.conversations.rename_requested.connect(self._on_conversations_rename_requested)
        self.conversations.delete_requested.connect(self._on_conversations_delete_requested)
        self.reader_view.closed.connect(self._on_reader_view_closed)
        self.reader_view.message_posted.connect(
            lambda text: self.statusBar().showMessage(text, 6000)
        )
        self.welcome.add_files_requested.connect(self._on_add_files_triggered)
        self.welcome.add_demo_requested.connect(self.add_demo_library)
        self.library_view.add_files_requested.connect(self._on_add_files_triggered)
        self.library_view.add_folder_requested.connect(self._on_add_folder_triggered)
        self.library_view.pause_requested.connect(self.ingest.pause)
        self.library_view.resume_requested.connect(self.ingest.resume)
        self.library_view.pause_source_requested.connect(self.ingest.pause_source)
        self.library_view.resume_source_requested.connect(self.ingest.resume_source)
        self.library_view.cancel_requested.connect(self._on_library_view_cancel_requested)
        self.library_view.remove_requested.connect(self._on_library_view_remove_requested)
        self.source_model.selection_changed.connect(self._update_scope)
        self.ingest.files_discovered.connect(self._on_ingest_files_discovered)
        self.ingest.files_skipped.connect(self._on_ingest_files_skipped)
        self.ingest.progress_changed.connect(self._on_ingest_progress_changed)
        self.ingest.library_progress.connect(self._on_ingest_library_progress)
        self.ingest.source_failed.connect(self._on_ingest_source_failed)
        self.ingest.pass_finished.connect(self._on_ingest_pass_finished)
        self.ingest.busy_changed.connect(self._on_ingest_busy_changed)
        self.ingest.failed.connect(self._on_ingest_failed)
        self.ingest.source_finished.connect(self._on_ingest_source_finished)
        self.ingest.paused_changed.connect(self._on_ingest_paused_changed)
        self.ingest.source_paused.connect(self._on_ingest_source_paused)
        self.ingest.source_removed.connect(self._on_ingest_source_removed)
        self.ingest.compacted.connect(self._on_ingest_compacted)
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(2000)
        self.refresh_timer.timeout.connect(self.refresh_sources)

    # --- start -------------------------------------------------------------------------------

    def start(self, files: list[str] | None = None) -> None:
        """List the conversations and the library, load the model — all off the GUI thread."""
        self._refresh_conversations()
        self.refresh_sources()
        self.load_model()
        if files:
            self.add_paths(files)

    # --- library -----------------------------------------------------------------------------

    def add_paths(self, paths: list[str]) -> None:
        """Add files or folders (recursively) to the library."""
        if not paths:
            return
        self.statusBar().showMessage(
            f"Adding {len(paths)} item{'s' if len(paths) != 1 else ''} to the library…", 4000
        )
        self.ingest.add(paths)

    def add_demo_library(self) -> None:
        """Ingest the demo ZIM, building it first when it is missing."""
        zim = sv.demo_zim()
        if zim is not None:
            self.welcome.set_demo_status(
                "Adding the demo library: it becomes searchable in a minute.", busy=True
            )
            self.add_paths([str(zim)])
            return
        script = sv.project_root() / "packaging" / "build_demo.py"
        if not script.is_file():
            self.welcome.set_demo_status("The demo library is not part of this installation.")
            return
        self.welcome.set_demo_status(
            "Building the demo library from Wikipedia articles (about a minute)…", busy=True
        )
        self.pool.run_task(
            lambda cancel: _run_build_demo(script, cancel),
            self._on_demo_built,
            self._on_demo_failed,
            name="build-demo",
        )

    def refresh_sources(self) -> None:
        """Re-read the store's sources off the GUI thread."""
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True
        store_path = self.store_path
        self.pool.run_task(
            lambda cancel: sv.list_sources(store_path),
            self._on_sources_listed,
            self._on_sources_list_failed,
            name="list-sources",
        )

    def _on_sources_listed(self, records: list[Any]) -> None:
        self._refreshing = False
        self._sources_loaded = True
        self.source_model.set_records(records)
        self._after_sources_changed()
        self.sources_refreshed.emit()
        if self._refresh_again:
            self._refresh_again = False
            self.refresh_sources()
        self._maybe_first_run()
        self._resume_unfinished_once()

    def _on_sources_list_failed(self, message: str) -> None:
        self._refreshing = False
        self._sources_loaded = True
        self.statusBar().showMessage(f"The library cannot be read: {message}")
        self._after_sources_changed()

    def _after_sources_changed(self) -> None:
        rows = self.source_model.rows()
        empty = not rows and not self.ingest.is_busy()
        self.center.setCurrentWidget(
            self.welcome if empty and self._sources_loaded else self.chat_view
        )
        self._update_library_label()
        self.library_view.update_actions()
        self._update_scope()

    def _update_library_label(self) -> None:
        model = self.source_model
        n = model.stored_count()
        text = (
            f"Library: {n} source{'s' if n != 1 else ''} · {model.total_chunks():,} passages · "
            f"{human_size(model.total_size()) or '0 B'}"
        )
        embedding = model.embedding_summary()
        self.library_label.setText(f"{text} · {embedding}" if embedding else text)

    def _resume_unfinished_once(self) -> None:
        if getattr(self, "_resumed", False):
            return
        self._resumed = True
        unfinished = [r for r in self.source_model.rows() if r.stage in UNFINISHED_STAGES]
        if unfinished:
            self.ingest.resume_unfinished()

    def _maybe_first_run(self) -> None:
        if self.qsettings.value("first_run_done", False, type=bool):
            return
        self.qsettings.setValue("first_run_done", True)
        if not self.source_model.rows() and sv.demo_zim() is not None:
            self.add_demo_library()

    def _update_scope(self) -> None:
        rows = [r for r in self.source_model.rows() if r.source_id and r.stage in VISIBLE_STAGES]
        chosen = self.source_model.searchable_ids()
        reading = [r for r in self.source_model.rows() if r.progress is not None or r.queued]
        if not rows:
            text = (
                "Your first sources are being read; you can ask as soon as one is searchable."
                if reading
                else "Add sources to your library to ask questions."
            )
        elif len(chosen) == len(rows):
            text = (
                f"Searching all {len(rows)} source{'s' if len(rows) != 1 else ''} — "
                "<a href='library'>choose</a>"
            )
        else:
            text = f"Searching {len(chosen)} of {len(rows)} sources — <a href='library'>choose</a>"
        self.chat_view.set_scope(text)

    def _on_ingest_files_discovered(self, files: list[str]) -> None:
        self.source_model.mark_queued(files)
        self._after_sources_changed()

    def _on_ingest_files_skipped(self, skipped: list[tuple[str, str]]) -> None:
        names = "; ".join(f"{Path(p).name}: {r}" for p, r in skipped[:3])
        more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
        self.statusBar().showMessage(f"Skipped {names}{more}", 8000)

    def _on_ingest_progress_changed(self, path: str, progress: Any) -> None:
        self.source_model.set_progress(path, progress)
        self._update_library_label()  # the embedding's rate and time left stay in view

    def _on_ingest_library_progress(self, progress: Any) -> None:
        """Index upkeep after a pass takes minutes on a big library: say so, with progress."""
        if progress is None:
            self.upkeep_label.hide()
            return
        self.upkeep_label.setText(f"Library upkeep: {indexing_text(progress)}")
        self.upkeep_label.show()

    def _on_compact_action_triggered(self) -> None:
        self.statusBar().showMessage("Reclaiming disk space…")
        self.ingest.compact()

    def _on_ingest_compacted(self, before: int, after: int) -> None:
        self.statusBar().showMessage(
            f"Reclaimed {human_size(max(0, before - after)) or '0 B'}; "
            f"the library takes {human_size(after)}",
            10000,
        )

    def _on_ingest_source_failed(self, path: str, reason: str) -> None:
        self.source_model.set_failed(path, reason)
        self.statusBar().showMessage(f"{Path(path).name} could not be added: {reason}", 8000)

    def _on_ingest_source_finished(self, path: str, status: str) -> None:
        self.source_model.clear_live([path])
        self.refresh_sources()

    def _on_ingest_pass_finished(self, keyword_only: bool) -> None:
        self.source_model.clear_live([r.key for r in self.source_model.rows()])
        self.refresh_sources()
        if keyword_only:
            self.welcome.set_demo_status("")

    def _on_ingest_busy_changed(self, busy: bool) -> None:
        if busy:
            self.refresh_timer.start()
        else:
            self.refresh_timer.stop()
            self.refresh_sources()
        self.library_view.set_state(busy, self.ingest.paused)
        self._update_embed_label()
        if self.settings.offload.unload_while_embedding:
            self._apply_unload_while_embedding(busy)

    def _on_ingest_paused_changed(self, paused: bool) -> None:
        self.source_model.set_all_paused(paused)
        for path in self.ingest.schedule.paused_sources:  # paused on their own: still paused
            self.source_model.set_paused(path, True)
        self.library_view.set_state(self.ingest.is_busy(), paused)
        self.statusBar().showMessage(
            "Reading paused: it resumes where it stopped." if paused else "Reading resumed.", 4000
        )

    def _on_ingest_source_paused(self, path: str, paused: bool) -> None:
        if not paused and path in self.ingest.schedule.pending:
            self.source_model.mark_queued([path])  # not in the library yet: waiting its turn
        else:
            self.source_model.set_paused(path, paused)
        self.library_view.update_actions()
        row = self.source_model.row_for(path)
        name = row.title if row else Path(path).name
        self.statusBar().showMessage(
            f"{name}: paused; the others carry on." if paused else f"{name}: resumed.", 4000
        )

    def _on_ingest_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Adding to the library failed: {message}", 10000)
        self.refresh_sources()

    def _on_ingest_source_removed(self, path: str) -> None:
        self.refresh_sources()

    def _on_library_view_cancel_requested(self, path: str, source_id: str) -> None:
        self._remove_source(path, source_id)

    def _on_library_view_remove_requested(self, path: str, source_id: str) -> None:
        row = self.source_model.row_for(path)
        title = row.title if row else Path(path).name
        answer = QMessageBox.question(
            self,
            "Remove from library",
            f"Remove “{title}” from the library? The file itself stays where it is.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._remove_source(path, source_id)

    def _remove_source(self, path: str, source_id: str) -> None:
        self.source_model.remove_row(path)
        self.ingest.remove(path, source_id)
        self._after_sources_changed()

    def _on_demo_built(self, path: Any) -> None:
        self.welcome.set_demo_status(
            "Adding the demo library: it becomes searchable in a minute.", busy=True
        )
        self.add_paths([str(path)])

    def _on_demo_failed(self, message: str) -> None:
        self.welcome.set_demo_status(f"The demo library could not be built: {message}")

    # --- model -------------------------------------------------------------------------------

    def load_model(self) -> None:
        """(Re)load the chat model in the background; the window stays usable meanwhile. The
        model manager frees the old weights first, and keeps them when they fit the settings."""
        if self.answer_worker is not None:
            self._reload_after_answer = True
            return
        self.chat_model = None
        self.model_state = "loading"
        name = (
            Path(self.settings.model.path).name if self.settings.model.path else "the default model"
        )
        self.model_label.setText(f"Model: loading {name}…")
        services, settings = self.services, self.settings.model_copy(deep=True)
        self.pool.run_task(
            lambda cancel: sv.load_chat_model(services, settings),
            self._on_model_loaded,
            self._on_model_load_failed,
            name="load-model",
        )

    def _on_model_loaded(self, model: Any) -> None:
        if self._closing:
            return  # the model manager, closed, frees it
        self.chat_model = model
        self.model_state = "ready"
        self.model_error = ""
        self._update_model_label()
        self.model_loaded.emit(str(getattr(model, "name", "")))
        if self._pending_question is not None:
            question, self._pending_question = self._pending_question, None
            self._start_answer(question, reuse_widget=True)

    def _on_model_load_failed(self, message: str) -> None:
        log.warning("the model could not be loaded: %s", message)
        self.model_state = "failed"
        self.model_error = message
        self.model_label.setText("Model: failed to load")
        self.model_label.setToolTip(message)
        self.model_failed.emit(message)
        if self._pending_question is not None:
            self._pending_question = None
            self.chat_view.on_chat_failed(f"The model could not be loaded: {message}")
        if self._closing:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("The model could not be loaded")
        box.setText(message)
        box.setInformativeText(
            "What to try: choose another GGUF file in Settings ▸ Model (or clear it to use the "
            "bundled default); lower the GPU layers or the context length in Settings ▸ "
            "GPU offload if memory ran out; check that the file downloaded completely."
        )
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setObjectName("modelErrorBox")
        box.open()
        self.model_error_box = box

    def _update_model_label(self) -> None:
        model = self.chat_model
        if model is None:
            return
        name = str(getattr(model, "name", "model"))
        stats = getattr(model, "stats", None)
        layers = getattr(stats, "gpu_layers", self.settings.offload.gpu_layers)
        where = (
            "CPU only"
            if not layers
            else ("all layers on GPU" if layers < 0 else f"{layers} GPU layers")
        )
        default = " (bundled default)" if not self.settings.model.path else ""
        self.model_label.setText(f"Model: {name}{default} · {where}")
        notice = getattr(model, "notice", None)
        if notice:
            self.statusBar().showMessage(str(notice), 10000)
        tip = notice or ""
        if not self.settings.model.path:
            tip = (tip + "\n" if tip else "") + (
                "No model chosen: using the bundled default. "
                "Choose a bigger GGUF in Settings ▸ Model."
            )
        self.model_label.setToolTip(tip)
        self.welcome.set_model_note(
            "No model chosen yet, so Librarian uses its small bundled model, "
            "SmolLM2-135M-Instruct. A bigger GGUF model (Settings ▸ Model) gives better answers."
            if not self.settings.model.path
            else f"Answering with {name}."
        )

    def _update_embed_label(self) -> None:
        device = self.settings.retrieval.embed_device
        text = {"auto": "auto (GPU when present)", "cpu": "CPU", "cuda": "GPU"}.get(device, device)
        busy = " · embedding…" if self.ingest.is_busy() else ""
        self.embed_label.setText(f"Embeddings: {text}{busy}")

    def _apply_unload_while_embedding(self, busy: bool) -> None:
        if busy and self.chat_model is not None and self.answer_worker is None:
            self.chat_model = None
            self.model_state = "none"
            self.model_label.setText("Model: unloaded while the library is embedded")
            services = self.services
            self.pool.run_task(lambda cancel: sv.unload_chat_model(services), name="unload-model")
        elif not busy and self.chat_model is None and self.model_state != "loading":
            self.load_model()

    # --- chat --------------------------------------------------------------------------------

    def _on_chat_view_question_submitted(self, question: str) -> None:
        self._start_answer(question)

    def _start_answer(self, question: str, reuse_widget: bool = False) -> None:
        if not reuse_widget:
            self.chat_view.begin_answer(question)
        if self.chat_model is None:
            if self.model_state == "failed":
                self.chat_view.on_chat_failed(f"No model is loaded: {self.model_error}")
                return
            self._pending_question = question
            if self.chat_view.current is not None:
                self.chat_view.current.set_status("Waiting for the model to load…")
            if self.model_state == "none":
                self.load_model()
            return
        model, services, store_path = self.chat_model, self.services, self.store_path
        settings = self.settings.model_copy(deep=True)
        device = settings.retrieval.embed_device
        cid = self.conversation_id
        sources = (
            None
            if self.source_model.all_searchable_checked()
            else self.source_model.searchable_ids()
        )

        # The conversation the turn was saved in, written by the worker before it finishes: a
        # stopped answer never reaches Done, yet its new conversation must become the current one.
        saved_in: dict[str, int | None] = {"cid": cid}
        self._answer_saved_in = saved_in

        def events(cancel: Any) -> Any:
            with sv.open_chat(settings, store_path, services.embedder(device)) as opened:
                session = opened.chat(model, cid)
                try:
                    yield from session.ask(question, cancel, sources)
                finally:
                    saved_in["cid"] = session.conversation_id

        worker = GeneratorWorker(events, name="answer")
        worker.event_emitted.connect(self._on_answer_worker_event_emitted)
        worker.failed.connect(self.chat_view.on_chat_failed)
        worker.finished.connect(self._on_answer_worker_finished)
        self.answer_worker = worker
        self.pool.start(worker)

    def _on_answer_worker_event_emitted(self, event: Any) -> None:
        self.chat_view.on_chat_event(event)
        if isinstance(event, Done):
            cid = event.conversation_id
            if cid is not None and cid != self.conversation_id:
                self.conversation_id = cid
                self._refresh_conversations()

    def _on_answer_worker_finished(self) -> None:
        self.answer_worker = None
        saved_in, self._answer_saved_in = self._answer_saved_in, None
        if saved_in is not None and self.conversation_id is None and saved_in["cid"] is not None:
            self.conversation_id = saved_in["cid"]
            self._refresh_conversations()
        self.chat_view.on_chat_finished()
        self.answer_finished.emit()
        if self._reload_after_answer:
            self._reload_after_answer = False
            self.load_model()

    def stop_answer(self) -> None:
        """Esc / Stop: cancel the answer being written (it stops within a fraction of a second)."""
        if self._pending_question is not None:
            self._pending_question = None
            self.chat_view.on_chat_finished()
        if self.answer_worker is not None:
            self.answer_worker.cancel()

    def new_chat(self) -> None:
        if self.answer_worker is not None:
            self.stop_answer()
        self._answer_saved_in = None  # the stopped turn stays in its own conversation
        self.conversation_id = None
        self.chat_view.show_conversation([])
        self._refresh_conversations()
        self.tabs.setCurrentIndex(0)
        self.chat_view.input.setFocus()

    # The history (SQLite) is read and written on workers, each with its own connection: a
    # write waits while an answer being saved holds the database, and the window must not.

    def _history_task(
        self, call: Any, done: Any = None, failed: str = "The chat history is unavailable"
    ) -> None:
        def on_error(message: str) -> None:
            log.warning("%s: %s", failed, message)
            self.statusBar().showMessage(f"{failed}: {message}", 8000)

        self.pool.run_task(lambda cancel: sv.with_history(call), done, on_error, name="history")

    def _refresh_conversations(self) -> None:
        def shown(infos: list[Any]) -> None:
            self.conversations.set_conversations(infos, self.conversation_id)
            self.conversations_refreshed.emit()

        self._history_task(lambda h: list(h.list_conversations()), shown)

    def _on_conversations_conversation_selected(self, cid: Any) -> None:
        if cid is None or cid == self.conversation_id:
            return
        if self.answer_worker is not None:
            self.stop_answer()
        self.conversation_id = cid

        def shown(conv: Any) -> None:
            if self.conversation_id == cid:
                self.chat_view.show_conversation(conv.messages)

        self._history_task(
            lambda h: h.load_conversation(cid), shown, "That conversation cannot be opened"
        )

    def _on_conversations_rename_requested(self, cid: int, title: str) -> None:
        self._history_task(
            lambda h: h.rename_conversation(cid, title), lambda _r: self._refresh_conversations()
        )

    def _on_conversations_delete_requested(self, cid: int) -> None:
        if cid == self.conversation_id:
            self.new_chat()
        self._history_task(
            lambda h: h.delete_conversation(cid), lambda _r: self._refresh_conversations()
        )

    def _on_export_triggered(self) -> None:
        cid = self.conversation_id
        if cid is None:
            self.statusBar().showMessage("Nothing to export yet: ask a question first.", 5000)
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export conversation", "conversation.md", "Markdown (*.md)"
        )
        if path:
            self._history_task(
                lambda h: Path(path).write_text(h.export_markdown(cid), encoding="utf-8"),
                lambda _r: self.statusBar().showMessage(f"Exported to {path}", 5000),
                "The conversation could not be exported",
            )

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
            self.load_model()  # temperature or answer length apply to the next answer as they are
        if new.retrieval.embed_device != old.retrieval.embed_device:
            self.ingest.device = new.retrieval.embed_device
        if library_path(new) != library_path(old):
            self.store_path = library_path(new)
            self.ingest.store_path = self.store_path
            self.refresh_sources()
        self._update_embed_label()
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
        self.chat_model = None
        self.services.models.close()  # a load still running frees its model when it ends
        event.accept()


def _run_build_demo(script: Path, cancel: Any) -> Path:
    """Run packaging/build_demo.py in a child process (it writes into app.paths.demo_dir())."""
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    while True:
        try:
            out, _ = proc.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if cancel.is_set():
                proc.kill()
                proc.communicate()
                raise RuntimeError("cancelled") from None
    if proc.returncode != 0:
        last = (out or "").strip().splitlines()[-1:] or ["unknown error"]
        raise RuntimeError(last[0])
    found = sv.demo_zim()
    if found is None:
        raise RuntimeError("the build finished but wrote no ZIM")
    return found
