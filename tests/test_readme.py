"""The README's commands work as written: each command of its command-line table, and its
MLflow command, run from the repository root in a shell whose PATH lacks Poetry (as a fresh
shell after `scripts/setup` has it), with `--help` so nothing is trained or served."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
LOCAL_BIN = str(Path.home() / ".local" / "bin")


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def table_commands() -> list[str]:
    """Each command of the table: its code spans' words up to the first option or
    placeholder (`scripts/hatbot data fetch --source S` is `scripts/hatbot data fetch`)."""
    commands = []
    for line in section("The command line").splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        for span in re.findall(r"`([^`]+)`", first_cell):
            words = []
            for word in span.split():
                if not re.fullmatch(r"[a-z][a-z/_-]*", word):
                    break
                words.append(word)
            commands.append(" ".join(words))
    return commands


def fresh_shell_env() -> dict[str, str]:
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p != LOCAL_BIN]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    return {**env, "PATH": os.pathsep.join(path)}


def run(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=fresh_shell_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


COMMANDS = table_commands()


def test_the_table_lists_every_command_through_the_wrapper() -> None:
    assert len(COMMANDS) >= 10, COMMANDS
    assert all(c.startswith("scripts/hatbot ") for c in COMMANDS), COMMANDS
    for name in ["serve", "pipeline", "data fetch", "data add", "train", "tournament", "smoke"]:
        assert f"scripts/hatbot {name}" in COMMANDS
    assert "`hatbot " not in section("The command line"), "a bare `hatbot` is not on PATH"


@pytest.mark.parametrize("command", ["scripts/hatbot", *COMMANDS])
def test_readme_command_runs(command: str) -> None:
    done = run(f"{command} --help")
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout, done.stdout


def test_readme_mlflow_command_runs() -> None:
    block = re.search(r"```bash\n(export PATH=.*?)```", section("The command line"), re.DOTALL)
    assert block, "no MLflow block in the command-line section"
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert lines[1].startswith("poetry run mlflow ui --backend-store-uri sqlite:///mlruns/")
    done = run(f"{lines[0]}\n{lines[1]} --help")
    assert done.returncode == 0, done.stderr
    assert "--backend-store-uri" in done.stdout
