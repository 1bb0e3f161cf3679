"""ChatView: the conversation list and the chat — streamed Markdown answers, citations, source
cards."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.chat.citations import CITATION, CitationFilter, numbers_in
from app.chat.session import Cancelled, Done, Extract, Retrieved, Token
from ingest.documents import HEADING_SEPARATOR, shown_section

EXCERPT_CHARS = 260
# A streamed answer is laid out again on each flush, at a cost that grows with its length (about
# 12 ms per 1,000 characters here, twice that on a loaded 2-core machine): the longer the answer,
# the further apart the flushes, so the relayouts take a fifth of the window's time at most.
FLUSH_MS = 40
FLUSH_MS_PER_1000_CHARS = 60
FLUSH_MS_MAX = 250


def flush_interval_ms(chars: int) -> int:
    """How long to gather tokens before the answer of `chars` characters is shown again."""
    return min(FLUSH_MS_MAX, FLUSH_MS + chars * FLUSH_MS_PER_1000_CHARS // 1000)


UNSUPPORTED_TIP = (
    "No passage supports this sentence: the model may have made it up. "
    "The instant answer above quotes the passages themselves."
)


def markdown_with_links(text: str) -> str:
    """The answer's Markdown with every citation ([1], [1, 3], [1-3], [Source 2]) turned into
    `cite:n` links — the forms app.chat.citations understands, so every valid one is a link."""

    def link(m: re.Match[str]) -> str:
        return "".join(f"[\\[{n}\\]](cite:{n})" for n in numbers_in(m.group(1)))

    return CITATION.sub(link, text)


def checked_markdown(text: str, support: Sequence[Any]) -> str:
    """The answer with its unsupported sentences greyed and followed by a small ⚠ link whose
    hover explains why."""
    out, pos = [], 0
    for i, s in enumerate(support):
        sentence = str(s["text"] if isinstance(s, dict) else s.text)
        claim = s["claim"] if isinstance(s, dict) else s.claim
        supported = s["supported"] if isinstance(s, dict) else s.supported
        at = text.find(sentence, pos)
        if at < 0:
            continue
        out.append(markdown_with_links(text[pos:at]))
        shown = markdown_with_links(sentence)
        if claim and not supported:
            shown = f'<span style="color:#8a8f98">{shown}</span> [⚠](unsupported:{i})'
        out.append(shown)
        pos = at + len(sentence)
    out.append(markdown_with_links(text[pos:]))
    return "".join(out)


def extract_html(quotes: Sequence[tuple[str, int, str]]) -> str:
    """The instant answer: "From your library" and its quoted sentences, each after its
    article's title, with a link to its passage."""
    head = "<span style='color:#5f6b7a; font-size:11px'>FROM YOUR LIBRARY</span><br>"
    if not quotes:
        return (
            head + "<i style='color:#6b7685'>No sentence of the passages answers this directly.</i>"
        )
    lines = [
        f"<b>{html.escape(title)}</b>: “{html.escape(text)}” <a href='cite:{number}'>[{number}]</a>"
        for text, number, title in quotes
    ]
    return head + "<br>".join(lines)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a passage for its card: paragraphs kept apart (an article's short
    description or an infobox caption stays on its own line), cut at a word."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    text = "\n".join(p for p in paragraphs if p)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip() + " …"


