"""ChatSession.ask: events, no-answer, citations, follow-ups, cancel, history."""

from __future__ import annotations

import threading

from app.chat.history import History
from app.chat.prompt import Turn
from app.chat.session import (
    NO_ANSWER,
    STOPPED_MARK,
    Cancelled,
    ChatSession,
    Done,
    Retrieved,
    Token,
    standalone_query,
)
from app.llm.fake import FakeChatModel


def events_of(session: ChatSession, question: str, **kw):
    return list(session.ask(question, **kw))


def test_answer_streams_then_done_with_citations_mapped_to_retrieved_passages(retriever) -> None:
    model = FakeChatModel(["Foragers dance [2]. Bees make honey [1]. Also [9]."])
    events = events_of(ChatSession(model, retriever), "How do honey bee foragers communicate?")
    assert isinstance(events[0], Retrieved)
    tokens = [e for e in events if isinstance(e, Token)]
    assert len(tokens) > 3
    done = events[-1]
    assert isinstance(done, Done) and not done.no_answer
    assert done.answer == "Foragers dance [2]. Bees make honey [1]. Also."
    assert done.citations == [2, 1] and done.dropped_citations == [9]
    given = {p.number: p.chunk_id for p in events[0].passages}
    assert all(given[s.number] == s.chunk_id for s in done.sources)
    assert done.sources[0].section == "Communication" and done.sources[0].cited
    assert done.stats.prompt_tokens > 0 and done.stats.answer_tokens > 0
    assert done.stats.ttft_s is not None


def test_the_prompt_holds_the_retrieved_passages(retriever) -> None:
    model = FakeChatModel()
    events = events_of(ChatSession(model, retriever), "What dance do honey bee foragers perform?")
    assert "waggle dance" in model.prompts[0]
    assert any("waggle" in p.text for p in events[0].passages)


def test_no_relevant_passage_gives_fixed_answer_without_calling_the_model(retriever) -> None:
    model = FakeChatModel()
    events = events_of(ChatSession(model, retriever), "What is the recipe for chocolate cake?")
    assert events[0] == Retrieved([], "What is the recipe for chocolate cake?")
    done = events[-1]
    assert isinstance(done, Done)
    assert done.no_answer and done.answer == NO_ANSWER
    assert done.sources == [] and done.citations == []
    assert model.prompts == []  # never asked
    assert not any(isinstance(e, Token) for e in events)


def test_follow_up_with_pronoun_is_searched_with_the_previous_topic(retriever) -> None:
    model = FakeChatModel(
        ["It was built by the Ptolemaic Kingdom [1].", "About one hundred metres [1]."]
    )
    session = ChatSession(model, retriever)
    events_of(session, "Who built the Lighthouse of Alexandria?")
    events = events_of(session, "How tall was it?")
    retrieved = events[0]
    assert "lighthouse" in retrieved.query.lower() and "alexandria" in retrieved.query.lower()
    assert any("hundred metres tall" in p.text for p in retrieved.passages)
    # The model sees the earlier turn too.
    assert "Who built the Lighthouse of Alexandria?" in model.prompts[1]


def test_self_contained_question_is_searched_as_asked() -> None:
    previous = [Turn("Who built the Lighthouse of Alexandria?", "The Ptolemaic Kingdom [1].")]
    assert (
        standalone_query("What is the capital of France?", previous)
        == "What is the capital of France?"
    )
    rewritten = standalone_query("And its height?", previous)
    assert rewritten.startswith("And its height?") and "alexandria" in rewritten.lower()
    assert standalone_query("How tall was it?", []) == "How tall was it?"


def test_cancel_stops_the_answer_and_saves_the_partial_turn_marked_stopped(
    retriever, tmp_path
) -> None:
    model = FakeChatModel(["Etna erupts often [1]. " + "word " * 200], token_delay=0.001)
    history = History(tmp_path / "h.sqlite3")
    session = ChatSession(model, retriever, history)
    cancel = threading.Event()
    seen = []
    for event in session.ask("Which volcano in Sicily is active?", cancel=cancel):
        seen.append(event)
        if isinstance(event, Token) and "[1]" in "".join(
            e.text for e in seen if isinstance(e, Token)
        ):
            cancel.set()
    stopped = seen[-1]
    assert isinstance(stopped, Cancelled)
    assert 0 < len(stopped.partial.split()) < 200
    assert not any(isinstance(e, Done) for e in seen)
    assert stopped.conversation_id is not None
    conv = history.load_conversation(stopped.conversation_id)
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert conv.messages[0].content == "Which volcano in Sicily is active?"
    answer = conv.messages[1]
    assert answer.content == stopped.partial.strip() + STOPPED_MARK
    assert answer.content.startswith("Etna erupts often [1].")
    assert answer.stats is not None and answer.stats["stopped"] is True
    given = [p.chunk_id for p in seen[0].passages]
    assert sorted(s.chunk_id for s in answer.sources) == sorted(given)
    assert [s.number for s in answer.sources if s.cited] == [1]


