"""The `chats` and `export` commands over a history in the test's LIBRARIAN_HOME."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from app.chat import cli
from app.chat.history import History, NewMessage


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="librarian")
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture
def saved_chat() -> int:
    with History() as history:
        conv = history.create_conversation("Volcanoes of Sicily")
        history.add_messages(
            conv, [NewMessage("user", "Is Etna active?"), NewMessage("assistant", "Yes [1].")]
        )
        return conv


def test_ask_parses_all_its_options() -> None:
    args = parse(
        "ask",
        "Is Etna active?",
        "--k",
        "4",
        "--source",
        "wiki",
        "--source",
        "book.epub",
        "--gpu-layers",
        "-1",
        "--ctx",
        "2048",
        "--json",
        "--chat",
        "3",
        "--model",
        "m.gguf",
    )
    assert (args.question, args.k, args.source, args.gpu_layers, args.ctx) == (
        "Is Etna active?",
        4,
        ["wiki", "book.epub"],
        -1,
        2048,
    )
    assert args.json and args.chat == "3" and args.model == "m.gguf"
    assert args.func is cli.run_ask


def test_chats_lists_saved_conversations(
    saved_chat: int, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("chats")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "Volcanoes of Sicily" in out and str(saved_chat) in out

    args = parse("chats", "--json")
    assert args.func(args) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {
            "id": saved_chat,
            "title": "Volcanoes of Sicily",
            "created": listed[0]["created"],
            "updated": listed[0]["updated"],
            "messages": 2,
        }
    ]


def test_chats_with_no_history_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("chats")
    assert args.func(args) == 0
    assert "No saved conversations" in capsys.readouterr().out


def test_export_by_id_or_title_to_stdout_or_file(
    saved_chat: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("export", str(saved_chat))
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith("# Volcanoes of Sicily\n")

    target = tmp_path / "chat.md"
    args = parse("export", "volcanoes", "-o", str(target))
    assert args.func(args) == 0
    assert "## Is Etna active?" in target.read_text(encoding="utf-8")


def test_export_of_an_unknown_chat_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("export", "42")
    assert args.func(args) == 1
    assert "no conversation 42" in capsys.readouterr().err
