"""Every help screen of the `hatbot` command reads cleanly: metavars such as `URL` or `N`,
none beside a flag, no type labels or braces, and each paragraph wrapped to the terminal
only."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hatbot.cli import app

ROOT: Any = typer.main.get_command(app)


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command and group below `command`, with the words that name it."""
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not sub.hidden:
            found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(ROOT)
PATHS = [path for path, _ in COMMANDS]
BOX = "│╭╮╰╯─ "


def _help(path: tuple[str, ...], columns: int) -> str:
    env = {"COLUMNS": str(columns), "FORCE_COLOR": None, "TERMINAL_WIDTH": None}
    result = CliRunner().invoke(app, [*path, "--help"], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _only_punctuation(line: str) -> bool:
    rest = line.strip(BOX).replace(" ", "")
    return bool(rest) and all(unicodedata.category(c)[0] in "PS" for c in rest)


def test_cli_lists_every_command() -> None:
    named = {" ".join(path) for path in PATHS}
    for command in ["serve", "pipeline", "train", "promote", "smoke", "tournament", "hat"]:
        assert command in named
    for command in ["data fetch", "data add", "model publish", "model fetch"]:
        assert command in named
    assert {"model pointer get", "model pointer set"} <= named


@pytest.mark.parametrize("path", PATHS, ids=lambda path: " ".join(("hatbot", *path)))
def test_help_reads_cleanly(path: tuple[str, ...]) -> None:
    text = _help(path, 80)
    assert "Usage: " in text
    for label in ["<bool>", "<str>", "<int>", "<path>", "<float>", "<list", "range>"]:
        assert label not in text, f"type label {label} in:\n{text}"
    assert not re.search(r"<[a-z][^>]*>", text), text
    assert "{" not in text and "}" not in text, text
    for line in text.splitlines():
        assert not _only_punctuation(line), f"a line of punctuation only, {line!r}, in:\n{text}"


@pytest.mark.parametrize("path", PATHS, ids=lambda path: " ".join(("hatbot", *path)))
def test_help_wraps_paragraphs_only_at_the_terminal_edge(path: tuple[str, ...]) -> None:
    """On a wide terminal each paragraph of a docstring, and each subcommand's summary, is
    one line: the docstrings' own line breaks do not reach the screen."""
    text = _help(path, 250)
    lines = [" ".join(line.strip(BOX).split()) for line in text.splitlines()]
    command = dict(COMMANDS)[path]
    paragraphs = [p for p in (command.help or "").split("\n\n") if p]
    summaries = [s.help.split("\n\n")[0] for s in getattr(command, "commands", {}).values()]
    assert paragraphs, f"`hatbot {' '.join(path)}` has no help"
    for paragraph in [*paragraphs, *summaries]:
        flat = " ".join(paragraph.split())
        assert any(flat in line for line in lines), f"{flat!r} is broken across lines:\n{text}"


def test_usage_names_arguments_by_their_metavar() -> None:
    def usage(path: tuple[str, ...]) -> str:
        return next(line.strip() for line in _help(path, 80).splitlines() if "Usage:" in line)

    assert usage(("smoke",)) == "Usage: root smoke [OPTIONS] URL"
    assert (
        usage(("model", "pointer", "set")) == "Usage: root model pointer set [OPTIONS] NAME VERSION"
    )
    assert "--port PORT" in " ".join(_help(("serve",), 80).split())
