"""The real path through the window: real embedder, bundled SmolLM2, a built ZIM — ask, cite,
read."""

from __future__ import annotations

import importlib.util

import pytest
from PySide6.QtCore import Qt

from app.ui.services import Services

pytestmark = [pytest.mark.ui, pytest.mark.e2e]


def test_the_default_model_answers_with_citations_that_open_in_the_reader(
    qtbot, make_window, library_folder
):  # type: ignore[no-untyped-def]
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    from tests.ui.conftest import drop_paths
    from tests.ui.test_main_window import LagMeter

    # The window loads the query embedder and the model while it opens (Services.warm_up):
    # torch's import holds Python's lock for a few hundred ms, there and not while a library is
    # added or a question answered. What is measured is the window once it has started.
    window = make_window(Services())  # the real embedder and the bundled default model
    qtbot.waitUntil(
        lambda: window.embedder_warm and window.chat.model_state == "ready", timeout=120_000
    )
    lag = LagMeter()
    lag.start()
    drop_paths(window, [library_folder])
    qtbot.waitUntil(
        lambda: (
            len(window.source_model.rows()) == 3
            and all(r.stage == "ready" for r in window.source_model.rows())
            and not window.ingest.is_busy()
        ),
        timeout=600_000,
    )
    qtbot.waitUntil(lambda: window.chat.chat_model is not None, timeout=120_000)
    assert "bundled default" in window.model_label.text()
    box = window.chat_view.input
    qtbot.keyClicks(box, "Where was the Lighthouse of Alexandria built?")
    with qtbot.waitSignal(window.answer_finished, timeout=300_000):
        qtbot.keyClick(box, Qt.Key.Key_Return)
    lag.stop()
    assert lag.samples > 100
    print(f"worst event-loop gap {lag.worst_ms:.0f} ms: {lag.worst_gaps()}")
    lag.assert_responsive()
    answer = window.chat_view.answer_widgets()[-1]
    assert answer.text.strip()
    assert answer.refs, "no passages were retrieved"
    assert any("Lighthouse" in str(r.title) for r in answer.refs.values())
    ref = answer.cards[0].ref if answer.cards else next(iter(answer.refs.values()))
    window.open_citation(ref)
    qtbot.waitUntil(lambda: window.reader_view.highlight is not None, timeout=60_000)
    assert " ".join(ref.text.split()[:5]) in " ".join(window.reader_view.highlighted_text().split())