def test_closing_the_answer_mid_stream_saves_the_partial_turn(retriever, tmp_path) -> None:
    # The UI's worker closes the generator when the window closes (or after Esc, at the next
    # yield): the question and what was written so far must survive that too.
    model = FakeChatModel(["Etna erupts often [1]. " + "word " * 200], token_delay=0.001)
    history = History(tmp_path / "h.sqlite3")
    session = ChatSession(model, retriever, history)
    events = session.ask("Which volcano in Sicily is active?", cancel=threading.Event())
    tokens = []
    for event in events:
        if isinstance(event, Token):
            tokens.append(event.text)
            if len(tokens) == 5:
                break
    events.close()
    [info] = history.list_conversations()
    answer = history.load_conversation(info.id).messages[1]
    assert answer.content == "".join(tokens).strip() + STOPPED_MARK
    assert answer.stats is not None and answer.stats["stopped"] is True
    assert len(answer.sources) == len(session.last_prompt.passages) > 0


def test_a_stopped_turn_is_resumed_without_its_mark(retriever, tmp_path) -> None:
    history = History(tmp_path / "h.sqlite3")
    session = ChatSession(FakeChatModel(["word " * 200], token_delay=0.001), retriever, history)
    cancel = threading.Event()
    for event in session.ask("Which volcano in Sicily is active?", cancel=cancel):
        if isinstance(event, Token):
            cancel.set()
    cid = session.conversation_id
    assert cid is not None
    resumed = ChatSession(FakeChatModel(), retriever, history, conversation_id=cid)
    assert resumed.turns[0].question == "Which volcano in Sicily is active?"
    assert resumed.turns[0].answer.startswith("word") and "stopped" not in resumed.turns[0].answer


def test_cancel_before_generation_still_saves_the_question(retriever, tmp_path) -> None:
    history = History(tmp_path / "h.sqlite3")
    cancel = threading.Event()
    cancel.set()
    session = ChatSession(FakeChatModel(), retriever, history)
    events = list(session.ask("Which volcano in Sicily is active?", cancel=cancel))
    assert events == [Cancelled("", session.conversation_id)]
    conv = history.load_conversation(session.conversation_id)
    assert [m.content for m in conv.messages] == [
        "Which volcano in Sicily is active?",
        STOPPED_MARK.strip(),
    ]


def test_turns_are_saved_to_history_and_a_session_can_resume(retriever, tmp_path) -> None:
    history = History(tmp_path / "h.sqlite3")
    session = ChatSession(FakeChatModel(["Ptolemaic Kingdom [1]."]), retriever, history)
    done = events_of(session, "Who built the Lighthouse of Alexandria?")[-1]
    conv = history.load_conversation(done.conversation_id)
    assert conv.info.title == "Who built the Lighthouse of Alexandria?"
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    answer = conv.messages[1]
    assert answer.content == "Ptolemaic Kingdom [1]." and answer.model == "fake-model"
    assert answer.settings is not None and "retrieval" in answer.settings
    assert answer.sources[0].cited and answer.sources[0].title == "Lighthouse of Alexandria"

    resumed = ChatSession(FakeChatModel(), retriever, history, conversation_id=done.conversation_id)
    follow = events_of(resumed, "How tall was it?")
    assert "alexandria" in follow[0].query.lower()
    assert len(history.load_conversation(done.conversation_id).messages) == 4


def test_no_answer_turns_are_saved_without_sources(retriever, tmp_path) -> None:
    history = History(tmp_path / "h.sqlite3")
    session = ChatSession(FakeChatModel(), retriever, history)
    done = events_of(session, "What is the recipe for chocolate cake?")[-1]
    answer = history.load_conversation(done.conversation_id).messages[1]
    assert answer.no_answer and answer.sources == [] and answer.content == NO_ANSWER


def test_k_from_settings_limits_the_passages(retriever) -> None:
    from app.settings import Settings

    settings = Settings()
    settings.retrieval.passages = 1
    events = events_of(
        ChatSession(FakeChatModel(), retriever, settings=settings), "honey bee honey"
    )
    assert len(events[0].passages) == 1


def test_a_copied_source_header_line_is_left_out_of_the_answer(retriever) -> None:
    import re

    def echo_first_source(prompt: str) -> str:
        header = re.search(r"^\[1\] (.+)$", prompt, re.M)
        assert header is not None
        return f"{header.group(1)}\nForagers perform the waggle dance [1]."

    model = FakeChatModel([echo_first_source])
    events = events_of(ChatSession(model, retriever), "How do honey bee foragers communicate?")
    shown = "".join(e.text for e in events if isinstance(e, Token))
    done = events[-1]
    assert isinstance(done, Done)
    assert shown.startswith("Foragers perform the waggle dance")
    assert done.answer.startswith("Foragers perform the waggle dance")
