"""The GPU offload page of the settings: this machine's GPUs and RAM, what fits where (layers on
the GPUs, a mixture-of-experts model's experts in RAM, the KV cache), and the llama.cpp offload
options with their refusal rules."""

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

from app.llm.base import ModelError
from app.settings import Settings
from app.ui.settings_pages import SettingsPage, gib, heading_label, note_label
from app.ui.workers import WorkerPool

log = logging.getLogger(__name__)


def _machine(model_path: str) -> tuple[Any, list[Any], bool, str, int | None]:
    """(GgufInfo or None, GPUs, llama.cpp GPU support, error, free RAM) — read off the GUI
    thread."""
    from app.llm.gguf_info import read_gguf_info
    from app.llm.gpu import gpu_offload_supported, list_gpus, ram_available_bytes

    info, error = None, ""
    try:
        if model_path:
            info = read_gguf_info(model_path)
        else:
            from app.llm.default_model import default_model_path

            info = read_gguf_info(default_model_path())
    except Exception as exc:
        error = str(exc)
    return info, list_gpus(), gpu_offload_supported(), error, ram_available_bytes()


class OffloadPage(SettingsPage):
    """GPU layers and experts in RAM with a live fit estimate; flash attention, KV cache and
    its placement, several GPUs' split, unloading."""

    title = "GPU offload"

    def __init__(self, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self.info: Any = None
        self.gpus: list[Any] = []
        self.offload_supported = False
        self.ram_available: int | None = None
        self.n_ctx = 4096
        self._pending_layers = 0
        self._pending_experts = 0
        self._recommended_split: tuple[float, ...] | None = None
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
        experts_row = QHBoxLayout()
        self.experts_slider = QSlider(Qt.Orientation.Horizontal)
        self.experts_slider.setObjectName("expertsSlider")
        self.experts_slider.setRange(0, 1)
        self.experts_slider.setToolTip(
            "A mixture-of-experts model (GPT-OSS, Qwen3-30B-A3B, GLM-4.5-Air…) uses a few of its "
            "experts per token. Keeping the expert weights of the first N layers in system RAM "
            "leaves the GPU to attention and the KV cache, which every token needs: that is how "
            "a 60 GB model runs on a 16 GB GPU."
        )
        self.experts_slider.valueChanged.connect(self._on_experts_slider_value_changed)
        self.experts_label = QLabel("none")
        self.experts_label.setMinimumWidth(90)
        self.experts_caption = QLabel("Experts in RAM:")
        experts_row.addWidget(self.experts_caption)
        experts_row.addWidget(self.experts_slider, 1)
        experts_row.addWidget(self.experts_label)
        layout.addLayout(experts_row)
        self.fit_box = QFrame()
        self.fit_box.setObjectName("fitBox")
        fit_layout = QVBoxLayout(self.fit_box)
        self.fit_label = note_label("")
        self.fit_label.setObjectName("fitLabel")
        fit_layout.addWidget(self.fit_label)
        self.recommend_button = QPushButton("Use the recommended setting")
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
        self.kv_ram_check = QCheckBox("Keep the KV cache in RAM (more layers fit on the GPU)")
        self.kv_ram_check.toggled.connect(lambda _on: self._update_fit())
        self.main_gpu_combo = QComboBox()
        self.main_gpu_combo.currentIndexChanged.connect(lambda _i: self._update_fit())
        self.split_edit = QLineEdit()
        self.split_edit.setPlaceholderText(
            "e.g. 3,1 — shares of the layers per GPU; empty: by free memory"
        )
        self.split_edit.editingFinished.connect(self._update_fit)
        self.split_mode_combo = QComboBox()
        self.split_mode_combo.addItem("By layers (each GPU holds whole layers)", "layer")
        self.split_mode_combo.addItem("By rows (every matrix split across the GPUs)", "row")
        self.split_mode_combo.currentIndexChanged.connect(lambda _i: self._update_fit())
        self.unload_check = QCheckBox("Unload the model while the library is being embedded")
        form.addRow("KV cache:", self.kv_combo)
        form.addRow("", self.flash_check)
        form.addRow("", self.kv_ram_check)
        form.addRow("Main GPU:", self.main_gpu_combo)
        form.addRow("Split mode:", self.split_mode_combo)
        form.addRow("Split:", self.split_edit)
        form.addRow("", self.unload_check)
        layout.addLayout(form)
        layout.addStretch(1)

    # --- load / check / save -----------------------------------------------------------------

    def load(self, settings: Settings) -> None:
        o = settings.offload
        self._pending_layers = o.gpu_layers
        self._pending_experts = o.cpu_moe_layers
        self.flash_check.setChecked(o.flash_attention)
        self.kv_ram_check.setChecked(not o.kv_offload)
        self.split_mode_combo.setCurrentIndex(max(0, self.split_mode_combo.findData(o.split_mode)))
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
        except ModelError as exc:
            return str(exc).replace("--tensor-split", "The split")
        return None

    def save(self, settings: Settings) -> None:
        o = settings.offload
        o.gpu_layers = self.gpu_layers()
        o.cpu_moe_layers = self.cpu_moe_layers()
        o.flash_attention = self.flash_check.isChecked()
        o.kv_offload = not self.kv_ram_check.isChecked()
        o.split_mode = self.split_mode_combo.currentData() or "layer"
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

    def cpu_moe_layers(self) -> int:
        """The experts slider as OffloadSettings.cpu_moe_layers: its top position is -1 (all)."""
        value = self.experts_slider.value()
        if self.info is None or not self.info.is_moe:
            return self._pending_experts
        return -1 if value >= self.experts_slider.maximum() else value

    def _split(self) -> list[float] | None:
        from app.llm.offload_args import parse_tensor_split

        return parse_tensor_split(self.split_edit.text())

    def _on_machine_read(self, result: tuple[Any, list[Any], bool, str, int | None]) -> None:
        self.info, self.gpus, self.offload_supported, error, self.ram_available = result
        from app.llm.placement import offloadable_layers

        n_layers = offloadable_layers(self.info) if self.info is not None else 0
        self.layers_slider.blockSignals(True)
        self.layers_slider.setRange(0, max(1, n_layers))
        layers = self._pending_layers
        self.layers_slider.setValue(n_layers if layers < 0 else min(layers, n_layers))
        self.layers_slider.blockSignals(False)
        is_moe = self.info is not None and self.info.is_moe
        blocks = self.info.block_count if self.info is not None else 0
        self.experts_slider.blockSignals(True)
        self.experts_slider.setRange(0, max(1, blocks))
        experts = self._pending_experts
        self.experts_slider.setValue(blocks if experts < 0 else min(experts, blocks))
        self.experts_slider.blockSignals(False)
        self.main_gpu_combo.blockSignals(True)
        self.main_gpu_combo.clear()
        for g in self.gpus:
            self.main_gpu_combo.addItem(f"{g.index}: {g.name} ({gib(g.free_bytes)} free)", g.index)
        idx = self.main_gpu_combo.findData(getattr(self, "_main_gpu", 0))
        self.main_gpu_combo.setCurrentIndex(max(0, idx))
        self.main_gpu_combo.blockSignals(False)
        has_gpu = bool(self.gpus) and self.offload_supported
        for w in (self.main_gpu_combo, self.split_edit, self.split_mode_combo):
            w.setEnabled(len(self.gpus) > 1)
        self.layers_slider.setEnabled(has_gpu)
        self.experts_slider.setEnabled(has_gpu and is_moe)
        self.kv_ram_check.setEnabled(has_gpu)
        self.recommend_button.setEnabled(has_gpu)
        for row_widget in (self.experts_caption, self.experts_slider, self.experts_label):
            row_widget.setVisible(is_moe)
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
            lines = [
                f"GPU {g.index}: {g.name} — {gib(g.free_bytes)} free of {gib(g.total_bytes)}"
                for g in self.gpus
            ]
            self.gpu_note.setText("<br>".join(lines))
        if self.ram_available is not None:
            self.gpu_note.setText(
                self.gpu_note.text() + f"<br>System memory: {gib(self.ram_available)} available"
            )
        if error:
            self.gpu_note.setText(self.gpu_note.text() + f"<br><i>Model: {error}</i>")
        self._on_layers_slider_value_changed(self.layers_slider.value())

    def _on_layers_slider_value_changed(self, value: int) -> None:
        n = self.layers_slider.maximum() if self.info is not None else 0
        self.layers_label.setText(f"all {n}" if n and value >= n else f"{value} of {n}")
        self._update_fit()

    def _on_experts_slider_value_changed(self, value: int) -> None:
        n = self.experts_slider.maximum()
        self.experts_label.setText(
            "none" if value == 0 else f"all {n} layers" if value >= n else f"first {value} of {n}"
        )
        self._update_fit()

    def _on_recommend_clicked(self) -> None:
        est = self._estimate()
        if est is None or self.info is None:
            return
        self.layers_slider.setValue(
            self.layers_slider.maximum() if est.gpu_layers < 0 else est.gpu_layers
        )
        if self.info.is_moe:
            self.experts_slider.setValue(
                self.experts_slider.maximum() if est.cpu_moe < 0 else est.cpu_moe
            )
        if est.tensor_split:
            self.split_edit.setText(",".join(f"{s:g}" for s in est.tensor_split))
            self._update_fit()

    def _split_or_none(self) -> list[float] | None:
        try:
            return self._split()
        except ModelError:
            return None

    def _estimate(self) -> Any:
        if self.info is None:
            return None
        from app.llm.fit import estimate_fit

        return estimate_fit(
            self.info,
            self.gpus,
            n_ctx=self._context(),
            cache_type=self.kv_combo.currentData() or "f16",
            flash_attention=self.flash_check.isChecked(),
            tensor_split=self._split_or_none(),
            main_gpu=self.main_gpu_combo.currentData() or 0,
            gpu_offload=self.offload_supported,
            split_mode=self.split_mode_combo.currentData() or "layer",
            kv_offload=not self.kv_ram_check.isChecked(),
            ram_available=self.ram_available,
        )

    def _context(self) -> int:
        from app.llm.placement import effective_context

        return effective_context(self.info, self.n_ctx) if self.info is not None else self.n_ctx

    def _update_fit(self) -> None:
        if self.info is None:
            self.fit_label.setText("No model header to estimate from.")
            return
        from app.llm.fit import RAM_RESERVE_BYTES, setting_need

        est = self._estimate()
        info = self.info
        n_ctx = self._context()
        kind = (
            f"mixture of experts: {info.expert_count} experts, {info.expert_used_count} per "
            f"token, experts {gib(info.expert_bytes)}"
            if info.is_moe
            else "dense"
        )
        lines = [
            f"<b>{info.display_name}</b>: {info.block_count} layers ({kind}), "
            f"weights {gib(info.weight_bytes)}, KV cache {gib(est.kv_cache_bytes)} "
            f"at {n_ctx:,} tokens."
        ]
        if self.gpus and self.offload_supported:
            used, need = setting_need(
                info,
                self.gpus,
                gpu_layers=self.gpu_layers(),
                cpu_moe=self.cpu_moe_layers(),
                n_ctx=n_ctx,
                cache_type=self.kv_combo.currentData() or "f16",
                flash_attention=self.flash_check.isChecked(),
                tensor_split=self._split_or_none(),
                main_gpu=self.main_gpu_combo.currentData() or 0,
                split_mode=self.split_mode_combo.currentData() or "layer",
                kv_offload=not self.kv_ram_check.isChecked(),
            )
            for g, b in zip(used, need.gpu_bytes, strict=False):
                ok = "✓" if b <= g.free_bytes else "✗ too much"
                lines.append(
                    f"GPU {g.index}: this setting needs {gib(b)} of {gib(g.free_bytes)} free {ok}"
                )
            ram_line = f"System memory: {gib(need.cpu_bytes)}"
            parts = []
            if need.cpu_expert_bytes:
                parts.append(f"experts {gib(need.cpu_expert_bytes)}")
            if need.cpu_kv_bytes:
                parts.append(f"KV cache {gib(need.cpu_kv_bytes)}")
            if parts:
                ram_line += " (" + ", ".join(parts) + ")"
            if self.ram_available is not None:
                room = max(0, self.ram_available - RAM_RESERVE_BYTES)
                ok = "✓" if need.cpu_bytes <= room else "✗ more than is free"
                ram_line += f" of {gib(self.ram_available)} available {ok}"
            lines.append(ram_line)
        lines.append(f"<b>{est.title}</b> — {est.detail()}.")
        if est.verdict not in ("cpu", "none") or est.gpu_fallback:
            lines.append(f"Recommended: <b>{_recommendation(est)}</b>.")
        self.fit_label.setText("<br>".join(lines))


def _recommendation(est: Any) -> str:
    """The recommended setting in the page's own words."""
    layers = "all" if est.gpu_layers < 0 else str(est.gpu_layers)
    text = f"GPU layers {layers}"
    if est.cpu_moe:
        experts = "all layers" if est.cpu_moe < 0 else f"the first {est.cpu_moe} layers"
        text += f", experts of {experts} in RAM"
    if est.tensor_split:
        text += ", split " + ",".join(f"{s:g}" for s in est.tensor_split)
    return text
