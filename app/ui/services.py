"""What the window asks of the domain, as plain functions that workers call on their own threads.

Nothing here decides anything: each function opens its own handles and drives the same code the
CLI drives (ingest.pipeline, ingest.store, app.chat, app.llm). Tests swap the two heavy pieces —
the embedder and the chat model — through `Services`.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import paths
from app.llm.manager import ModelManager
from app.settings import ModelSettings, OffloadSettings, Settings
from ingest.library_location import Location

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[str], Any]  # device ("auto", "cpu", "cuda") -> Embedder
ModelLoader = Callable[[ModelSettings, OffloadSettings], Any]  # -> ChatModel


def _default_embedder_factory(device: str) -> Any:
    from ingest.embedding import default_embedder

    return default_embedder(device)  # type: ignore[arg-type]


def _default_model_loader(model: ModelSettings, offload: OffloadSettings) -> Any:
    from app.llm.runtime import load_model

    return load_model(model, offload)


@dataclass
class Services:
    """The heavy collaborators of the window; tests give a fake model and a hashing embedder.
    `models` decides when the chat model is loaded, reloaded and freed (app.llm.manager)."""

    embedder_factory: EmbedderFactory = _default_embedder_factory
    model_loader: ModelLoader = _default_model_loader
    # Settings ▸ Retrieval's embedder folder; None: the one `library` was embedded with (read
    # from the store when first needed), else the factory's (the bundled model).
    embedder_folder: str | None = None
    library: Location | None = None
    _recorded: tuple[Location, str | None] | None = field(default=None, repr=False)
    _embedders: dict[tuple[str | None, str], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    models: ModelManager = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.models = ModelManager(self.model_loader)

    def embedder(self, device: str) -> Any:
        """One embedder per model folder and device for the whole session: loading weights
        takes seconds."""
        with self._lock:
            folder = self.embedder_folder or self._library_folder()
            key = (folder, device)
            if key not in self._embedders:
                if folder is None:
                    self._embedders[key] = self.embedder_factory(device)
                else:
                    from ingest.embedder_models import embedder_for

                    self._embedders[key] = embedder_for(folder, device)  # type: ignore[arg-type]
            return self._embedders[key]

    def choose_embedder(self, folder: str | None) -> None:
        """Settings ▸ Retrieval chose `folder` (None: as the library was embedded)."""
        with self._lock:
            self.embedder_folder = folder
            self._recorded = None  # the library may have been re-embedded since it was read

    def _library_folder(self) -> str | None:
        """The model folder the library records it was embedded with (a command's --embedder),
        read once per library; None for the bundled model or when unknown."""
        if self.library is None:
            return None
        if self._recorded is None or self._recorded[0] != self.library:
            from ingest.errors import IngestError
            from ingest.store import LibraryStore

            try:
                recorded = LibraryStore(self.library).recorded_embedder_folder()
            except IngestError as exc:
                log.warning("the library's embedder could not be read: %s", exc)
                recorded = None
            self._recorded = (self.library, recorded)
        return self._recorded[1]

    def warm_up(self, device: str) -> None:
        """Load the query embedder and the store's native libraries now, on a worker: the
        embedder's first use imports torch and sentence-transformers, whose C extensions hold
        Python's lock for a few hundred ms at a time, and so do Lance's and libzim's. Paid
        while the window opens, those stalls are not met while a library is added or a question
        answered.

        Python's cycle collector is held off meanwhile, and what the imports built is then
        frozen out of it (gc.freeze): a full collection walks every object there is, and with
        torch loaded — millions of them — each one held the window still for 100–400 ms while
        a library was being added. Frozen objects are never walked again."""
        from ingest.store import load_native_libraries

        gc.disable()
        try:
            load_native_libraries()
            self.embedder(device).embed(["warm up"])
        finally:
            gc.freeze()
            gc.enable()


# --- library ----------------------------------------------------------------------------------


def open_store(store_path: Location, embedder: Any = None) -> Any:
    from ingest.store import LibraryStore

    return LibraryStore(store_path, embedder=embedder)


def ingest_events(
    services: Services,
    paths_: Sequence[str],
    store_path: Location,
    device: str,
    keyword_only: bool,
    cancel: threading.Event,
    skip: Collection[str] = (),
) -> Iterator[Any]:
    """Progress events and per-source results of ingesting `paths_` (ingest.pipeline), leaving
    the paused sources in `skip` as they are."""
    from ingest.pipeline import ingest_paths

    yield from ingest_paths(
        [Path(p) for p in paths_],
        store_path,
        embedder_factory=lambda: services.embedder(device),
        keyword_only=keyword_only,
        cancel=cancel,
        skip=skip,
    )


def reset_vectors(services: Services, store_path: Location, device: str) -> int:
    """Drop every vector of the library and record the embedder `services` now gives, so stage 2
    re-embeds every source with it (keyword search keeps working meanwhile); the number of
    sources to re-embed, -1 when the library's vectors come from that model already."""
    from ingest.store import LibraryStore

    embedder = services.embedder(device)
    store = LibraryStore(store_path, embedder, check_embedder=False)
    if store.recorded_embedder() == (embedder.name, embedder.dim):
        return -1
    store.reset_vectors(embedder)
    return sum(1 for r in store.sources() if r.stage == "embedding")


def list_sources(store_path: Location) -> list[Any]:
    """The sources of the store, as SourceRecords."""
    return list(open_store(store_path).sources())


def remove_source(store_path: Location, source_id: str) -> None:
    open_store(store_path).remove(source_id)


def compact_events(store_path: Location, cancel: threading.Event) -> Iterator[Any]:
    """`librarian compact` for the window: progress events, then Compacted (ingest.pipeline)."""
    from ingest.pipeline import compact_library

    yield from compact_library(store_path, cancel)


def import_pack_events(
    services: Services, store_path: Location, pack: str, device: str, cancel: threading.Event
) -> Iterator[Any]:
    """`librarian vectors import` for the window: progress events, then PackDone; PackError
    when the pack does not fit the library (ingest.vector_packs). A library without vectors yet
    takes only a pack made with the embedder this app embeds with."""
    from ingest.vector_packs import import_pack

    embedder = services.embedder(device)
    yield from import_pack(store_path, pack, (embedder.name, embedder.dim), cancel)


def open_reader(store_path: Location, source_id: str) -> Any:
    """A SourceReader for the reader view (resource(path) -> Resource | None)."""
    return open_store(store_path).open_reader(source_id)


def discover_files(paths_: Sequence[str]) -> Any:
    """Expand dropped files and folders into sources to read (ingest.discovery)."""
    from ingest.discovery import discover

    return discover(paths_)


# --- answering --------------------------------------------------------------------------------


def load_chat_model(services: Services, settings: Settings) -> Any:
    """The chat model for these settings: the loaded one when its weights fit them, else the
    old one freed and these loaded (on a worker thread: it takes seconds)."""
    return services.models.get(settings.model, settings.offload)


def unload_chat_model(services: Services) -> None:
    services.models.unload()


def open_chat(settings: Settings, store_path: Location, embedder: Any) -> Any:
    """The library open for questions (app.chat.open_session, as `librarian ask` opens it):
    a context manager giving an OpenLibrary whose `chat(model, conversation_id)` answers."""
    from app.chat.open_session import open_session

    return open_session(settings, library=store_path, embedder=embedder)


def open_history() -> Any:
    from app.chat.history import History

    return History(paths.history_file())


def with_history(call: Callable[[Any], Any]) -> Any:
    """`call(history)` on a connection of its own (SQLite connections stay on their thread)."""
    history = open_history()
    try:
        return call(history)
    finally:
        history.close()


def demo_zim() -> Path | None:
    """The demo library's ZIM when it has been built (packaging/build_demo.py writes it)."""
    folder = paths.home() / "demo"
    if not folder.is_dir():
        return None
    zims = sorted(folder.glob("*.zim"))
    return zims[0] if zims else None


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]
