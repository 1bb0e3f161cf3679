"""The settings pages the dialog shows (app.ui.settings_dialog): a small class per settings
group, each with load / check / save. The GPU offload page is app.ui.offload_page."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import paths
from app.settings import Settings
from app.ui.workers import WorkerPool
from ingest.library_location import UnsupportedLocation, is_remote, library_location

log = logging.getLogger(__name__)

GiB = 1024**3


def gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB" if n < 10 * GiB else f"{n / GiB:.1f} GiB"


def note_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("pageNote")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def heading_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("pageHeading")
    return label


class SettingsPage(QWidget):
    """A page: `load` fills the widgets, `check` returns a problem or None, `save` writes back."""

    title = ""

    def load(self, settings: Settings) -> None:
        raise NotImplementedError

    def check(self) -> str | None:
        return None

    def save(self, settings: Settings) -> None:
        raise NotImplementedError


class ModelPage(SettingsPage):
    """Which GGUF answers, and how: context length, threads, temperature, answer length."""

    title = "Model"
    model_changed = Signal(str)  # path ("" = the bundled default)
    context_changed = Signal(int)

    def __init__(self, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        layout = QVBoxLayout(self)
        layout.addWidget(heading_label("Model"))
        layout.addWidget(
            note_label(
                "The GGUF model that writes the answers. Leave the file empty to use the bundled "
                "default, SmolLM2-135M-Instruct: small and quick, but a bigger model answers "
                "better."
            )
        )
        row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("Bundled default (SmolLM2-135M-Instruct)")
        self.path_edit.setClearButtonEnabled(True)
        self.path_edit.textChanged.connect(self._on_path_edit_text_changed)
        browse = QPushButton("Choose file…")
        browse.clicked.connect(self._on_browse_clicked)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        layout.addWidget(QLabel("GGUF files found on this computer:"))
        self.found_list = QListWidget()
        self.found_list.setObjectName("foundModels")
        self.found_list.setMinimumHeight(110)
        self.found_list.itemClicked.connect(self._on_found_list_item_clicked)
        self.found_list.addItem("Looking for models…")
        layout.addWidget(self.found_list, 1)
        form = QFormLayout()
        self.context_spin = QSpinBox()
        self.context_spin.setRange(512, 262144)
        self.context_spin.setSingleStep(1024)
        self.context_spin.setSuffix(" tokens")
        self.context_spin.valueChanged.connect(self.context_changed)
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(0, 512)
        self.threads_spin.setSpecialValueText("Automatic")
        self.temperature_spin = QDoubleSpinBox()
        self.temperature_spin.setRange(0.0, 2.0)
        self.temperature_spin.setSingleStep(0.1)
        self.answer_spin = QSpinBox()
        self.answer_spin.setRange(16, 8192)
        self.answer_spin.setSingleStep(64)
        self.answer_spin.setSuffix(" tokens")
        form.addRow("Context length:", self.context_spin)
        form.addRow("CPU threads:", self.threads_spin)
        form.addRow("Temperature:", self.temperature_spin)
        form.addRow("Longest answer:", self.answer_spin)
        layout.addLayout(form)
        self._pool.run_task(
            lambda cancel: _find_models(),
            self._on_models_found,
            self._on_models_failed,
            "find-models",
        )

    def load(self, settings: Settings) -> None:
        m = settings.model
        self.path_edit.setText(m.path or "")
        self.context_spin.setValue(m.context_length)
        self.threads_spin.setValue(m.threads or 0)
        self.temperature_spin.setValue(m.temperature)
        self.answer_spin.setValue(m.max_answer_tokens)

    def check(self) -> str | None:
        path = self.path_edit.text().strip()
        if path:
            p = Path(path).expanduser()
            if not p.is_file():
                return f"The model file {path} does not exist."
            if p.suffix.lower() != ".gguf":
                return f"{p.name} is not a GGUF file (it should end in .gguf)."
        if self.answer_spin.value() >= self.context_spin.value():
            return "The longest answer must be shorter than the context length."
        return None

    def save(self, settings: Settings) -> None:
        m = settings.model
        m.path = self.path_edit.text().strip() or None
        m.context_length = self.context_spin.value()
        m.threads = self.threads_spin.value() or None
        m.temperature = round(self.temperature_spin.value(), 2)
        m.max_answer_tokens = self.answer_spin.value()

    def model_path(self) -> str:
        return self.path_edit.text().strip()

    def _on_path_edit_text_changed(self, text: str) -> None:
        self.model_changed.emit(text.strip())

    def _on_browse_clicked(self) -> None:
        start = self.path_edit.text() or str(paths.models_dir())
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a GGUF model", start, "GGUF models (*.gguf)"
        )
        if path:
            self.path_edit.setText(path)

    def _on_found_list_item_clicked(self, item: QListWidgetItem) -> None:
        data = item.data(Qt.ItemDataRole.UserRole)
        if data is None:
            return
        path, origin = data
        self.path_edit.setText("" if origin == "bundled" else path)

    def _on_models_found(self, models: list[Any]) -> None:
        self.found_list.clear()
        for mf in models:
            info = mf.info
            if info is None:
                text = f"{mf.path.name} — unreadable: {mf.error}"
            else:
                tmpl = "" if info.has_chat_template else " · no chat template"
                text = (
                    f"{info.name} · {info.quantization} · {gib(info.file_size)} · "
                    f"{info.block_count} layers · ctx {info.context_length:,}{tmpl}   ({mf.origin})"
                )
            item = QListWidgetItem(text)
            item.setToolTip(str(mf.path))
            if info is not None:
                item.setData(Qt.ItemDataRole.UserRole, (str(mf.path), mf.origin))
            else:
                item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.found_list.addItem(item)
        if not models:
            self.found_list.addItem(f"No GGUF files found. Put some in {paths.models_dir()}.")

    def _on_models_failed(self, message: str) -> None:
        self.found_list.clear()
        self.found_list.addItem(f"Could not list models: {message}")


def _find_models() -> list[Any]:
    from app.llm.discovery import find_models

    return find_models()


class RetrievalPage(SettingsPage):
    """How passages are found: how many, by which search, embedded on which device."""

    title = "Retrieval"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addWidget(heading_label("Retrieval"))
        layout.addWidget(
            note_label(
                "Each question is answered from a few passages found in the library. Hybrid search "
                "combines meaning (vectors) with exact words (keywords); sources still being "
                "embedded are found by their keywords meanwhile."
            )
        )
        form = QFormLayout()
        self.passages_spin = QSpinBox()
        self.passages_spin.setRange(1, 50)
        self.mode_combo = QComboBox()
        for value, text in (
            ("hybrid", "Hybrid (meaning + keywords)"),
            ("vector", "Meaning only (vectors)"),
            ("keyword", "Keywords only"),
        ):
            self.mode_combo.addItem(text, value)
        self.device_combo = QComboBox()
        for value, text in (
            ("auto", "Automatic (GPU when present)"),
            ("cpu", "CPU"),
            ("cuda", "GPU (CUDA)"),
        ):
            self.device_combo.addItem(text, value)
        self.embedder_combo = QComboBox()
        self.embedder_combo.setObjectName("embedderCombo")
        self.embedder_combo.currentIndexChanged.connect(lambda _i: self._update_embedder_note())
        self.embedder_button = QPushButton("Other folder…")
        self.embedder_button.clicked.connect(self._on_embedder_button_clicked)
        embedder_row = QHBoxLayout()
        embedder_row.addWidget(self.embedder_combo, 1)
        embedder_row.addWidget(self.embedder_button)
        form.addRow("Passages per question:", self.passages_spin)
        form.addRow("Search:", self.mode_combo)
        form.addRow("Embedding device:", self.device_combo)
        form.addRow("Embedder:", embedder_row)
        layout.addLayout(form)
        self.embedder_note = note_label("")
        self.embedder_note.setObjectName("embedderNote")
        layout.addWidget(self.embedder_note)
        layout.addStretch(1)
        self._loaded_embedder: str | None = None

    def load(self, settings: Settings) -> None:
        r = settings.retrieval
        self.passages_spin.setValue(r.passages)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(r.mode)))
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(r.embed_device)))
        self._loaded_embedder = r.embedder
        self._fill_embedders(r.embedder)

    def check(self) -> str | None:
        folder = self.embedder_combo.currentData()
        if folder:
            from ingest.embedder_models import read_embedder_folder
            from ingest.errors import IngestError

            try:
                read_embedder_folder(folder)
            except IngestError as exc:
                return str(exc)
        return None

    def save(self, settings: Settings) -> None:
        r = settings.retrieval
        r.passages = self.passages_spin.value()
        r.mode = self.mode_combo.currentData()
        r.embed_device = self.device_combo.currentData()
        r.embedder = self.embedder_combo.currentData() or None

    def _fill_embedders(self, current: str | None) -> None:
        """The bundled embedder, the data folder's embedders/, the Hugging Face cache's
        sentence-transformers models, and the chosen folder if it is elsewhere."""
        from ingest.embedder_models import find_embedders

        self.embedder_combo.blockSignals(True)
        self.embedder_combo.clear()
        self.embedder_combo.addItem(
            "As the library was embedded (the bundled all-MiniLM-L6-v2 for a new one)", None
        )
        for model in find_embedders([("Librarian", paths.embedders_dir())]):
            label = (
                "Bundled: all-MiniLM-L6-v2 (English, 384 dimensions)"
                if model.origin == "bundled"
                else f"{model.name.split('@')[0]} ({model.origin}, {model.dim} dimensions, "
                f"reads {model.reads})"
            )
            self.embedder_combo.addItem(label, str(model.folder))
        if current and self.embedder_combo.findData(current) < 0:
            self.embedder_combo.addItem(current, current)
        self.embedder_combo.setCurrentIndex(max(0, self.embedder_combo.findData(current)))
        self.embedder_combo.blockSignals(False)
        self._update_embedder_note()

    def _on_embedder_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "A sentence-transformers model folder", str(paths.embedders_dir())
        )
        if folder:
            if self.embedder_combo.findData(folder) < 0:
                self.embedder_combo.addItem(folder, folder)
            self.embedder_combo.setCurrentIndex(self.embedder_combo.findData(folder))

    def _update_embedder_note(self) -> None:
        text = (
            "The embedder turns passages and questions into vectors for meaning search. The "
            "bundled one knows English; for other languages choose a multilingual "
            "sentence-transformers model folder (copy it into "
            f"<code>{paths.embedders_dir()}</code> or pick it with <i>Other folder…</i>)."
        )
        if (self.embedder_combo.currentData() or None) != self._loaded_embedder:
            text += (
                "<br><b>Changing it re-embeds every source</b> (with progress, in the "
                "background); keyword search keeps working meanwhile."
            )
        self.embedder_note.setText(text)


class LibraryPage(SettingsPage):
    """Where the library's store lives."""

    title = "Library"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addWidget(heading_label("Library"))
        layout.addWidget(
            note_label(
                "Where Librarian keeps its index of your books and archives (the files themselves "
                "stay where they are). Empty: the default, "
                f"<code>{paths.home() / 'library'}</code>. "
                "All user data moves together with the LIBRARIAN_HOME environment variable. "
                "A library on an object store is given by its URI "
                "(<code>s3://bucket/library</code>; credentials from the usual AWS_* variables)."
            )
        )
        row = QHBoxLayout()
        self.dir_edit = QLineEdit()
        self.dir_edit.setPlaceholderText(str(paths.home() / "library"))
        self.dir_edit.setClearButtonEnabled(True)
        browse = QPushButton("Choose folder…")
        browse.clicked.connect(self._on_browse_clicked)
        row.addWidget(self.dir_edit, 1)
        row.addWidget(browse)
        layout.addLayout(row)
        layout.addStretch(1)

    def load(self, settings: Settings) -> None:
        self.dir_edit.setText(settings.library.data_dir or "")

    def check(self) -> str | None:
        text = self.dir_edit.text().strip()
        if not text:
            return None
        try:
            where = library_location(text)
        except UnsupportedLocation as exc:
            return str(exc)
        if is_remote(where):
            return None  # reached when the library opens; its errors say what went wrong
        path = Path(where)
        if path.exists() and not path.is_dir():
            return f"{path} is a file, not a folder."
        parent = path if path.exists() else next((p for p in path.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK):
            return f"Librarian cannot write in {path}."
        return None

    def save(self, settings: Settings) -> None:
        settings.library.data_dir = self.dir_edit.text().strip() or None

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Library folder", self.dir_edit.text() or str(paths.home())
        )
        if folder:
            self.dir_edit.setText(folder)
