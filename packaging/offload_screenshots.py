"""Screenshots of the GPU offload page for three machines this computer may not be: a dense model
on one GPU, a mixture-of-experts model (GPT-OSS-120B) on a 16 GB GPU, and the same model on two.

Run by path (`python packaging/offload_screenshots.py [--out screenshots]`). The GPU list and the
free RAM are faked (patched where the page reads them) and llama.cpp is taken as built with CUDA;
the models are the bundled SmolLM2 and a sparse header of GPT-OSS-120B (its real tensor layout,
no weights). The page then does exactly what it does on such a machine: reads the header,
estimates, recommends; the script clicks "Use the recommended setting" and photographs it.

    screenshots/offload-dense.png   SmolLM2 on an 8 GB GPU
    screenshots/offload-moe.png     GPT-OSS-120B on a 16 GB GPU with 64 GB of RAM
    screenshots/offload-two-gpus.png   GPT-OSS-120B on two 16 GB GPUs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GiB = 1024**3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "screenshots"))
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    home = Path(tempfile.mkdtemp(prefix="librarian-offload-shot-"))
    os.environ["LIBRARIAN_HOME"] = str(home)

    from PySide6.QtCore import QThread
    from PySide6.QtWidgets import QApplication

    from app.llm import gpu
    from app.llm.default_model import default_model_path
    from app.settings import Settings
    from app.ui.application import make_application
    from app.ui.settings_dialog import SettingsDialog
    from app.ui.workers import WorkerPool
    from tests.unit.app.llm.model_headers import write_gpt_oss_120b

    (home / "models").mkdir()
    big = write_gpt_oss_120b(home / "models")
    card = [gpu.GpuInfo(0, "NVIDIA GeForce RTX 4080", 16 * GiB, 15 * GiB)]
    small_card = [gpu.GpuInfo(0, "NVIDIA GeForce RTX 3070", 8 * GiB, 7 * GiB)]
    two = [card[0], gpu.GpuInfo(1, "NVIDIA GeForce RTX 4080", 16 * GiB, 15 * GiB)]
    gpu.gpu_offload_supported = lambda: True  # type: ignore[assignment]
    gpu.ram_available_bytes = lambda: 58 * GiB  # type: ignore[assignment]
    cases = [
        ("offload-dense.png", str(default_model_path()), small_card),
        ("offload-moe.png", str(big), card),
        ("offload-two-gpus.png", str(big), two),
    ]
    app = make_application()
    pool = WorkerPool()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for name, model, gpus in cases:
        gpu.list_gpus = lambda gpus=gpus: list(gpus)  # type: ignore[misc]
        settings = Settings()
        settings.model.path = model
        settings.model.context_length = 8192
        settings.offload.flash_attention = True
        dialog = SettingsDialog(settings, pool)
        dialog.resize(900, 760)
        dialog.page_list.setCurrentRow(dialog.pages.index(dialog.offload_page))
        dialog.show()
        page = dialog.offload_page
        for _ in range(200):  # the header is read on a worker thread
            app.processEvents()
            if page.info is not None and "Looking" not in page.gpu_note.text():
                break
            QThread.msleep(25)
        page.recommend_button.click()
        for _ in range(20):  # let the layout settle around the new text
            app.processEvents()
            QThread.msleep(10)
        dialog.grab().save(str(out / name))
        print(f"wrote {out / name}: {page.fit_label.text()[:160]}…")
        failures += page.info is None
        dialog.reject()
    pool.stop_all()
    QApplication.processEvents()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
