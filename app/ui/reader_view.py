"""ReaderView: a ZIM article or an EPUB chapter rendered from the archive, at a passage,
highlighted.

QTextBrowser renders the archive's own HTML: no script runs, nothing is fetched from the
network — images and links are resolved against the archive through `loadResource`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QTextBrowser,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.archive_pages import Page, read_page, resolve_link

log = logging.getLogger(__name__)

# run_task(task, on_result, on_error): the window's worker pool; alone, the view runs it at once
Runner = Callable[[Callable[[Any], Any], Callable[[Any], None], Callable[[str], None]], Any]
HIGHLIGHT = QColor("#fff1a8")
_DROP_BLOCKS = re.compile(r"<(script|style|noscript|iframe|object|embed)\b.*?</\1\s*>", re.I | re.S)
_LINK_TAGS = re.compile(r"<link\b[^>]*>", re.I)
# Qt lays out every paragraph of a document inside <html> left to right, whatever its script;
# without it each paragraph takes the direction of its own text (Arabic, Hebrew from the right).
_HTML_TAG = re.compile(r"<html\b([^>]*)>|</html\s*>", re.I)
_DIR_ATTR = re.compile(r"""\bdir\s*=\s*["']?(rtl|ltr)""", re.I)
_BODY_TAG = re.compile(r"<body\b", re.I)
_WORD = re.compile(r"\w+", re.UNICODE)
READER_CSS = """
body { font-family: 'Noto Serif', 'DejaVu Serif', Georgia, serif; font-size: 15px; color: #1d2430; }
h1 { font-size: 26px; font-weight: 600; margin-bottom: 8px; }
h2 { font-size: 20px; font-weight: 600; margin-top: 18px; }
h3 { font-size: 17px; font-weight: 600; }
p { margin-top: 6px; margin-bottom: 8px; line-height: 140%; }
a { color: #1f5fbf; text-decoration: none; }
table { border-collapse: collapse; }
"""


def clean_html(text: str) -> str:
    """The archive's HTML without scripts, styles, frames or external stylesheets, and without
    its <html> element (see _HTML_TAG; a `dir` it gives moves to <body>)."""
    text = _DROP_BLOCKS.sub("", text)
    text = _LINK_TAGS.sub("", text)
    opening = _HTML_TAG.search(text)
    direction = _DIR_ATTR.search(opening.group(1) or "") if opening else None
    text = _HTML_TAG.sub("", text)
    if direction:
        text = _BODY_TAG.sub(f'<body dir="{direction.group(1).lower()}"', text, count=1)
    return text


class ArchiveBrowser(QTextBrowser):
    """A QTextBrowser whose every resource comes from the open archive."""

    link_followed = Signal(str, str)  # archive path, fragment
    external_link_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readerBrowser")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.document().setDefaultStyleSheet(READER_CSS)
        self.document().setDocumentMargin(24)
        self.reader: Any = None
        self.page: Page | None = None
        self.doc_path = ""
        self.anchorClicked.connect(self._on_self_anchor_clicked)

    def loadResource(self, kind: int, url: QUrl | str) -> Any:  # noqa: N802 (Qt override)
        """The page's pictures, read with it on a worker; nothing else (no network, and no
        archive read on the GUI thread)."""
        if self.page is None or kind == int(QTextDocument.ResourceType.StyleSheetResource.value):
            return None
        return self.page.image(url.toString() if isinstance(url, QUrl) else str(url))

    def _on_self_anchor_clicked(self, url: QUrl) -> None:
        href = url.toString()
        if url.scheme() in ("http", "https", "mailto", "ftp") or href.startswith("//"):
            self.external_link_clicked.emit(href)
            return
        if href.startswith("#"):
            self.scrollToAnchor(href[1:])
            return
        path, fragment = resolve_link(self.doc_path, href)
        self.link_followed.emit(path, fragment)


