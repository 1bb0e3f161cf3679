"""Chat history in SQLite: conversations, messages, their passages; named migrations; export.

Durability: WAL journal with synchronous=FULL, and every write is one transaction, so a crash
(or a killed process) leaves each conversation as it was after its last complete write — a turn
(question + answer + passages) is written all at once or not at all. Migrations are named and
applied in order, each in its own transaction together with its row in `schema_migrations`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import paths
from app.chat.citations import SourceRef, locator_dict, locator_from_dict
from ingest.documents import heading

log = logging.getLogger(__name__)

# Append only: a released migration is never edited, a change is a new entry.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            model TEXT,
            settings_json TEXT,
            created REAL NOT NULL
        );
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        CREATE TABLE message_passages (
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            chunk_id TEXT NOT NULL,
            title TEXT NOT NULL,
            section TEXT NOT NULL,
            source_title TEXT NOT NULL,
            source_path TEXT NOT NULL,
            locator_json TEXT NOT NULL,
            text TEXT NOT NULL,
            cited INTEGER NOT NULL,
            PRIMARY KEY (message_id, number)
        );
        """,
    ),
    (
        "0002_answer_details",
        """
        ALTER TABLE messages ADD COLUMN retrieval_query TEXT;
        ALTER TABLE messages ADD COLUMN no_answer INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE messages ADD COLUMN stats_json TEXT;
        """,
    ),
    (
        "0003_instant_answer_and_checks",
        """
        ALTER TABLE messages ADD COLUMN extract_json TEXT;
        ALTER TABLE messages ADD COLUMN support_json TEXT;
        """,
    ),
]


class HistoryError(Exception):
    """A history operation that cannot be done; the message is fit to show."""


class ConversationNotFoundError(HistoryError):
    def __init__(self, ref: object) -> None:
        super().__init__(f"There is no conversation {ref!s} in the history.")
        self.ref = ref


@dataclass(frozen=True)
class ConversationInfo:
    id: int
    title: str
    created: float
    updated: float
    message_count: int = 0


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    content: str
    created: float
    model: str | None = None
    settings: dict[str, Any] | None = None
    retrieval_query: str | None = None
    no_answer: bool = False
    stats: dict[str, Any] | None = None
    sources: list[SourceRef] = field(default_factory=list)
    # The instant answer: (sentence, passage number, article or chapter title).
    extract: list[tuple[str, int, str]] = field(default_factory=list)
    # The answer's sentences as checked: {"text", "supported", "claim"}.
    support: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Conversation:
    info: ConversationInfo
    messages: list[StoredMessage]


@dataclass(frozen=True)
class NewMessage:
    """A message to write; `sources` are the passages shown with an answer."""

    role: str
    content: str
    model: str | None = None
    settings: dict[str, Any] | None = None
    retrieval_query: str | None = None
    no_answer: bool = False
    stats: dict[str, Any] | None = None
    sources: Sequence[SourceRef] = ()
    extract: Sequence[tuple[str, int, str]] = ()
    support: Sequence[dict[str, Any]] = ()