class ComposerEdit(QPlainTextEdit):
    """The question box: Enter sends, Shift+Enter adds a line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class SourceCard(QFrame):
    """One passage under an answer: number, title, section, the archive or book, an excerpt."""

    activated = Signal(object)

    def __init__(self, ref: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ref = ref
        self.setObjectName("sourceCard")
        self.setProperty("cited", bool(getattr(ref, "cited", True)))
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Open this passage in the reader")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(2)
        title = html.escape(ref.title)
        section = shown_section(ref.title, ref.section)
        head = f"<b>[{ref.number}]</b>&nbsp; <b>{title}</b>"
        if section:
            head += f"<span style='color:#5f6b7a'>{HEADING_SEPARATOR}{html.escape(section)}</span>"
        self.title_label = QLabel(head)
        self.title_label.setTextFormat(Qt.TextFormat.RichText)
        self.title_label.setWordWrap(True)
        origin = str(getattr(ref, "source_title", "") or "")
        # Plain text, not escaped: an auto-format label shows "&quot;" literally when the text
        # has no tag to make it look like rich text.
        self.origin_label = QLabel(origin)
        self.origin_label.setTextFormat(Qt.TextFormat.PlainText)
        self.origin_label.setObjectName("cardOrigin")
        self.excerpt_label = QLabel(excerpt(str(getattr(ref, "text", ""))))
        self.excerpt_label.setTextFormat(Qt.TextFormat.PlainText)
        self.excerpt_label.setObjectName("cardExcerpt")
        self.excerpt_label.setWordWrap(True)
        for label in (self.title_label, self.origin_label, self.excerpt_label):
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            layout.addWidget(label)
        if not origin:
            self.origin_label.hide()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.activated.emit(self.ref)
        super().mouseReleaseEvent(event)


class MessageWidget(QFrame):
    """A question, or an answer with its status line and source cards."""

    citation_activated = Signal(object)

    def __init__(self, role: str, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.setObjectName("userMessage" if role == "user" else "answerMessage")
        self.text = text
        self.refs: dict[int, Any] = {}
        self.cards: list[SourceCard] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.setSpacing(6)
        self.extract = QLabel()
        self.extract.setObjectName("instantAnswer")
        self.extract.setTextFormat(Qt.TextFormat.RichText)
        self.extract.setWordWrap(True)
        self.extract.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.extract.linkActivated.connect(self._on_body_link_activated)
        self.extract.hide()
        layout.addWidget(self.extract)
        self.body = QLabel()
        self.body.setObjectName("messageBody")
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        self.body.setOpenExternalLinks(False)
        self.body.linkActivated.connect(self._on_body_link_activated)
        self.body.linkHovered.connect(self._on_body_link_hovered)
        self.body.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.body)
        self.status = QLabel()
        self.status.setObjectName("messageStatus")
        self.status.hide()
        layout.addWidget(self.status)
        self.cards_box = QVBoxLayout()
        self.cards_box.setSpacing(6)
        layout.addLayout(self.cards_box)
        if role == "user":
            self.body.setTextFormat(Qt.TextFormat.PlainText)
            self.body.setText(text)
        else:
            self.body.setTextFormat(Qt.TextFormat.MarkdownText)
            self.set_text(text)

    def set_text(self, text: str) -> None:
        self.text = text
        if self.role == "user":
            self.body.setText(text)
        else:
            self.body.setText(markdown_with_links(text) if text else "")
            self.body.setVisible(bool(text))

    def set_checked_text(self, text: str, support: Sequence[Any]) -> None:
        """The final answer, its unsupported sentences marked."""
        self.text = text
        self.body.setText(checked_markdown(text, support) if text else "")
        self.body.setVisible(bool(text))

    def set_extract(self, quotes: Sequence[tuple[str, int, str]]) -> None:
        """The instant answer above the model's."""
        self.extract.setText(extract_html(quotes))
        self.extract.show()

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def set_passages(self, refs: Sequence[Any]) -> None:
        """The numbered passages the citations of this answer point at."""
        self.refs = {int(r.number): r for r in refs}

    def set_sources(self, refs: Sequence[Any]) -> None:
        """Show the cards: the cited sources (all of them when the answer cites none)."""
        for card in self.cards:
            card.deleteLater()
        self.cards = []
        for r in refs:
            self.refs[int(r.number)] = r
        cited = [r for r in refs if getattr(r, "cited", True)]
        for ref in cited or list(refs):
            card = SourceCard(ref, self)
            card.activated.connect(self.citation_activated)
            self.cards_box.addWidget(card)
            self.cards.append(card)

    def _on_body_link_hovered(self, link: str) -> None:
        if link.startswith("unsupported:"):
            QToolTip.showText(QCursor.pos(), UNSUPPORTED_TIP, self.body)

    def _on_body_link_activated(self, link: str) -> None:
        if link.startswith("unsupported:"):
            QToolTip.showText(QCursor.pos(), UNSUPPORTED_TIP, self.body)
        elif link.startswith("cite:"):
            try:
                ref = self.refs.get(int(link.split(":", 1)[1].split("?")[0]))
            except ValueError:
                return
            if ref is not None:
                self.citation_activated.emit(ref)


class Transcript(QScrollArea):
    """The messages of one conversation, newest at the bottom."""

    citation_activated = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        inner.setObjectName("transcriptInner")
        self._layout = QVBoxLayout(inner)
        self._layout.setContentsMargins(24, 16, 24, 16)
        self._layout.setSpacing(12)
        self.empty_hint = QLabel(
            "<p style='font-size:17px; color:#3a4452'>Ask anything about your library.</p>"
            "<p style='color:#6b7685'>Answers cite their passages as [1], [2]; "
            "click one to read it in place.<br>"
            "Enter sends · Shift+Enter adds a line · Esc stops · Ctrl+N starts a new chat</p>"
        )
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addStretch(1)
        self._layout.addWidget(self.empty_hint)
        self._layout.addStretch(1)
        self.setWidget(inner)
        self.messages: list[MessageWidget] = []
        self.verticalScrollBar().rangeChanged.connect(self._on_scrollbar_range_changed)
        self._follow = True

    def add(self, role: str, text: str = "") -> MessageWidget:
        msg = MessageWidget(role, text)
        msg.citation_activated.connect(self.citation_activated)
        self.empty_hint.hide()
        self._layout.insertWidget(self._layout.count() - 3, msg)
        self.messages.append(msg)
        self._follow = True
        return msg

    def clear(self) -> None:
        for msg in self.messages:
            msg.deleteLater()
        self.messages = []
        self.empty_hint.show()

    def _on_scrollbar_range_changed(self, _min: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)


