"""The reader renders an article from the archive: its images, its links to other articles, no
network."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from app.ui.reader_view import ReaderView
from ingest.documents import Locator
from tests.builders import Article, article_html, make_zim

pytestmark = pytest.mark.ui

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def archive(tmp_path):  # type: ignore[no-untyped-def]
    from ingest.readers import open_source

    bee = article_html("Honey bee", ["Bees make honey from nectar.", "A colony has one queen."])
    bee = bee.replace(
        "<h1>Honey bee</h1>",
        '<h1>Honey bee</h1><img src="I/bee.png" alt="bee"><script>document.write("x")</script>'
        '<p>See <a href="Flower">flowers</a> and <a href="https://example.org/x">the web</a>.</p>',
    )
    flower = article_html("Flower", ["A flower is the reproductive structure of a plant."])
    path = make_zim(
        tmp_path / "w.zim",
        [Article("Honey_bee", "Honey bee", bee), Article("Flower", "Flower", flower)],
        resources=[("I/bee.png", "image/png", PNG)],
    )
    reader = open_source(path)
    yield reader
    reader.close()


def passage(doc_id: str, title: str, text: str) -> SimpleNamespace:
    return SimpleNamespace(
        locator=Locator("s", doc_id, title, "", 0, 0, 0, len(text)), text=text, source_title="W"
    )


def test_the_article_shows_with_its_image_and_without_its_script(qtbot, archive):  # type: ignore[no-untyped-def]
    view = ReaderView()
    qtbot.addWidget(view)
    view.open_passage(archive, passage("Honey_bee", "Honey bee", "A colony has one queen."))
    assert view.highlighted_text() == "A colony has one queen."
    assert "document.write" not in view.browser.toPlainText()
    image = view.browser.loadResource(2, "I/bee.png")  # QTextDocument.ImageResource
    assert image == PNG
    assert view.browser.loadResource(2, "https://example.org/tracker.png") is None


def test_a_link_opens_the_other_article_inside_the_reader_and_back_returns(qtbot, archive):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QUrl

    view = ReaderView()
    qtbot.addWidget(view)
    view.open_passage(archive, passage("Honey_bee", "Honey bee", "Bees make honey from nectar."))
    view.browser.anchorClicked.emit(QUrl("Flower"))
    assert "reproductive structure" in view.browser.toPlainText()
    assert view.back_button.isEnabled()
    with qtbot.waitSignal(view.message_posted) as blocker:
        view.browser.anchorClicked.emit(QUrl("https://example.org/x"))
    assert "offline" in blocker.args[0]
    view.back_button.click()
    assert "Bees make honey" in view.browser.toPlainText()


def test_the_archive_is_read_on_workers_never_on_the_gui_thread(qtbot, archive):  # type: ignore[no-untyped-def]
    """With the window's worker pool: the article, its picture, a followed link and Back are all
    read off the GUI thread; the view only renders."""
    import threading

    from PySide6.QtCore import QUrl

    from app.ui.workers import WorkerPool

    reads: list[str] = []

    class Watched:
        def resource(self, path):  # type: ignore[no-untyped-def]
            reads.append(threading.current_thread().name)
            return archive.resource(path)

    view = ReaderView()
    qtbot.addWidget(view)
    pool = WorkerPool()
    view._run = lambda task, ok, err: pool.run_task(task, ok, err, name="reader-page")
    with qtbot.waitSignal(view.page_shown, timeout=10_000):
        view.open_passage(Watched(), passage("Honey_bee", "Honey bee", "A colony has one queen."))
    assert view.highlighted_text() == "A colony has one queen."
    assert view.browser.loadResource(2, "I/bee.png") == PNG  # read with the page
    with qtbot.waitSignal(view.page_shown, timeout=10_000):
        view.browser.anchorClicked.emit(QUrl("Flower"))
    assert "reproductive structure" in view.browser.toPlainText()
    with qtbot.waitSignal(view.page_shown, timeout=10_000):
        view.back_button.click()
    assert "Bees make honey" in view.browser.toPlainText()
    assert reads and threading.main_thread().name not in reads
    pool.stop_all()
    qtbot.wait(100)  # the finished threads' deferred deletes, before the view goes


def test_a_missing_article_says_so(qtbot, archive):  # type: ignore[no-untyped-def]
    view = ReaderView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.message_posted) as said:
        view.open_passage(archive, passage("No_such_page", "Nothing", "x"))
    assert "not in this archive" in said.args[0]
    assert "Not found" in view.browser.toPlainText()
