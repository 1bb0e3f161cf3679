"""Source cards show a passage's text as the reader wrote it: quotes and apostrophes, no
entities."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.ui.chat_view import FLUSH_MS, FLUSH_MS_MAX, SourceCard, flush_interval_ms

pytestmark = pytest.mark.ui


def test_a_card_shows_quotes_and_apostrophes_literally(qtbot) -> None:  # type: ignore[no-untyped-def]
    ref = SimpleNamespace(
        number=6,
        title="Leaf",
        section="",
        source_title='Wikipedia "Vital" Articles',
        text=(
            'Leaves are collectively called foliage, as in "autumn foliage"; '
            "an organism's <cells>."
        ),
        cited=True,
    )
    card = SourceCard(ref)
    qtbot.addWidget(card)
    shown = card.excerpt_label.text()
    assert '"autumn foliage"' in shown and "organism's" in shown and "<cells>" in shown
    assert "&quot;" not in shown and "&#x27;" not in shown
    assert card.origin_label.text() == 'Wikipedia "Vital" Articles'


def _refs() -> list[SimpleNamespace]:
    return [
        SimpleNamespace(
            number=n, title=t, section="", source_title="Demo", text=f"{t} text.", cited=True
        )
        for n, t in ((1, "Photosynthesis"), (2, "Leaf"), (3, "Chlorophyll"))
    ]


def test_the_instant_answer_block_quotes_with_a_link_to_each_passage(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.ui.chat_view import MessageWidget

    msg = MessageWidget("assistant")
    qtbot.addWidget(msg)
    msg.set_passages(_refs())
    msg.set_extract([("Plants turn light into sugar.", 2, "Leaf")])
    shown = msg.extract.text()
    assert "FROM YOUR LIBRARY" in shown and "Plants turn light into sugar." in shown
    assert "<b>Leaf</b>" in shown and "href='cite:2'" in shown
    with qtbot.waitSignal(msg.citation_activated) as opened:
        msg.extract.linkActivated.emit("cite:2")
    assert opened.args[0].title == "Leaf"


def test_an_empty_instant_answer_says_so_instead_of_quoting_noise(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.ui.chat_view import MessageWidget

    msg = MessageWidget("assistant")
    qtbot.addWidget(msg)
    msg.set_extract([])
    assert "No sentence of the passages answers this directly" in msg.extract.text()


def test_unsupported_sentences_are_greyed_and_every_citation_form_is_a_link(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.ui.chat_view import MessageWidget, checked_markdown

    support = [
        SimpleNamespace(text="Leaves make sugar [1-2].", claim=True, supported=True),
        SimpleNamespace(text="The moon is made of cheese.", claim=True, supported=False),
        SimpleNamespace(text="See [Source 3].", claim=False, supported=True),
    ]
    text = "Leaves make sugar [1-2]. The moon is made of cheese. See [Source 3]."
    marked = checked_markdown(text, support)
    assert "(cite:1)" in marked and "(cite:2)" in marked and "(cite:3)" in marked
    assert marked.count("(unsupported:") == 1
    grey_at = marked.index("#8a8f98")
    assert marked.index("The moon") > grey_at > marked.index("Leaves make sugar")
    msg = MessageWidget("assistant")
    qtbot.addWidget(msg)
    msg.set_passages(_refs())
    msg.set_checked_text(text, support)
    with qtbot.waitSignal(msg.citation_activated) as opened:
        msg.body.linkActivated.emit("cite:3")
    assert opened.args[0].title == "Chlorophyll"


def test_a_cards_excerpt_keeps_a_short_description_on_its_own_line() -> None:
    from app.ui.chat_view import excerpt

    text = (
        "Biological process to convert light into chemical energy\n\n"
        "Photosynthesis is a system of biological processes by which   plants\nconvert light."
    )
    assert excerpt(text) == (
        "Biological process to convert light into chemical energy\n"
        "Photosynthesis is a system of biological processes by which plants convert light."
    )
    long = excerpt("word " * 200, limit=50)
    assert long.endswith(" …") and len(long) <= 52 and "\n" not in long


def test_a_long_answer_is_shown_again_less_often_as_it_grows() -> None:
    # each flush lays the whole answer out again: a short one streams at 25 updates a second, a
    # long one at no fewer than four, so its relayouts never take most of the window's time
    assert flush_interval_ms(0) == FLUSH_MS
    steps = [flush_interval_ms(n) for n in (0, 500, 1_000, 2_000, 4_000, 100_000)]
    assert steps == sorted(steps) and steps[1] < steps[3]
    assert flush_interval_ms(100_000) == FLUSH_MS_MAX <= 250