class History:
    """One SQLite history database; safe to share between threads (one connection, a lock)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else paths.history_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"The chat history at {self.path} cannot be opened: {exc}") from exc

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def migrate(self, migrations: Sequence[tuple[str, str]] = MIGRATIONS) -> list[str]:
        """Apply the migrations not yet applied, in order; returns the names applied now."""
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            done = {r[0] for r in self._db.execute("SELECT name FROM schema_migrations")}
            applied = []
            for name, sql in migrations:
                if name in done:
                    continue
                with self.transaction() as db:
                    # Asked again under the write lock: another connection (the window opens one
                    # per worker) may have applied it since.
                    seen = "SELECT 1 FROM schema_migrations WHERE name = ?"
                    if db.execute(seen, (name,)).fetchone() is not None:
                        continue
                    for statement in _statements(sql):
                        db.execute(statement)
                    db.execute(
                        "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                        (name, time.time()),
                    )
                log.info("history: applied migration %s", name)
                applied.append(name)
            return applied

    def applied_migrations(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
        return [r[0] for r in rows]

    # --- conversations -----------------------------------------------------------------------

    def create_conversation(self, title: str) -> int:
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO conversations (title, created, updated) VALUES (?, ?, ?)",
                (_title(title), now, now),
            )
        return int(cur.lastrowid or 0)

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE conversations SET title = ?, updated = ? WHERE id = ?",
                (_title(title), time.time(), conversation_id),
            )
            if cur.rowcount == 0:
                raise ConversationNotFoundError(conversation_id)

    def delete_conversation(self, conversation_id: int) -> None:
        with self.transaction() as db:
            cur = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if cur.rowcount == 0:
                raise ConversationNotFoundError(conversation_id)

    def list_conversations(self) -> list[ConversationInfo]:
        """All conversations, most recently updated first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.title, c.created, c.updated, COUNT(m.id) AS n "
                "FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id "
                "GROUP BY c.id ORDER BY c.updated DESC, c.id DESC"
            ).fetchall()
        return [ConversationInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def conversation_info(self, conversation_id: int) -> ConversationInfo:
        with self._lock:
            r = self._db.execute(
                "SELECT c.id, c.title, c.created, c.updated, "
                "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) "
                "FROM conversations c WHERE c.id = ?",
                (conversation_id,),
            ).fetchone()
        if r is None:
            raise ConversationNotFoundError(conversation_id)
        return ConversationInfo(r[0], r[1], r[2], r[3], r[4])

    def find_conversation(self, ref: str) -> ConversationInfo:
        """A conversation by id, or by a title (exact, else a unique case-insensitive prefix)."""
        if ref.strip().isdigit():
            return self.conversation_info(int(ref))
        convs = self.list_conversations()
        exact = [c for c in convs if c.title == ref]
        if len(exact) == 1:
            return exact[0]
        prefix = [c for c in convs if c.title.lower().startswith(ref.lower())]
        if len(prefix) == 1:
            return prefix[0]
        if len(prefix) > 1 or len(exact) > 1:
            ids = ", ".join(str(c.id) for c in (exact or prefix))
            raise HistoryError(f"Several conversations match {ref!r} (ids {ids}); give the id.")
        raise ConversationNotFoundError(repr(ref))

    # --- messages ----------------------------------------------------------------------------

    def add_message(self, conversation_id: int, message: NewMessage) -> int:
        """Append one message (and its sources) atomically; returns its id."""
        return self.add_messages(conversation_id, [message])[0]

    def add_messages(self, conversation_id: int, messages: Sequence[NewMessage]) -> list[int]:
        """Append several messages (a question and its answer) in one transaction."""
        now = time.time()
        ids = []
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id)
            )
            if cur.rowcount == 0:
                raise ConversationNotFoundError(conversation_id)
            for m in messages:
                cur = db.execute(
                    "INSERT INTO messages (conversation_id, role, content, model, settings_json, "
                    "created, retrieval_query, no_answer, stats_json, extract_json, support_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        conversation_id,
                        m.role,
                        m.content,
                        m.model,
                        _dump(m.settings),
                        now,
                        m.retrieval_query,
                        int(m.no_answer),
                        _dump(m.stats),
                        json.dumps([list(q) for q in m.extract]) if m.extract else None,
                        json.dumps(list(m.support)) if m.support else None,
                    ),
                )
                message_id = int(cur.lastrowid or 0)
                db.executemany(
                    "INSERT INTO message_passages (message_id, number, chunk_id, title, section, "
                    "source_title, source_path, locator_json, text, cited) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            message_id,
                            s.number,
                            s.chunk_id,
                            s.title,
                            s.section,
                            s.source_title,
                            s.source_path,
                            json.dumps(locator_dict(s.locator)),
                            s.text,
                            int(s.cited),
                        )
                        for s in m.sources
                    ],
                )
                ids.append(message_id)
        return ids

    def load_conversation(self, conversation_id: int) -> Conversation:
        info = self.conversation_info(conversation_id)
        with self._lock:
            rows = self._db.execute(
                "SELECT id, role, content, created, model, settings_json, retrieval_query, "
                "no_answer, stats_json, extract_json, support_json FROM messages "
                "WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
            passage_rows = self._db.execute(
                "SELECT p.* FROM message_passages p JOIN messages m ON m.id = p.message_id "
                "WHERE m.conversation_id = ? ORDER BY p.message_id, p.rowid",
                (conversation_id,),
            ).fetchall()
        sources: dict[int, list[SourceRef]] = {}
        for p in passage_rows:
            sources.setdefault(p["message_id"], []).append(
                SourceRef(
                    number=p["number"],
                    cited=bool(p["cited"]),
                    chunk_id=p["chunk_id"],
                    title=p["title"],
                    section=p["section"],
                    source_title=p["source_title"],
                    source_path=p["source_path"],
                    locator=locator_from_dict(json.loads(p["locator_json"])),
                    text=p["text"],
                )
            )
        messages = [
            StoredMessage(
                id=r["id"],
                role=r["role"],
                content=r["content"],
                created=r["created"],
                model=r["model"],
                settings=_load(r["settings_json"]),
                retrieval_query=r["retrieval_query"],
                no_answer=bool(r["no_answer"]),
                stats=_load(r["stats_json"]),
                sources=sources.get(r["id"], []),
                extract=[
                    (str(t), int(n), str(title))
                    for t, n, title in json.loads(r["extract_json"] or "[]")
                ],
                support=list(json.loads(r["support_json"] or "[]")),
            )
            for r in rows
        ]
        return Conversation(info, messages)

    # --- export ------------------------------------------------------------------------------

    def export_markdown(self, conversation_id: int) -> str:
        """The conversation as Markdown: each question, each answer and the sources under it."""
        conv = self.load_conversation(conversation_id)
        out = [
            f"# {conv.info.title}",
            "",
            f"_Exported from Librarian, {_date(conv.info.created)}._",
        ]
        for m in conv.messages:
            out.append("")
            if m.role == "user":
                out += [f"## {_one_line(m.content)}", ""]
                if "\n" in m.content.strip():
                    out += [m.content.strip(), ""]
                continue
            if m.extract:
                out += ["> **From your library:**"]
                out += [f"> {title}: “{text}” [{number}]" for text, number, title in m.extract]
                out.append("")
            out.append(m.content.strip())
            unsupported = [s["text"] for s in m.support if s.get("claim") and not s["supported"]]
            if unsupported:
                out += ["", "_Not found in the sources:_ " + " / ".join(unsupported)]
            if m.model:
                out += ["", f"_— {m.model}_"]
            if m.sources:
                out += ["", "**Sources**", ""]
                for s in m.sources:
                    out.append(f"{s.number}. {_source_line(s)}")
                    quote = _one_line(s.text, 300)
                    if quote:
                        out.append(f"   > {quote}")
        return "\n".join(out).rstrip() + "\n"


def _source_line(s: SourceRef) -> str:
    where = heading(s.title, s.section) if s.title else s.locator.doc_id
    parts = [f"**{where}**"]
    if s.source_title:
        parts.append(f"in _{s.source_title}_")
    loc = s.locator
    parts.append(f"(`{loc.doc_id}`, characters {loc.start}–{loc.end})")
    if not s.cited:
        parts.append("— not cited")
    return " ".join(parts)


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


def _title(title: str) -> str:
    title = _one_line(title, 80)
    return title or "Untitled chat"


def _one_line(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None) -> dict[str, Any] | None:
    return None if not text else json.loads(text)


def _date(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))
