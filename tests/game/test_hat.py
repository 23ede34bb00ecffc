"""Hats: seeded draws from a fixed tune/held-out split of the eligible words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hatbot.game.hat import build_hat, read_hat, word_part, write_hat

WORDS = [f"word{chr(97 + i)}{chr(97 + j)}" for i in range(26) for j in range(26)]


def test_build_hat_is_reproducible_and_seeded() -> None:
    first = build_hat(WORDS, 50, seed=3)
    assert first == build_hat(list(reversed(WORDS)), 50, seed=3)
    assert first != build_hat(WORDS, 50, seed=4)
    assert len(first) == len(set(first)) == 50
    assert set(first) <= set(WORDS)


def test_build_hat_accepts_counts_mapping() -> None:
    counts = {w: i for i, w in enumerate(WORDS)}
    assert build_hat(counts, 20, seed=1, part="tune") == build_hat(WORDS, 20, seed=1, part="tune")


def test_build_hat_splits_parts_disjointly() -> None:
    tune = build_hat(WORDS, len(WORDS), seed=0, part="tune")
    heldout = build_hat(WORDS, len(WORDS), seed=0, part="heldout")
    assert not set(tune) & set(heldout)
    assert set(tune) | set(heldout) == set(WORDS)
    # A stable hash gives about the requested share.
    assert 0.4 < len(heldout) / len(WORDS) < 0.6
    assert (
        0.15
        < len(build_hat(WORDS, len(WORDS), 0, "heldout", heldout_share=0.2)) / len(WORDS)
        < 0.25
    )


def test_build_hat_keeps_a_word_in_its_part_whatever_the_vocabulary() -> None:
    small = set(build_hat(WORDS[:100], 100, seed=0, part="heldout"))
    large = set(build_hat(WORDS, len(WORDS), seed=9, part="heldout"))
    assert small == large & set(WORDS[:100])


def test_word_part_is_stable_across_processes() -> None:
    # Python's own hash() changes per process (PYTHONHASHSEED); the split must not.
    code = "from hatbot.game.hat import word_part; print(word_part('planet'), word_part('orbit'))"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        ).stdout
        for seed in (1, 2)
    }
    assert runs == {f"{word_part('planet')} {word_part('orbit')}\n"}


def test_build_hat_returns_all_words_when_the_part_is_small() -> None:
    hat = build_hat(WORDS[:10], 50, seed=0)
    assert sorted(hat) == sorted(WORDS[:10])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": -1}, "cannot hold"),
        ({"part": "test"}, "unknown hat part"),
        ({"heldout_share": 1.0}, "heldout_share"),
    ],
)
def test_build_hat_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"size": 5, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_hat(WORDS, **arguments)  # type: ignore[arg-type]


def test_write_hat_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "hats" / "tune.txt"
    hat = build_hat(WORDS, 30, seed=5)
    write_hat(path, hat)
    assert read_hat(path) == hat
    assert path.read_text().splitlines() == hat


def test_read_hat_skips_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "hat.txt"
    path.write_text("# practice hat\nplanet\n\n  orbit \n")
    assert read_hat(path) == ["planet", "orbit"]


def test_write_hat_rejects_blank_words(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="single non-blank"):
        write_hat(tmp_path / "hat.txt", ["planet", " "])
