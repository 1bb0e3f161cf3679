"""Chat history: migrations, atomic writes, crash safety, conversations, Markdown export."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app import paths
from app.chat.citations import SourceRef
from app.chat.history import (
    MIGRATIONS,
    ConversationNotFoundError,
    History,
    HistoryError,
    NewMessage,
)
from ingest.documents import Locator
from tests.at_once import at_once


def source(number: int, cited: bool = True) -> SourceRef:
    loc = Locator("zim:abc", "Volcano", "Volcano", "Etna", 3, number, 10 * number, 10 * number + 40)
    return SourceRef(
        number=number,
        cited=cited,
        chunk_id=f"zim:abc:3:{number}",
        title="Volcano",
        section="Etna",
        source_title="Test Wiki",
        source_path="/lib/wiki.zim",
        locator=loc,
        text=f"Mount Etna passage {number}.",
    )


def turn(history: History, conv: int, q: str, a: str, sources=()) -> list[int]:
    return history.add_messages(
        conv,
        [
            NewMessage("user", q),
            NewMessage("assistant", a, model="smol", settings={"k": 6}, sources=sources),
        ],
    )


def test_default_location_is_the_user_data_folder(librarian_home: Path) -> None:
    with History() as history:
        assert history.path == paths.history_file()
        assert history.path.is_relative_to(librarian_home)


def test_all_migrations_applied_once_by_name(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    with History(db) as history:
        assert history.applied_migrations() == [name for name, _ in MIGRATIONS]
    with History(db) as history:
        assert history.migrate() == []  # nothing left to apply on reopen
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_connections_opened_at_once_on_a_new_history_all_open(tmp_path: Path) -> None:
    """The window opens a connection per worker: the first ones race to create the schema."""
    path = tmp_path / "h.sqlite3"
    at_once(lambda: History(path).close(), 8)
    with History(path) as history:
        assert history.applied_migrations() == [name for name, _ in MIGRATIONS]


def test_a_database_from_the_first_schema_is_upgraded_keeping_its_chats(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    # A database as the first release wrote it: only 0001 applied.
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    raw.executescript(MIGRATIONS[0][1])
    raw.execute("INSERT INTO schema_migrations VALUES ('0001_initial', 0)")
    raw.execute("INSERT INTO conversations (title, created, updated) VALUES ('Old chat', 1, 1)")
    raw.commit()
    raw.close()
    with History(db) as history:
        assert "0002_answer_details" in history.applied_migrations()
        conv = history.list_conversations()[0]
        assert conv.title == "Old chat"
        turn(history, conv.id, "Q?", "A [1].", [source(1)])
        assert history.load_conversation(conv.id).messages[1].sources[0].section == "Etna"


def test_a_failing_migration_leaves_the_schema_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    with History(db) as history:
        bad = [
            *MIGRATIONS,
            ("0099_broken", "CREATE TABLE extra (x INTEGER); SELECT * FROM nowhere"),
        ]
        with pytest.raises(sqlite3.OperationalError):
            history.migrate(bad)
        assert "0099_broken" not in history.applied_migrations()
        tables = {r[0] for r in history._db.execute("SELECT name FROM sqlite_master")}
        assert "extra" not in tables


def test_conversations_create_rename_list_delete(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as history:
        a = history.create_conversation("Volcanoes\nof Sicily")
        b = history.create_conversation("   ")
        turn(history, a, "What is Etna?", "A volcano [1].", [source(1)])
        listed = history.list_conversations()
        assert [c.id for c in listed] == [a, b]  # most recently updated first
        assert listed[0].title == "Volcanoes of Sicily" and listed[0].message_count == 2
        assert listed[1].title == "Untitled chat"
        history.rename_conversation(b, "Bees")
        assert history.find_conversation("bee").id == b
        assert history.find_conversation(str(a)).id == a
        history.delete_conversation(a)
        assert [c.id for c in history.list_conversations()] == [b]
        # Its messages and passages went with it.
        assert history._db.execute("SELECT COUNT(*) FROM message_passages").fetchone()[0] == 0
        with pytest.raises(ConversationNotFoundError, match="no conversation"):
            history.load_conversation(a)
        with pytest.raises(HistoryError):
            history.rename_conversation(a, "x")


def test_message_round_trip_keeps_sources_locators_and_order(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as history:
        conv = history.create_conversation("Etna")
        turn(
            history,
            conv,
            "Is Etna active?",
            "Yes [2][1].",
            [source(2), source(1), source(3, cited=False)],
        )
        messages = history.load_conversation(conv).messages
        assert [(m.role, m.content) for m in messages] == [
            ("user", "Is Etna active?"),
            ("assistant", "Yes [2][1]."),
        ]
        assert messages[1].model == "smol" and messages[1].settings == {"k": 6}
        assert [(s.number, s.cited) for s in messages[1].sources] == [
            (2, True),
            (1, True),
            (3, False),
        ]
        assert messages[1].sources[0].locator == source(2).locator


def test_a_failed_turn_writes_nothing(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as history:
        conv = history.create_conversation("Etna")
        turn(history, conv, "First?", "First answer.")
        duplicate_numbers = [source(1), source(1)]  # violates the primary key mid-write
        with pytest.raises(sqlite3.IntegrityError):
            turn(history, conv, "Second?", "Second answer.", duplicate_numbers)
        contents = [m.content for m in history.load_conversation(conv).messages]
        assert contents == ["First?", "First answer."]


def test_a_process_killed_mid_write_leaves_earlier_chats_intact(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    with History(db) as history:
        conv = history.create_conversation("Kept")
        turn(history, conv, "Earlier question?", "Earlier answer [1].", [source(1)])
    # A child process starts a turn and dies (os._exit) inside the transaction.
    script = textwrap.dedent(
        f"""
        import os
        from app.chat.history import History, NewMessage
        h = History({str(db)!r})
        with h.transaction() as db:
            db.execute("INSERT INTO messages (conversation_id, role, content, created) "
                       "VALUES ({conv}, 'user', 'Half-written question', 0)")
            os._exit(9)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[4])
    assert proc.returncode == 9
    with History(db) as history:
        contents = [m.content for m in history.load_conversation(conv).messages]
        assert contents == ["Earlier question?", "Earlier answer [1]."]
        assert history._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_export_markdown_has_questions_answers_and_sources(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite3") as history:
        conv = history.create_conversation("Etna")
        turn(
            history, conv, "Is Etna active?", "Yes, very [1].", [source(1), source(2, cited=False)]
        )
        md = history.export_markdown(conv)
    assert md.startswith("# Etna\n")
    assert "## Is Etna active?" in md
    assert "Yes, very [1]." in md
    assert "1. **Volcano — Etna** in _Test Wiki_ (`Volcano`, characters 10–50)" in md
    assert "2. **Volcano — Etna**" in md and "not cited" in md.split("2. ")[1]
    assert "> Mount Etna passage 1." in md


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "h.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match="cannot be opened"):
        History(bad)
