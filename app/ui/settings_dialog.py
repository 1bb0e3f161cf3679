"""SettingsDialog: one small page class per settings group, each with load / check / save."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import paths
from app.settings import Settings
from app.ui.workers import WorkerPool

log = logging.getLogger(__name__)

GiB = 1024**3


def gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB" if n < 10 * GiB else f"{n / GiB:.1f} GiB"


def _note(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("pageNote")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _heading(text: str) -> QLabel:
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
        layout.addWidget(_heading("Model"))
        layout.addWidget(
            _note(
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


def _machine(model_path: str) -> tuple[Any, list[Any], bool, str]:
    """(GgufInfo or None, GPUs, llama.cpp GPU support, error) — read off the GUI thread."""
    from app.llm.gguf_info import read_gguf_info
    from app.llm.gpu import gpu_offload_supported, list_gpus

    info, error = None, ""
    try:
        if model_path:
            info = read_gguf_info(model_path)
        else:
            from app.llm.default_model import default_model_path

            info = read_gguf_info(default_model_path())
    except Exception as exc:
        error = str(exc)
    return info, list_gpus(), gpu_offload_supported(), error


class OffloadPage(SettingsPage):
    """GPU layers with a live fit estimate; flash attention, KV cache, GPU split, unloading."""

    title = "GPU offload"

    def __init__(self, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self.info: Any = None
        self.gpus: list[Any] = []
        self.offload_supported = False
        self.n_ctx = 4096
        self._pending_layers = 0
        layout = QVBoxLayout(self)
        layout.addWidget(_heading("GPU offload"))
        self.gpu_note = _note("Looking for GPUs…")
        self.gpu_note.setObjectName("gpuNote")
        layout.addWidget(self.gpu_note)
        slider_row = QHBoxLayout()
        self.layers_slider = QSlider(Qt.Orientation.Horizontal)
        self.layers_slider.setObjectName("gpuLayersSlider")
        self.layers_slider.setRange(0, 1)
        self.layers_slider.valueChanged.connect(self._on_layers_slider_value_changed)
        self.layers_label = QLabel("0")
        self.layers_label.setMinimumWidth(90)
        slider_row.addWidget(QLabel("GPU layers:"))
        slider_row.addWidget(self.layers_slider, 1)
        slider_row.addWidget(self.layers_label)
        layout.addLayout(slider_row)
        self.fit_box = QFrame()
        self.fit_box.setObjectName("fitBox")
        fit_layout = QVBoxLayout(self.fit_box)
        self.fit_label = _note("")
        self.fit_label.setObjectName("fitLabel")
        fit_layout.addWidget(self.fit_label)
        self.recommend_button = QPushButton("Use the recommended value")
        self.recommend_button.clicked.connect(self._on_recommend_clicked)
        fit_layout.addWidget(self.recommend_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.fit_box)
        form = QFormLayout()
        self.flash_check = QCheckBox("Flash attention (less memory for long contexts)")
        self.flash_check.toggled.connect(lambda _on: self._update_fit())
        self.kv_combo = QComboBox()
        for value, text in (
            ("f16", "f16 (best quality)"),
            ("q8_0", "q8_0 (half the memory)"),
            ("q4_0", "q4_0 (a quarter)"),
        ):
            self.kv_combo.addItem(text, value)
        self.kv_combo.currentIndexChanged.connect(lambda _i: self._update_fit())
        self.main_gpu_combo = QComboBox()
        self.main_gpu_combo.currentIndexChanged.connect(lambda _i: self._update_fit())
        self.split_edit = QLineEdit()
        self.split_edit.setPlaceholderText(
            "e.g. 3,1 — shares of the layers per GPU; empty: by free memory"
        )
        self.split_edit.editingFinished.connect(self._update_fit)
        self.unload_check = QCheckBox("Unload the model while the library is being embedded")
        form.addRow("KV cache:", self.kv_combo)
        form.addRow("", self.flash_check)
        form.addRow("Main GPU:", self.main_gpu_combo)
        form.addRow("Split:", self.split_edit)
        form.addRow("", self.unload_check)
        layout.addLayout(form)
        layout.addStretch(1)

    # --- load / check / save -----------------------------------------------------------------

    def load(self, settings: Settings) -> None:
        o = settings.offload
        self._pending_layers = o.gpu_layers
        self.flash_check.setChecked(o.flash_attention)
        self.kv_combo.setCurrentIndex(max(0, self.kv_combo.findData(o.kv_cache_type)))
        self._main_gpu = o.main_gpu
        self.split_edit.setText(
            ",".join(f"{s:g}" for s in o.tensor_split) if o.tensor_split else ""
        )
        self.unload_check.setChecked(o.unload_while_embedding)
        self.n_ctx = settings.model.context_length
        self.refresh_machine(settings.model.path or "")

    def check(self) -> str | None:
        if self.kv_combo.currentData() != "f16" and not self.flash_check.isChecked():
            return (
                "A quantized KV cache (q8_0, q4_0) needs flash attention: turn it on, or use f16."
            )
        try:
            self._split()
        except ValueError:
            return "The split must be numbers separated by commas, such as 3,1."
        return None

    def save(self, settings: Settings) -> None:
        o = settings.offload
        o.gpu_layers = self.gpu_layers()
        o.flash_attention = self.flash_check.isChecked()
        o.kv_cache_type = self.kv_combo.currentData()
        o.main_gpu = max(0, self.main_gpu_combo.currentData() or 0)
        o.tensor_split = self._split()
        o.unload_while_embedding = self.unload_check.isChecked()

    # --- machine and estimate ----------------------------------------------------------------

    def refresh_machine(self, model_path: str) -> None:
        self._pool.run_task(
            lambda cancel: _machine(model_path), self._on_machine_read, name="read-gguf"
        )

    def set_context(self, n_ctx: int) -> None:
        self.n_ctx = n_ctx
        self._update_fit()

    def gpu_layers(self) -> int:
        """The slider as OffloadSettings.gpu_layers: its top position is -1 (all layers)."""
        value = self.layers_slider.value()
        return -1 if value >= self.layers_slider.maximum() and self.info is not None else value

    def _split(self) -> list[float] | None:
        text = self.split_edit.text().strip()
        if not text:
            return None
        return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]

    def _on_machine_read(self, result: tuple[Any, list[Any], bool, str]) -> None:
        self.info, self.gpus, self.offload_supported, error = result
        n_layers = self.info.block_count if self.info is not None else 0
        self.layers_slider.blockSignals(True)
        self.layers_slider.setRange(0, max(1, n_layers))
        layers = self._pending_layers
        self.layers_slider.setValue(n_layers if layers < 0 else min(layers, n_layers))
        self.layers_slider.blockSignals(False)
        self.main_gpu_combo.blockSignals(True)
        self.main_gpu_combo.clear()
        for g in self.gpus:
            self.main_gpu_combo.addItem(f"{g.index}: {g.name} ({gib(g.free_bytes)} free)", g.index)
        idx = self.main_gpu_combo.findData(getattr(self, "_main_gpu", 0))
        self.main_gpu_combo.setCurrentIndex(max(0, idx))
        self.main_gpu_combo.blockSignals(False)
        has_gpu = bool(self.gpus) and self.offload_supported
        for w in (self.main_gpu_combo, self.split_edit):
            w.setEnabled(len(self.gpus) > 1)
        self.layers_slider.setEnabled(has_gpu)
        self.recommend_button.setEnabled(has_gpu)
        if not self.gpus:
            self.gpu_note.setText(
                "<b>No GPU was found on this computer</b> — the model runs on the CPU, which "
                "works but is slower.<br>With an NVIDIA GPU (and llama-cpp-python built with CUDA: "
                "<code>make install</code> does it when <code>nvcc</code> is present), the layers "
                "you move onto it run several times faster, so answers start sooner and stream "
                "quicker, and bigger models become usable. The slider below would choose how many "
                "layers go to the GPU; the estimate tells you what fits in its memory."
            )
        elif not self.offload_supported:
            names = ", ".join(g.name for g in self.gpus)
            self.gpu_note.setText(
                f"Found {names}, but the installed llama.cpp was built without GPU support, so "
                'everything runs on the CPU. Rebuild it with CUDA (CMAKE_ARGS="-DGGML_CUDA=on", '
                "see the README) to use the GPU."
            )
        else:
            lines = "<br>".join(
                f"GPU {g.index}: {g.name} — {gib(g.free_bytes)} free of {gib(g.total_bytes)}"
                for g in self.gpus
            )
            self.gpu_note.setText(lines)
        if error:
            self.gpu_note.setText(self.gpu_note.text() + f"<br><i>Model: {error}</i>")
        self._on_layers_slider_value_changed(self.layers_slider.value())

    def _on_layers_slider_value_changed(self, value: int) -> None:
        n = self.info.block_count if self.info is not None else 0
        self.layers_label.setText(f"all {n}" if n and value >= n else f"{value} of {n}")
        self._update_fit()

    def _on_recommend_clicked(self) -> None:
        est = self._estimate()
        if est is not None and self.info is not None:
            value = est.gpu_layers
            self.layers_slider.setValue(self.info.block_count if value < 0 else value)

    def _estimate(self) -> Any:
        if self.info is None:
            return None
        from app.llm.fit import estimate_fit

        try:
            split = self._split()
        except ValueError:
            split = None
        return estimate_fit(
            self.info,
            self.gpus,
            n_ctx=self.n_ctx,
            cache_type=self.kv_combo.currentData() or "f16",
            flash_attention=self.flash_check.isChecked(),
            tensor_split=split,
            main_gpu=self.main_gpu_combo.currentData() or 0,
            gpu_offload=self.offload_supported,
        )

    def _update_fit(self) -> None:
        if self.info is None:
            self.fit_label.setText("No model header to estimate from.")
            return
        from app.llm.fit import memory_need

        est = self._estimate()
        layers = self.gpu_layers()
        lines = [
            f"<b>{self.info.name}</b>: {self.info.block_count} layers, "
            f"weights {gib(self.info.weight_bytes)}, "
            f"KV cache {gib(est.kv_cache_bytes)} at {self.n_ctx:,} tokens."
        ]
        if self.gpus and self.offload_supported:
            need = memory_need(
                self.info,
                layers,
                n_ctx=self.n_ctx,
                cache_type=self.kv_combo.currentData() or "f16",
                flash_attention=self.flash_check.isChecked(),
            )
            for g, b in zip(self.gpus, need.gpu_bytes, strict=False):
                ok = "✓" if b <= g.free_bytes else "✗ too much"
                lines.append(
                    f"GPU {g.index}: this setting needs {gib(b)} of {gib(g.free_bytes)} free {ok}"
                )
            lines.append(f"System memory: {gib(need.cpu_bytes)}")
        verdict = {"full": "Fits fully on the GPU", "partial": "Fits partly", "cpu": "CPU only"}[
            est.verdict
        ]
        rec = "all" if est.gpu_layers < 0 else str(est.gpu_layers)
        lines.append(f"<b>{verdict}</b> — {est.summary()}. Recommended GPU layers: <b>{rec}</b>.")
        self.fit_label.setText("<br>".join(lines))


class RetrievalPage(SettingsPage):
    """How passages are found: how many, by which search, embedded on which device."""

    title = "Retrieval"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addWidget(_heading("Retrieval"))
        layout.addWidget(
            _note(
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
        form.addRow("Passages per question:", self.passages_spin)
        form.addRow("Search:", self.mode_combo)
        form.addRow("Embedding device:", self.device_combo)
        layout.addLayout(form)
        layout.addStretch(1)

    def load(self, settings: Settings) -> None:
        r = settings.retrieval
        self.passages_spin.setValue(r.passages)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(r.mode)))
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(r.embed_device)))

    def save(self, settings: Settings) -> None:
        r = settings.retrieval
        r.passages = self.passages_spin.value()
        r.mode = self.mode_combo.currentData()
        r.embed_device = self.device_combo.currentData()


class LibraryPage(SettingsPage):
    """Where the library's store lives."""

    title = "Library"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addWidget(_heading("Library"))
        layout.addWidget(
            _note(
                "Where Librarian keeps its index of your books and archives (the files themselves "
                "stay where they are). Empty: the default, "
                f"<code>{paths.home() / 'library'}</code>. "
                "All user data moves together with the LIBRARIAN_HOME environment variable."
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
        path = Path(text).expanduser()
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
