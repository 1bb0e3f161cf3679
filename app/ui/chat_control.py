"""The window's chat side: the chat model's state (loading, ready, failed, unloaded while the
library is embedded), answers written on a worker, and the conversation history."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.chat.session import Done
from app.ui import services as sv
from app.ui.workers import GeneratorWorker

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

log = logging.getLogger(__name__)


class ChatControl(QObject):
    """Asks the model manager (through Services) for the model, runs answers, keeps history."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.chat_model: Any = None
        self.model_state = "none"  # none / loading / ready / failed
        self.model_error = ""
        self.model_error_box: QMessageBox | None = None
        self.conversation_id: int | None = None
        self._answer_saved_in: dict[str, int | None] | None = None
        self.answer_worker: GeneratorWorker | None = None
        self._pending_question: str | None = None
        self._reload_after_answer = False
        w = window
        w.new_chat_action.triggered.connect(self.new_chat)
        w.stop_action.triggered.connect(self.stop_answer)
        w.esc_shortcut.activated.connect(self.stop_answer)
        w.export_action.triggered.connect(self._on_export_triggered)
        w.chat_view.question_submitted.connect(self._on_chat_view_question_submitted)
        w.chat_view.stop_requested.connect(self.stop_answer)
        w.conversations.new_requested.connect(self.new_chat)
        w.conversations.conversation_selected.connect(self._on_conversations_conversation_selected)
        w.conversations.rename_requested.connect(self._on_conversations_rename_requested)
        w.conversations.delete_requested.connect(self._on_conversations_delete_requested)

    def load_model(self) -> None:
        """(Re)load the chat model in the background; the window stays usable meanwhile. The
        model manager frees the old weights first, and keeps them when they fit the settings."""
        if self.answer_worker is not None:
            self._reload_after_answer = True
            return
        self.chat_model = None
        self.model_state = "loading"
        path = self.w.settings.model.path
        name = Path(path).name if path else "the default model"
        self.w.model_label.setText(f"Model: loading {name}…")
        services, settings = self.w.services, self.w.settings.model_copy(deep=True)
        self.w.pool.run_task(
            lambda cancel: sv.load_chat_model(services, settings),
            self._on_model_loaded,
            self._on_model_load_failed,
            name="load-model",
        )

    def _on_model_loaded(self, model: Any) -> None:
        if self.w._closing:
            return  # the model manager, closed, frees it
        self.chat_model = model
        self.model_state = "ready"
        self.model_error = ""
        self._update_model_label()
        self.w.model_loaded.emit(str(getattr(model, "name", "")))
        if self._pending_question is not None:
            question, self._pending_question = self._pending_question, None
            self._start_answer(question, reuse_widget=True)

    def _on_model_load_failed(self, message: str) -> None:
        log.warning("the model could not be loaded: %s", message)
        self.model_state = "failed"
        self.model_error = message
        self.w.model_label.setText("Model: failed to load")
        self.w.model_label.setToolTip(message)
        self.w.model_failed.emit(message)
        if self._pending_question is not None:
            self._pending_question = None
            self.w.chat_view.on_chat_failed(f"The model could not be loaded: {message}")
        if self.w._closing:
            return
        box = QMessageBox(self.w)
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
        layers = getattr(stats, "gpu_layers", self.w.settings.offload.gpu_layers)
        where = (
            "CPU only"
            if not layers
            else ("all layers on GPU" if layers < 0 else f"{layers} GPU layers")
        )
        default = " (bundled default)" if not self.w.settings.model.path else ""
        self.w.model_label.setText(f"Model: {name}{default} · {where}")
        notice = getattr(model, "notice", None)
        if notice:
            self.w.statusBar().showMessage(str(notice), 10000)
        tip = notice or ""
        if not self.w.settings.model.path:
            tip = (tip + "\n" if tip else "") + (
                "No model chosen: using the bundled default. "
                "Choose a bigger GGUF in Settings ▸ Model."
            )
        self.w.model_label.setToolTip(tip)
        self.w.welcome.set_model_note(
            "No model chosen yet, so Librarian uses its small bundled model, "
            "SmolLM2-135M-Instruct. A bigger GGUF model (Settings ▸ Model) gives better answers."
            if not self.w.settings.model.path
            else f"Answering with {name}."
        )

    def apply_unload_while_embedding(self, busy: bool) -> None:
        if busy and self.chat_model is not None and self.answer_worker is None:
            self.chat_model = None
            self.model_state = "none"
            self.w.model_label.setText("Model: unloaded while the library is embedded")
            services = self.w.services
            self.w.pool.run_task(lambda cancel: sv.unload_chat_model(services), name="unload-model")
        elif not busy and self.chat_model is None and self.model_state != "loading":
            self.load_model()

    # --- chat --------------------------------------------------------------------------------

    def _on_chat_view_question_submitted(self, question: str) -> None:
        self._start_answer(question)

    def _start_answer(self, question: str, reuse_widget: bool = False) -> None:
        if not reuse_widget:
            self.w.chat_view.begin_answer(question)
        if self.chat_model is None:
            if self.model_state == "failed":
                self.w.chat_view.on_chat_failed(f"No model is loaded: {self.model_error}")
                return
            self._pending_question = question
            if self.w.chat_view.current is not None:
                self.w.chat_view.current.set_status("Waiting for the model to load…")
            if self.model_state == "none":
                self.load_model()
            return
        model, services, store_path = self.chat_model, self.w.services, self.w.store_path
        settings = self.w.settings.model_copy(deep=True)
        device = settings.retrieval.embed_device
        cid = self.conversation_id
        sources = (
            None
            if self.w.source_model.all_searchable_checked()
            else self.w.source_model.searchable_ids()
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
        worker.failed.connect(self.w.chat_view.on_chat_failed)
        worker.finished.connect(self._on_answer_worker_finished)
        self.answer_worker = worker
        self.w.pool.start(worker)

    def _on_answer_worker_event_emitted(self, event: Any) -> None:
        self.w.chat_view.on_chat_event(event)
        if isinstance(event, Done):
            cid = event.conversation_id
            if cid is not None and cid != self.conversation_id:
                self.conversation_id = cid
                self.refresh_conversations()

    def _on_answer_worker_finished(self) -> None:
        self.answer_worker = None
        saved_in, self._answer_saved_in = self._answer_saved_in, None
        if saved_in is not None and self.conversation_id is None and saved_in["cid"] is not None:
            self.conversation_id = saved_in["cid"]
            self.refresh_conversations()
        self.w.chat_view.on_chat_finished()
        self.w.answer_finished.emit()
        if self._reload_after_answer:
            self._reload_after_answer = False
            self.load_model()

    def stop_answer(self) -> None:
        """Esc / Stop: cancel the answer being written (it stops within a fraction of a second)."""
        if self._pending_question is not None:
            self._pending_question = None
            self.w.chat_view.on_chat_finished()
        if self.answer_worker is not None:
            self.answer_worker.cancel()

    def new_chat(self) -> None:
        if self.answer_worker is not None:
            self.stop_answer()
        self._answer_saved_in = None  # the stopped turn stays in its own conversation
        self.conversation_id = None
        self.w.chat_view.show_conversation([])
        self.refresh_conversations()
        self.w.tabs.setCurrentIndex(0)
        self.w.chat_view.input.setFocus()

    # The history (SQLite) is read and written on workers, each with its own connection: a
    # write waits while an answer being saved holds the database, and the window must not.

    def _history_task(
        self, call: Any, done: Any = None, failed: str = "The chat history is unavailable"
    ) -> None:
        def on_error(message: str) -> None:
            log.warning("%s: %s", failed, message)
            self.w.statusBar().showMessage(f"{failed}: {message}", 8000)

        self.w.pool.run_task(lambda cancel: sv.with_history(call), done, on_error, name="history")

    def refresh_conversations(self) -> None:
        def shown(infos: list[Any]) -> None:
            self.w.conversations.set_conversations(infos, self.conversation_id)
            self.w.conversations_refreshed.emit()

        self._history_task(lambda h: list(h.list_conversations()), shown)

    def _on_conversations_conversation_selected(self, cid: Any) -> None:
        if cid is None or cid == self.conversation_id:
            return
        if self.answer_worker is not None:
            self.stop_answer()
        self.conversation_id = cid

        def shown(conv: Any) -> None:
            if self.conversation_id == cid:
                self.w.chat_view.show_conversation(conv.messages)

        self._history_task(
            lambda h: h.load_conversation(cid), shown, "That conversation cannot be opened"
        )

    def _on_conversations_rename_requested(self, cid: int, title: str) -> None:
        self._history_task(
            lambda h: h.rename_conversation(cid, title), lambda _r: self.refresh_conversations()
        )

    def _on_conversations_delete_requested(self, cid: int) -> None:
        if cid == self.conversation_id:
            self.new_chat()
        self._history_task(
            lambda h: h.delete_conversation(cid), lambda _r: self.refresh_conversations()
        )

    def _on_export_triggered(self) -> None:
        cid = self.conversation_id
        if cid is None:
            self.w.statusBar().showMessage("Nothing to export yet: ask a question first.", 5000)
            return
        path, _ = QFileDialog.getSaveFileName(
            self.w, "Export conversation", "conversation.md", "Markdown (*.md)"
        )
        if path:
            self._history_task(
                lambda h: Path(path).write_text(h.export_markdown(cid), encoding="utf-8"),
                lambda _r: self.w.statusBar().showMessage(f"Exported to {path}", 5000),
                "The conversation could not be exported",
            )
