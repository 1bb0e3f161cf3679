"""Arabic (right-to-left) text reads from the right in the answer's source cards and in the
reader, as it does in the book, and the instant answer finds its sentence; set LIBRARIAN_SHOTS
to a folder to keep the pictures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget

from app.llm.fake import FakeChatModel
from ingest.embedding import HashingEmbedder
from tests.builders import Chapter, make_epub
from tests.languages import SAMPLES
from tests.ui.conftest import fake_services

pytestmark = pytest.mark.ui


def first_line_span(widget: QWidget) -> tuple[int, int]:
    """The leftmost and rightmost columns of the widget's first line of text (dark pixels)."""
    image = widget.grab().toImage()

    def dark(x: int, y: int) -> bool:
        return image.pixelColor(x, y).lightness() < 110

    top = next(y for y in range(image.height()) if any(dark(x, y) for x in range(image.width())))
    columns = [
        x
        for x in range(image.width())
        for y in range(top, min(image.height(), top + 14))
        if dark(x, y)
    ]
    return min(columns), max(columns)


def reads_from_the_right(widget: QWidget) -> bool:
    """Whether the first line (shorter than the widget is wide) ends at the right margin."""
    left, right = first_line_span(widget)
    width = widget.width()
    return left > width * 0.25 and width - right < width * 0.12


@pytest.fixture
def arabic_store(tmp_path: Path) -> Path:
    from ingest.pipeline import ingest_paths

    sentences = SAMPLES["ar"].strip().split(". ")
    body = "".join(f"<p>{s.strip()}.</p>" for s in sentences if s.strip())
    book = make_epub(
        tmp_path / "arabic.epub",
        [Chapter("الغذاء والسرطان", f"<h1>الغذاء والسرطان</h1>{body}")],
        title="الغذاء والوقاية",
        language="ar",
        identifier="arabic-rtl-test",
    )
    store = tmp_path / "store"
    list(ingest_paths([book], store, embedder_factory=lambda: HashingEmbedder()))
    return store


def test_arabic_cards_and_reader_read_from_the_right(qtbot, make_window, arabic_store):  # type: ignore[no-untyped-def]
    answer = "تلعب التغذية السليمة دورًا مهمًا في الوقاية من السرطان [1]."
    services = fake_services(FakeChatModel([answer], token_delay=0.0))
    window = make_window(services=services, store=arabic_store)
    window.resize(1200, 800)
    qtbot.waitUntil(lambda: window.chat.chat_model is not None, timeout=30_000)
    with qtbot.waitSignal(window.answer_finished, timeout=30_000):
        box = window.chat_view.input
        box.setPlainText("ما دور التغذية في الوقاية من السرطان؟")
        window.chat_view.send_button.click()
    reply = window.chat_view.answer_widgets()[-1]
    # The instant answer quotes the sentence that answers (دورًا meets دور, السرطان السرطان).
    assert "تلعب التغذية السليمة" in reply.extract.text()
    card = reply.cards[0]
    qtbot.waitUntil(card.isVisible, timeout=5_000)
    assert reads_from_the_right(card.excerpt_label)
    shots = os.environ.get("LIBRARIAN_SHOTS")
    if shots:
        window.grab().save(str(Path(shots) / "rtl-answer.png"))

    reply.body.linkActivated.emit("cite:1")
    qtbot.waitUntil(lambda: window.reader_view.highlight is not None, timeout=30_000)
    if shots:
        window.grab().save(str(Path(shots) / "rtl-reader.png"))
    assert reads_from_the_right(window.reader_view.browser.viewport())


def test_the_reader_drops_the_html_element_and_keeps_its_direction() -> None:
    from app.ui.reader_view import clean_html

    page = '<?xml version="1.0"?><html dir="RTL" lang="ar"><body class="c"><p>نص</p></body></html>'
    assert clean_html(page) == '<?xml version="1.0"?><body dir="rtl" class="c"><p>نص</p></body>'
    assert clean_html("<html><body><p>text</p></body></html>") == "<body><p>text</p></body>"
