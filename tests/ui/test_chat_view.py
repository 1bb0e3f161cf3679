"""Source cards show a passage's text as the reader wrote it: quotes and apostrophes, no entities."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.ui.chat_view import SourceCard

pytestmark = pytest.mark.ui


def test_a_card_shows_quotes_and_apostrophes_literally(qtbot) -> None:  # type: ignore[no-untyped-def]
    ref = SimpleNamespace(
        number=6,
        title="Leaf",
        section="",
        source_title='Wikipedia "Vital" Articles',
        text='Leaves are collectively called foliage, as in "autumn foliage"; an organism\'s <cells>.',
        cited=True,
    )
    card = SourceCard(ref)
    qtbot.addWidget(card)
    shown = card.excerpt_label.text()
    assert '"autumn foliage"' in shown and "organism's" in shown and "<cells>" in shown
    assert "&quot;" not in shown and "&#x27;" not in shown
    assert card.origin_label.text() == 'Wikipedia "Vital" Articles'