class ReaderView(QWidget):
    """The reader panel: title bar with back and close, the article, the highlighted passage."""

    closed = Signal()
    message_posted = Signal(str)
    page_shown = Signal(bool)  # a page asked for is on screen (False: the archive lacks it)

    def __init__(self, parent: QWidget | None = None, run_task: Runner | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readerView")
        self._run = run_task or run_now
        self._asked = 0  # the latest page asked for: an older one arriving late is dropped
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        bar = QWidget()
        bar.setObjectName("readerBar")
        bar_layout = QHBoxLayout(bar)
        bar_layout.setContentsMargins(8, 6, 8, 6)
        self.back_button = QToolButton()
        self.back_button.setText("‹ Back")
        self.back_button.setEnabled(False)
        self.back_button.clicked.connect(self._on_back_button_clicked)
        self.title_label = QLabel()
        self.title_label.setObjectName("readerTitle")
        self.title_label.setTextFormat(Qt.TextFormat.PlainText)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Close the reader")
        self.close_button.clicked.connect(self.closed)
        bar_layout.addWidget(self.back_button)
        bar_layout.addWidget(self.title_label, 1)
        bar_layout.addWidget(self.close_button)
        layout.addWidget(bar)
        self.browser = ArchiveBrowser()
        self.browser.link_followed.connect(self._on_browser_link_followed)
        self.browser.external_link_clicked.connect(self._on_browser_external_link_clicked)
        layout.addWidget(self.browser, 1)
        self.source_title = ""
        self.highlight: tuple[int, int] | None = None
        self._history: list[tuple[str, int]] = []

    # --- public ------------------------------------------------------------------------------

    def open_passage(self, reader: Any, ref: Any, source_title: str = "") -> None:
        """Show the document of `ref` (a SourceRef or Passage) scrolled to its passage, once a
        worker has read it (`page_shown` then)."""
        if self.browser.reader is not None and self.browser.reader is not reader:
            _close(self.browser.reader)
        self.browser.reader = reader
        self.source_title = source_title or str(getattr(ref, "source_title", ""))
        self._history.clear()
        self.back_button.setEnabled(False)
        loc = ref.locator
        self.show_document(loc.doc_id, fallback_title=loc.title, passage=str(ref.text or ""))

    def show_document(
        self,
        path: str,
        fragment: str = "",
        fallback_title: str = "",
        passage: str = "",
        scroll: int | None = None,
    ) -> None:
        """Read the item at `path` on a worker, then show it (at `fragment`, at `passage`
        highlighted, or at the `scroll` position)."""
        reader = self.browser.reader
        self._asked += 1
        asked = self._asked

        def shown(page: Page | None) -> None:
            if asked == self._asked and self.browser.reader is reader:
                self._show(page, path, fragment, fallback_title, passage, scroll)

        if reader is None:
            shown(None)
            return
        self._run(lambda _cancel: read_page(reader, path), shown, lambda _msg: shown(None))

    def _show(
        self,
        page: Page | None,
        path: str,
        fragment: str,
        fallback_title: str,
        passage: str,
        scroll: int | None,
    ) -> None:
        self.highlight = None
        self.browser.setExtraSelections([])
        self.browser.page = page
        if page is None:
            self.browser.setHtml(f"<h2>Not found</h2><p>This archive has no item “{path}”.</p>")
            self.title_label.setText(fallback_title or path)
            self.message_posted.emit(f"“{path}” is not in this archive.")
            self.page_shown.emit(False)
            return
        self.browser.doc_path = page.path
        if page.is_html:
            self.browser.setHtml(clean_html(page.text))
        else:
            self.browser.setPlainText(page.text)
        title = page.title or fallback_title or path
        self.title_label.setText(f"{title}  ·  {self.source_title}" if self.source_title else title)
        if passage and not self.highlight_passage(passage):
            self.message_posted.emit(
                "The passage could not be located exactly; showing its article."
            )
        elif scroll is not None:
            self.browser.verticalScrollBar().setValue(scroll)
        elif fragment:
            self.browser.scrollToAnchor(fragment)
        elif not passage:
            self.browser.verticalScrollBar().setValue(0)
        self.page_shown.emit(True)

    def highlight_passage(self, passage: str) -> bool:
        """Highlight `passage` in the shown document and scroll to it; False when not found."""
        span = find_passage(self.browser.document(), passage)
        if span is None:
            return False
        start, end = span
        cursor = QTextCursor(self.browser.document())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        selection = QTextEdit.ExtraSelection()
        fmt = QTextCharFormat()
        fmt.setBackground(HIGHLIGHT)
        selection.format = fmt
        selection.cursor = cursor
        self.browser.setExtraSelections([selection])
        self.highlight = (start, end)
        self._scroll_to(start)
        return True

    def highlighted_text(self) -> str:
        if self.highlight is None:
            return ""
        cursor = QTextCursor(self.browser.document())
        cursor.setPosition(self.highlight[0])
        cursor.setPosition(self.highlight[1], QTextCursor.MoveMode.KeepAnchor)
        return cursor.selectedText().replace("\u2029", "\n")

    def close_reader(self) -> None:
        if self.browser.reader is not None:
            _close(self.browser.reader)
            self.browser.reader = None
            self.browser.page = None

    # --- internals ---------------------------------------------------------------------------

    def _scroll_to(self, position: int) -> None:
        cursor = QTextCursor(self.browser.document())
        cursor.setPosition(position)
        self.browser.setTextCursor(cursor)
        bar = self.browser.verticalScrollBar()
        rect = self.browser.cursorRect(cursor)
        # Put the passage a little below the top, not at the bottom edge.
        bar.setValue(bar.value() + rect.top() - 60)

    def _on_browser_link_followed(self, path: str, fragment: str) -> None:
        self._history.append((self.browser.doc_path, self.browser.verticalScrollBar().value()))
        self.back_button.setEnabled(True)
        self.show_document(path, fragment)

    def _on_browser_external_link_clicked(self, href: str) -> None:
        self.message_posted.emit(f"Not opened — Librarian works offline: {href}")

    def _on_back_button_clicked(self) -> None:
        if not self._history:
            return
        path, scroll = self._history.pop()
        self.show_document(path, scroll=scroll)
        self.back_button.setEnabled(bool(self._history))


def run_now(
    task: Callable[[Any], Any], on_result: Callable[[Any], None], on_error: Callable[[str], None]
) -> None:
    """Run a task on this thread (a ReaderView given no worker pool)."""
    try:
        result = task(None)
    except Exception as exc:  # noqa: BLE001 - shown as the page not found
        on_error(str(exc))
        return
    on_result(result)


def _close(reader: Any) -> None:
    close = getattr(reader, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.debug("closing a reader failed", exc_info=True)


def find_passage(document: QTextDocument, passage: str) -> tuple[int, int] | None:
    """Document positions spanning `passage`, matched word by word across paragraphs.

    The passage is the chunker's cleaned text, so whitespace and paragraph breaks differ from the
    rendered HTML; words are what both share. The span starts where the passage's first words
    are and ends after its last words.
    """
    words = _WORD.findall(passage)
    if not words:
        return None
    plain = document.toPlainText()
    # Positions of each word in the document's plain text (same positions as the document's).
    doc_words = [(m.start(), m.end(), m.group(0).casefold()) for m in _WORD.finditer(plain)]
    if not doc_words:
        return None
    target = [w.casefold() for w in words]
    head = target[: min(8, len(target))]
    tail = target[-min(8, len(target)) :]
    tokens = [w for _, _, w in doc_words]
    start_i = _find_seq(tokens, head, 0)
    if start_i is None:
        return None
    end_i = _find_seq(tokens, tail, start_i)
    if end_i is None or end_i + len(tail) - 1 - start_i > 4 * len(target) + 20:
        end_i = start_i + len(head) - len(tail)
        end_i = max(end_i, start_i)
        last = min(start_i + len(target), len(doc_words)) - 1
    else:
        last = end_i + len(tail) - 1
    end = doc_words[last][1]
    while end < len(plain) and plain[end] in ".,;:!?)]\"'»”’":  # the sentence's closing marks
        end += 1
    return doc_words[start_i][0], end


def _find_seq(tokens: list[str], seq: list[str], start: int) -> int | None:
    n = len(seq)
    first = seq[0]
    for i in range(start, len(tokens) - n + 1):
        if tokens[i] == first and tokens[i : i + n] == seq:
            return i
    return None
