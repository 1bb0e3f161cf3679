"""Screenshots of the real app: the demo library, a question answered by the default model.

Run by path (`python packaging/screenshot.py`, or `make screenshot` through screenshot.sh). It
opens the window on a fresh LIBRARIAN_HOME, adds the demo library (the ZIM that
packaging/build_demo.py writes; a small built archive when there is none), waits until it is
keyword-searchable, asks a question with the bundled SmolLM2 and the real embedder, and writes:

    screenshots/main.png       the chat with an answer, its citations and source cards
    screenshots/reader.png     a citation opened in the reader, the passage highlighted
    screenshots/library.png    the library with its progress
    screenshots/settings-offload.png   the GPU offload page
    screenshots/welcome.png    the first-run window
and copies main.png to assets/screenshot.png for the README.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUESTION = "What is photosynthesis?"
log = logging.getLogger("librarian.screenshot")


def find_demo(explicit: str | None) -> Path | None:
    """The demo ZIM: --demo, else the one `make demo` wrote into the user's home."""
    if explicit:
        return Path(explicit)
    sys.path.insert(0, str(REPO))
    from app import paths

    found = sorted(paths.demo_dir().glob("*.zim"))
    return found[0] if found else None


def fallback_zim(folder: Path) -> Path:
    sys.path.insert(0, str(REPO))
    from tests.builders import make_zim, sample_corpus

    return make_zim(folder / "sample_wiki.zim", sample_corpus().articles, title="Sample Wiki")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", help="the demo ZIM to use (default: the one make demo built)")
    parser.add_argument("--out", default=str(REPO / "screenshots"))
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--timeout", type=int, default=420, help="seconds before giving up")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    demo = find_demo(args.demo)
    home = Path(tempfile.mkdtemp(prefix="librarian-shot-"))
    os.environ["LIBRARIAN_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    (home / "demo").mkdir(parents=True)
    if demo is not None and demo.is_file():
        os.symlink(demo, home / "demo" / demo.name)
        question = args.question
    else:
        log.warning("no demo library found: using a small built archive")
        fallback_zim(home / "demo")
        question = "Where did the lighthouse of Alexandria stand?"

    sys.path.insert(0, str(REPO))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui.application import make_application
    from app.ui.main_window import MainWindow

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = make_application()
    window = MainWindow()
    window.resize(1360, 860)
    window.show()
    state = {"step": "welcome", "ok": False}

    def grab(widget, name: str) -> None:  # type: ignore[no-untyped-def]
        QApplication.processEvents()
        path = out / name
        widget.grab().save(str(path))
        log.info("wrote %s", path)

    def searchable() -> bool:
        return any(r.stage in ("keyword", "embedding", "ready") for r in window.source_model.rows())

    def tick() -> None:
        step = state["step"]
        if step == "welcome":
            # Hold the first run back a moment so the welcome panel can be photographed.
            window.qsettings.setValue("first_run_done", True)
            window.sources_refreshed.connect(on_first_listing)
            window.start()
            state["step"] = "listing"
        elif step == "ingest" and searchable() and window.chat.chat_model is not None:
            window.tabs.setCurrentIndex(0)
            window.chat_view.input.setPlainText(question)
            window.chat_view._on_input_submitted()
            window.answer_finished.connect(on_answer)
            state["step"] = "answer"
            return
        QTimer.singleShot(500, tick)

    def on_first_listing() -> None:
        if state["step"] != "listing":
            return
        state["step"] = "ingest"
        QTimer.singleShot(
            300, lambda: (grab(window, "welcome.png"), window.library.add_demo_library())
        )

    def on_answer() -> None:
        QTimer.singleShot(300, after_answer)

    def after_answer() -> None:
        grab(window, "main.png")
        answers = window.chat_view.answer_widgets()
        log.info("answer: %s", answers[-1].text if answers else "(none)")
        refs = answers[-1].refs if answers else {}
        if refs:
            window.open_citation(refs[min(refs)])
            wait_reader(40)
        else:
            library()

    def wait_reader(tries: int) -> None:
        if window.reader_view.highlight is not None or tries <= 0:
            grab(window, "reader.png")
            library()
        else:
            QTimer.singleShot(250, lambda: wait_reader(tries - 1))

    def library() -> None:
        window.tabs.setCurrentWidget(window.library_view)
        grab(window, "library.png")
        window.tabs.setCurrentIndex(0)
        dialog = window.open_settings("GPU offload")
        QTimer.singleShot(2500, lambda: settings_shot(dialog))

    def settings_shot(dialog) -> None:  # type: ignore[no-untyped-def]
        grab(dialog, "settings-offload.png")
        dialog.reject()
        state["ok"] = True
        window.close()
        app.quit()

    QTimer.singleShot(200, tick)
    QTimer.singleShot(
        args.timeout * 1000,
        lambda: (log.error("timed out at step %s", state["step"]), window.close(), app.quit()),
    )
    app.exec()
    if state["ok"]:
        shutil.copyfile(out / "main.png", REPO / "assets" / "screenshot.png")
        log.info("copied main.png to assets/screenshot.png")
    shutil.rmtree(home, ignore_errors=True)
    return 0 if state["ok"] else 1


if __name__ == "__main__":  # the ingest pipeline spawns processes that re-import this file
    sys.exit(main())
