"""The one chat model of a session (the window's or a terminal command's): when to load, reload
and unload it, and its state for whoever shows it. No Qt: the window only relays."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal

from app.llm.base import ModelError
from app.settings import ModelSettings, OffloadSettings

Loader = Callable[[ModelSettings, OffloadSettings], Any]
ModelState = Literal["none", "loading", "ready", "failed"]


def load_key(settings: ModelSettings, offload: OffloadSettings) -> tuple[Any, ...]:
    """What the loaded weights depend on: a change needs a reload. Sampling (temperature,
    answer length) and when to unload do not: they apply to the next answer as they are."""
    return (
        settings.path,
        settings.context_length,
        settings.threads,
        settings.batch_size,
        offload.model_dump_json(exclude={"unload_while_embedding"}),
    )


def needs_reload(
    old: tuple[ModelSettings, OffloadSettings], new: tuple[ModelSettings, OffloadSettings]
) -> bool:
    """Whether going from `old` settings to `new` ones needs the weights loaded again."""
    return load_key(*old) != load_key(*new)


def _default_loader(settings: ModelSettings, offload: OffloadSettings) -> Any:
    from app.llm.runtime import load_model

    return load_model(settings, offload)


class ModelManager:
    """Holds the one loaded model; loading other settings frees the old model first.

    Thread-safe: loads are serialised (run them on a worker thread), `state`, `error` and
    `current` can be read from any thread. After `close()` nothing stays loaded: a load still
    running when it is called frees its model as soon as it has it.
    """

    def __init__(self, loader: Loader = _default_loader) -> None:
        self._loader = loader
        self._lock = threading.RLock()
        self._model: Any = None
        self._key: tuple[Any, ...] | None = None
        self._closed = False
        self.state: ModelState = "none"
        self.error = ""

    @property
    def current(self) -> Any:
        """The loaded model, or None."""
        return self._model

    def is_loaded(self, settings: ModelSettings, offload: OffloadSettings) -> bool:
        """Whether the loaded model is the one for these settings."""
        return self._model is not None and self._key == load_key(settings, offload)

    def get(self, settings: ModelSettings, offload: OffloadSettings) -> Any:
        """The model for these settings: the loaded one when it fits them, else a (re)load."""
        with self._lock:
            if self.is_loaded(settings, offload):
                return self._model
            return self.load(settings, offload)

    def load(self, settings: ModelSettings, offload: OffloadSettings) -> Any:
        """Free the current model, then load with these settings (also when they match).
        Raises ModelError (state "failed", `error` says why)."""
        from app.llm.runtime import check_offload_settings

        with self._lock:
            if self._closed:
                raise ModelError("Librarian is closing.")
            check_offload_settings(offload)  # refuse bad settings before dropping the old model
            self.unload()
            self.state, self.error = "loading", ""
            try:
                model = self._loader(settings, offload)
            except Exception as exc:
                self.state, self.error = "failed", str(exc)
                raise
            if self._closed:  # closed while loading: nobody will use it
                self._free(model)
                self.state = "none"
                raise ModelError("Librarian is closing.")
            self._model, self._key = model, load_key(settings, offload)
            self.state = "ready"
            return model

    def unload(self) -> None:
        """Free the loaded model's memory (RAM and VRAM)."""
        with self._lock:
            model, self._model, self._key = self._model, None, None
            if self.state == "ready":
                self.state = "none"
            self._free(model)

    def close(self) -> None:
        """Unload for good, without waiting for a load in progress (it frees its own model)."""
        self._closed = True
        if self._lock.acquire(blocking=False):
            try:
                self.unload()
            finally:
                self._lock.release()

    @staticmethod
    def _free(model: Any) -> None:
        if model is not None:
            model.close()  # frees the weights now, without a cycle collection (which walks
            # every object of the process, 100s of ms with torch loaded, on the caller's thread)
