"""How a chat is opened, by the terminal (`librarian ask`) and by the window alike: the library
the settings name, searched with the embedder the settings choose, the conversation history,
and then a ChatSession with a model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app import settings as settings_mod
from app.chat.history import History
from app.chat.session import ChatSession
from app.llm.base import ChatModel
from ingest.library_location import Location

if TYPE_CHECKING:
    from ingest.store import LibraryStore


@dataclass
class OpenLibrary:
    """A library open for questions: its store (with the query embedder) and the history."""

    settings: settings_mod.Settings
    store: LibraryStore
    embedder: Any
    history: History | None

    def chat(self, model: ChatModel, conversation_id: int | None = None) -> ChatSession:
        """A session answering with `model`, continuing `conversation_id` when given."""
        return ChatSession(
            model,
            self.store,
            self.history,
            self.settings,
            conversation_id=conversation_id,
            embedder=self.embedder,
        )


@contextlib.contextmanager
def open_session(
    settings: settings_mod.Settings,
    *,
    library: Location | None = None,
    embedder: Any = None,
    history: bool = True,
) -> Iterator[OpenLibrary]:
    """The library of `settings` (or `library`), searched with `embedder` (by default the one
    Settings ▸ Retrieval chooses the device of), with the history unless `history` is False;
    the history is closed when the block ends."""
    from ingest.store import LibraryStore  # LanceDB: loaded when a chat opens, not before

    path = library or settings_mod.library_path(settings)
    if embedder is None:
        from ingest.embedder_models import library_embedder

        recorded = LibraryStore(path).recorded_embedder_folder()
        embedder = library_embedder(
            settings.retrieval.embedder, recorded, settings.retrieval.embed_device
        )
    store = LibraryStore(path, embedder)
    opened = History() if history else None
    try:
        yield OpenLibrary(settings, store, embedder, opened)
    finally:
        if opened is not None:
            opened.close()