class ConversationList(QWidget):
    """The saved conversations: new, rename, delete."""

    conversation_selected = Signal(object)  # conversation id, or None for a new chat
    new_requested = Signal()
    rename_requested = Signal(int, str)
    delete_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversationList")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.setSpacing(6)
        self.new_button = QPushButton("New chat")
        self.new_button.setObjectName("newChatButton")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_requested)
        layout.addWidget(self.new_button)
        self.list = QListWidget()
        self.list.setObjectName("conversations")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setWordWrap(False)
        self.list.itemSelectionChanged.connect(self._on_list_item_selection_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self._on_rename_clicked())
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.rename_button = QToolButton()
        self.rename_button.setText("Rename")
        self.rename_button.clicked.connect(self._on_rename_clicked)
        self.delete_button = QToolButton()
        self.delete_button.setText("Delete")
        self.delete_button.clicked.connect(self._on_delete_clicked)
        row.addWidget(self.rename_button)
        row.addWidget(self.delete_button)
        row.addStretch(1)
        layout.addLayout(row)
        self._quiet = False
        self._update_buttons()

    def set_conversations(self, infos: Sequence[Any], current: int | None) -> None:
        self._quiet = True
        self.list.clear()
        for info in infos:
            item = QListWidgetItem(info.title or "Untitled")
            item.setData(Qt.ItemDataRole.UserRole, info.id)
            item.setToolTip(info.title)
            self.list.addItem(item)
            if info.id == current:
                item.setSelected(True)
                self.list.setCurrentItem(item)
        self._quiet = False
        self._update_buttons()

    def current_id(self) -> int | None:
        items = self.list.selectedItems()
        return int(items[0].data(Qt.ItemDataRole.UserRole)) if items else None

    def _update_buttons(self) -> None:
        has = self.current_id() is not None
        self.rename_button.setEnabled(has)
        self.delete_button.setEnabled(has)

    def _on_list_item_selection_changed(self) -> None:
        self._update_buttons()
        if not self._quiet:
            self.conversation_selected.emit(self.current_id())

    def _on_rename_clicked(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        old = self.list.selectedItems()[0].text()
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title:", text=old)
        if ok and title.strip():
            self.rename_requested.emit(cid, title.strip())

    def _on_delete_clicked(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        title = self.list.selectedItems()[0].text()
        answer = QMessageBox.question(
            self, "Delete conversation", f"Delete “{title}” and its messages?"
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_requested.emit(cid)


class ChatView(QWidget):
    """The chat: transcript, question box, send/stop; shows streamed events of ChatSession.ask."""

    question_submitted = Signal(str)
    stop_requested = Signal()
    citation_activated = Signal(object)
    scope_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatView")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.transcript = Transcript()
        self.transcript.citation_activated.connect(self.citation_activated)
        layout.addWidget(self.transcript, 1)
        self.placeholder: QWidget | None = None

        composer = QFrame()
        composer.setObjectName("composer")
        c_layout = QVBoxLayout(composer)
        c_layout.setContentsMargins(24, 10, 24, 14)
        c_layout.setSpacing(6)
        self.scope_label = QLabel()
        self.scope_label.setObjectName("scopeLabel")
        self.scope_label.setTextFormat(Qt.TextFormat.RichText)
        self.scope_label.linkActivated.connect(lambda _link: self.scope_clicked.emit())
        c_layout.addWidget(self.scope_label)
        row = QHBoxLayout()
        row.setSpacing(8)
        self.input = ComposerEdit()
        self.input.setObjectName("questionInput")
        self.input.setPlaceholderText("Ask your library…  (Enter sends, Shift+Enter adds a line)")
        self.input.setTabChangesFocus(True)
        self.input.setFixedHeight(64)
        self.input.submitted.connect(self._on_input_submitted)
        row.addWidget(self.input, 1)
        self.send_button = QPushButton("Ask")
        self.send_button.setObjectName("sendButton")
        self.send_button.setDefault(True)
        self.send_button.setMinimumSize(QSize(84, 40))
        self.send_button.clicked.connect(self._on_send_button_clicked)
        row.addWidget(self.send_button)
        c_layout.addLayout(row)
        layout.addWidget(composer)

        self.generating = False
        self.current: MessageWidget | None = None
        self._pending = ""
        self._filter = CitationFilter([])
        self._flush = QTimer(self)  # coalesce token signals: started with flush_interval_ms
        self._flush.setSingleShot(True)
        self._flush.timeout.connect(self._on_flush_timeout)

    # --- what the window tells it ------------------------------------------------------------

    def set_scope(self, text: str) -> None:
        self.scope_label.setText(text)

    def show_conversation(self, messages: Sequence[Any]) -> None:
        """Replace the transcript with stored messages (app.chat.history.StoredMessage)."""
        self.transcript.clear()
        for m in messages:
            w = self.transcript.add(m.role, m.content)
            if m.role != "user":
                w.set_sources(list(m.sources))
                if m.extract:
                    w.set_extract(m.extract)
                if m.support:
                    w.set_checked_text(m.content, m.support)
        self._set_generating(False)

    def begin_answer(self, question: str) -> MessageWidget:
        self.transcript.add("user", question)
        self.current = self.transcript.add("assistant")
        self.current.set_status("Searching the library…")
        self._pending = ""
        self._set_generating(True)
        return self.current

    def on_chat_event(self, event: Any) -> None:
        """One event of ChatSession.ask: Retrieved, Extract, Token, Checked, Done, Cancelled."""
        msg = self.current
        if msg is None:
            return
        if isinstance(event, Retrieved):
            msg.set_passages(event.passages)
            self._filter = CitationFilter([p.number for p in event.passages])
            msg.set_status(f"Reading {len(event.passages)} passages…" if event.passages else "")
        elif isinstance(event, Extract):
            msg.set_extract([(q.text, q.number, q.title) for q in event.quotes])
        elif isinstance(event, Token):
            # shown as it streams, its invalid citations held back or dropped (as the CLI does)
            self._pending += self._filter.feed(event.text)
            if not self._flush.isActive():
                self._flush.start(flush_interval_ms(len(self._pending)))
        elif isinstance(event, Done):
            self._flush.stop()
            msg.set_checked_text(event.answer, event.support)
            msg.set_sources([] if event.no_answer else list(event.sources))
            msg.set_status(_stats_line(event))
            self._finish()
        elif isinstance(event, Cancelled):
            self._flush.stop()
            msg.set_text(self._pending + self._filter.flush())
            msg.set_status("Stopped.")
            self._finish()

    def on_chat_failed(self, message: str) -> None:
        if self.current is not None:
            self.current.set_text(self._pending)
            self.current.set_status(f"⚠ {message}")
        self._finish()

    def on_chat_finished(self) -> None:
        """The worker ended; if no Done or Cancelled came (cancel before retrieval), tidy up."""
        if self.generating:
            if self.current is not None:
                self.current.set_text(self._pending)
                self.current.set_status("Stopped.")
            self._finish()

    def answer_widgets(self) -> list[MessageWidget]:
        return [m for m in self.transcript.messages if m.role != "user"]

    def set_input_enabled(self, enabled: bool, reason: str = "") -> None:
        self.input.setEnabled(enabled)
        self.send_button.setEnabled(enabled or self.generating)
        if reason:
            self.input.setPlaceholderText(reason)

    # --- internals ---------------------------------------------------------------------------

    def _finish(self) -> None:
        self._pending = ""
        self._set_generating(False)
        self.current = None

    def _set_generating(self, on: bool) -> None:
        self.generating = on
        self.send_button.setText("Stop" if on else "Ask")
        self.send_button.setProperty("stop", on)
        self.send_button.setToolTip("Stop the answer (Esc)" if on else "Ask (Enter)")
        self.send_button.style().unpolish(self.send_button)
        self.send_button.style().polish(self.send_button)

    def _on_flush_timeout(self) -> None:
        if self.current is not None:
            self.current.set_text(self._pending)
            self.current.set_status("")

    def _on_input_submitted(self) -> None:
        if self.generating:
            return
        question = self.input.toPlainText().strip()
        if question:
            self.input.clear()
            self.question_submitted.emit(question)

    def _on_send_button_clicked(self) -> None:
        if self.generating:
            self.stop_requested.emit()
        else:
            self._on_input_submitted()


def _stats_line(done: Any) -> str:
    if getattr(done, "no_answer", False):
        return "No passage in the selected sources answers this."
    stats = getattr(done, "stats", None)
    parts = []
    n = len([s for s in getattr(done, "sources", []) if getattr(s, "cited", False)])
    if n:
        parts.append(f"{n} source{'s' if n != 1 else ''} cited")
    tps = getattr(stats, "tokens_per_s", None)
    if tps:
        parts.append(f"{tps:.0f} tokens/s")
    total = getattr(stats, "total_s", None)
    if total:
        parts.append(f"{total:.1f} s")
    return " · ".join(parts)
