"""The GPU offload page of the settings: this machine's GPUs, what fits where, and the
llama.cpp offload options with their refusal rules."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.settings import Settings
from app.ui.settings_pages import SettingsPage, gib, heading_label, note_label
from app.ui.workers import WorkerPool

log = logging.getLogger(__name__)


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
        layout.addWidget(heading_label("GPU offload"))
        self.gpu_note = note_label("Looking for GPUs…")
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
        self.fit_label = note_label("")
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
