"""open_session: the terminal and the window open a chat the same way — the library and the
embedding device Settings chose, the history closed after."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app import settings as settings_module
from app.chat.open_session import open_session
from app.llm.fake import FakeChatModel
from ingest.embedding import HashingEmbedder


def test_the_library_and_the_device_come_from_settings(
    librarian_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.embedding

    devices: list[str] = []

    def fake_default(device: str = "auto") -> HashingEmbedder:
        devices.append(device)
        return HashingEmbedder()

    monkeypatch.setattr(ingest.embedding, "default_embedder", fake_default)
    settings = settings_module.Settings()
    settings.library.data_dir = str(tmp_path / "chosen")
    settings.retrieval.embed_device = "cpu"
    with open_session(settings) as opened:
        assert opened.store.path == tmp_path / "chosen" and devices == ["cpu"]
        assert opened.store.embedder is opened.embedder
        history = opened.history
        assert history is not None
        session = opened.chat(FakeChatModel(["x"]))
        assert session.history is history and session.settings is settings
    with pytest.raises(sqlite3.ProgrammingError):  # closed with the block
        history.list_conversations()
    with open_session(settings, library=tmp_path / "other", history=False) as opened:
        assert opened.store.path == tmp_path / "other" and opened.history is None
