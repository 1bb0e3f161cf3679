"""WelcomePanel: what an empty library shows — what Librarian does and three ways to fill it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

KIWIX_LIBRARY_URL = "https://library.kiwix.org"


class WelcomePanel(QWidget):
    """First run: drop books or a ZIM, get Wikipedia from Kiwix, or add the demo library."""

    add_files_requested = Signal()
    add_demo_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePanel")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        card = QFrame()
        card.setObjectName("welcomeCard")
        card.setMaximumWidth(640)
        layout = QVBoxLayout(card)
        layout.setContentsMargins(32, 28, 32, 28)
        layout.setSpacing(14)
        title = QLabel("Chat with your offline library")
        title.setObjectName("welcomeTitle")
        layout.addWidget(title)
        intro = QLabel(
            "Librarian reads your e-books (EPUB) and Kiwix archives (ZIM — all of Wikipedia fits "
            "on a laptop) and answers questions from them with a language model that runs on this "
            "computer. Every answer cites its passages; click one to read it in place. Nothing "
            "leaves your machine."
        )
        intro.setWordWrap(True)
        intro.setObjectName("welcomeText")
        layout.addWidget(intro)

        drop = QLabel("⬇  <b>Drop books, ZIM files or whole folders anywhere on this window</b>")
        drop.setObjectName("dropHint")
        drop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        drop.setMinimumHeight(64)
        layout.addWidget(drop)

        row = QHBoxLayout()
        self.demo_button = QPushButton("Add the demo library")
        self.demo_button.setObjectName("demoButton")
        self.demo_button.setToolTip(
            "A few thousand Wikipedia articles (CC BY-SA), ready in a minute"
        )
        self.demo_button.clicked.connect(self.add_demo_requested)
        self.files_button = QPushButton("Add books or archives…")
        self.files_button.clicked.connect(self.add_files_requested)
        row.addWidget(self.demo_button)
        row.addWidget(self.files_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.demo_status = QLabel()
        self.demo_status.setObjectName("demoStatus")
        self.demo_status.setWordWrap(True)
        self.demo_status.hide()
        layout.addWidget(self.demo_status)

        kiwix = QLabel(
            "<b>Want all of Wikipedia?</b> Download a ZIM from the Kiwix library (on a computer "
            "with internet access), then drop it here:"
        )
        kiwix.setWordWrap(True)
        layout.addWidget(kiwix)
        url_row = QHBoxLayout()
        self.url_edit = QLineEdit(KIWIX_LIBRARY_URL)
        self.url_edit.setObjectName("kiwixUrl")
        self.url_edit.setReadOnly(True)
        copy = QPushButton("Copy address")
        copy.clicked.connect(self._on_copy_clicked)
        url_row.addWidget(self.url_edit, 1)
        url_row.addWidget(copy)
        layout.addLayout(url_row)
        self.model_note = QLabel()
        self.model_note.setObjectName("modelNote")
        self.model_note.setWordWrap(True)
        layout.addWidget(self.model_note)

        h = QHBoxLayout()
        h.addStretch(1)
        h.addWidget(card, 10)
        h.addStretch(1)
        outer.addLayout(h)
        outer.addStretch(2)

    def set_demo_status(self, text: str, busy: bool = False) -> None:
        self.demo_status.setText(text)
        self.demo_status.setVisible(bool(text))
        self.demo_button.setEnabled(not busy)

    def set_model_note(self, text: str) -> None:
        self.model_note.setText(text)

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(KIWIX_LIBRARY_URL)
        self.url_edit.selectAll()
