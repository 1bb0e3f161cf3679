"""Fixtures of the desktop-app tests: a window on fakes, a built library, real drops, no stray
threads."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from app.llm.fake import FakeChatModel
from app.settings import Settings
from app.ui.application import make_application
from app.ui.main_window import MainWindow
from app.ui.services import Services
from app.ui.workers import running_worker_threads
from tests.builders import make_epub, make_zim, sample_corpus

ANSWER = "The lighthouse stood on the island of Pharos [1]. It was one of the Seven Wonders [1]."


@pytest.fixture(autouse=True)
def no_worker_left_running(qapp: QApplication) -> Iterator[None]:
    """After every test, every worker thread has been stopped and joined."""
    yield
    assert running_worker_threads() == 0, "a worker thread was left running"


@pytest.fixture
def library_folder(tmp_path: Path) -> Path:
    """A folder holding a ZIM and two EPUBs (one in a sub-folder) built from the sample corpus."""
    corpus = sample_corpus()
    folder = tmp_path / "books"
    make_zim(folder / "wiki.zim", corpus.articles)
    make_epub(folder / "voyage.epub", corpus.chapters, title="The Voyage", identifier="voyage")
    make_epub(
        folder / "nested" / "storm.epub", corpus.chapters[1:], title="The Storm", identifier="storm"
    )
    return folder


@pytest.fixture(scope="session")
def built_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library store with the sample ZIM and EPUB, ingested once (HashingEmbedder) and copied
    per test."""
    from ingest.embedding import HashingEmbedder
    from ingest.pipeline import ingest_paths

    root = tmp_path_factory.mktemp("built")
    corpus = sample_corpus()
    zim = make_zim(root / "files" / "wiki.zim", corpus.articles)
    epub = make_epub(root / "files" / "voyage.epub", corpus.chapters, title="The Voyage")
    store = root / "store"
    for _ in ingest_paths([zim, epub], store, embedder_factory=lambda: HashingEmbedder()):
        pass
    return store


def fake_services(model: FakeChatModel | None = None, fail: str | None = None) -> Services:
    from ingest.embedding import HashingEmbedder

    def loader(_m: object, _o: object) -> FakeChatModel:
        if fail:
            from app.llm.base import ModelError

            raise ModelError(fail)
        return model or FakeChatModel([ANSWER], token_delay=0.01)

    return Services(embedder_factory=lambda _device: HashingEmbedder(), model_loader=loader)


@pytest.fixture
def make_window(qtbot, librarian_home: Path):  # type: ignore[no-untyped-def]
    """A factory of started windows (closed, workers joined, at the end of the test)."""
    windows: list[MainWindow] = []
    make_application()

    def make(
        services: Services | None = None,
        settings: Settings | None = None,
        store: Path | None = None,
    ) -> MainWindow:
        settings = settings or Settings()
        if store is not None:
            copy = librarian_home / "library-copy"
            if not copy.exists():
                shutil.copytree(store, copy)
            settings.library.data_dir = str(copy)
        qsettings = QSettings(str(librarian_home / "window.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings, services or fake_services(), qsettings)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        with qtbot.waitSignal(window.sources_refreshed, timeout=30000):
            window.start()
        windows.append(window)
        return window

    yield make
    for w in windows:
        w.close()


def drop_paths(target: QWidget, paths: list[Path]) -> None:
    """A real drag-enter and drop of file URLs on `target` (a widget anywhere in the window)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = target.rect().center()
    enter = QDragEnterEvent(
        pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the window refused the drag"
    drop = QDropEvent(
        QPointF(QPoint(pos)),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, drop)
