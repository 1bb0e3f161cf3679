"""app.llm.manager: one model at a time, reloads only when the weights' settings change, and
nothing left loaded after close — even by a load that finishes later."""

from __future__ import annotations

import threading

import pytest

from app.llm.base import ModelError
from app.llm.fake import FakeChatModel
from app.llm.manager import ModelManager, needs_reload
from app.settings import ModelSettings, OffloadSettings


class RecordingLoader:
    """Stands in for load_model: records what is alive when each load happens."""

    def __init__(self) -> None:
        self.loaded: list[FakeChatModel] = []
        self.alive_at_load: list[int] = []

    def __call__(self, settings: ModelSettings, offload: OffloadSettings) -> FakeChatModel:
        self.alive_at_load.append(sum(not m.closed for m in self.loaded))
        model = FakeChatModel(
            name=f"model-{len(self.loaded)}", context_length=settings.context_length
        )
        self.loaded.append(model)
        return model


def test_reloading_frees_the_old_model_before_loading_the_new() -> None:
    loader = RecordingLoader()
    manager = ModelManager(loader)
    first = manager.get(ModelSettings(), OffloadSettings())
    # Same load settings, other sampling settings: no reload.
    assert manager.get(ModelSettings(temperature=0.9), OffloadSettings()) is first
    second = manager.get(ModelSettings(context_length=2048), OffloadSettings())
    third = manager.get(ModelSettings(context_length=2048), OffloadSettings(gpu_layers=5))
    assert [m.closed for m in (first, second, third)] == [True, True, False]
    assert loader.alive_at_load == [0, 0, 0]
    assert manager.current is third
    manager.unload()
    assert third.closed and manager.current is None


def test_invalid_new_settings_keep_the_loaded_model() -> None:
    manager = ModelManager(RecordingLoader())
    model = manager.get(ModelSettings(), OffloadSettings())
    with pytest.raises(ModelError):
        manager.get(ModelSettings(), OffloadSettings(kv_cache_type="q4_0"))
    assert manager.current is model and not model.closed


def test_concurrent_requests_load_one_model() -> None:
    loader = RecordingLoader()
    manager = ModelManager(loader)
    results: list[object] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(manager.get(ModelSettings(), OffloadSettings()))
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loader.loaded) == 1 and all(r is loader.loaded[0] for r in results)


def test_only_settings_the_weights_depend_on_need_a_reload() -> None:
    base = (ModelSettings(), OffloadSettings())
    assert not needs_reload(base, (ModelSettings(temperature=1.1), OffloadSettings()))
    assert not needs_reload(base, (ModelSettings(max_answer_tokens=64), OffloadSettings()))
    assert not needs_reload(base, (ModelSettings(), OffloadSettings(unload_while_embedding=True)))
    assert needs_reload(base, (ModelSettings(path="/m/other.gguf"), OffloadSettings()))
    assert needs_reload(base, (ModelSettings(context_length=2048), OffloadSettings()))
    assert needs_reload(base, (ModelSettings(), OffloadSettings(gpu_layers=10)))


def test_a_load_that_finishes_after_close_frees_its_model() -> None:
    release = threading.Event()
    made: list[FakeChatModel] = []

    def slow(settings: ModelSettings, offload: OffloadSettings) -> FakeChatModel:
        release.wait(10)
        made.append(FakeChatModel())
        return made[-1]

    manager = ModelManager(slow)
    errors: list[Exception] = []

    def load() -> None:
        try:
            manager.get(ModelSettings(), OffloadSettings())
        except ModelError as exc:
            errors.append(exc)

    worker = threading.Thread(target=load)
    worker.start()
    manager.close()  # returns at once, the load still running
    assert worker.is_alive()
    release.set()
    worker.join(10)
    assert made and made[0].closed and manager.current is None
    assert errors and "closing" in str(errors[0])
    with pytest.raises(ModelError):
        manager.get(ModelSettings(), OffloadSettings())


def test_state_follows_loads_failures_and_unloads() -> None:
    def failing(settings: ModelSettings, offload: OffloadSettings) -> FakeChatModel:
        raise ModelError("model.gguf is not a GGUF file")

    manager = ModelManager(failing)
    assert manager.state == "none"
    with pytest.raises(ModelError):
        manager.get(ModelSettings(), OffloadSettings())
    assert manager.state == "failed" and "not a GGUF" in manager.error
    manager = ModelManager(RecordingLoader())
    manager.get(ModelSettings(), OffloadSettings())
    assert manager.state == "ready"
    manager.unload()
    assert manager.state == "none"
