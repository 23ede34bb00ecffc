"""Hats: which words a game draws, split once and for all into tuning and held-out words.

A word's part depends only on the word (a SHA-256 of its letters), never on the
vocabulary around it, the seed or the Python process: the same word stays
held out when the corpus grows, so no tuning run ever sees a held-out word.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

Part = Literal["all", "tune", "heldout"]
# A hat of everyday words (docs/GAME.md: practice games used such lists), for measuring
# hatbot on a hat of another kind than the tournament's.
EVERYDAY_HAT = Path(__file__).with_name("everyday.txt")


def word_part(word: str, heldout_share: float = 0.5) -> Literal["tune", "heldout"]:
    """Which part of every hat `word` belongs to, for a held-out share of the vocabulary."""
    digest = hashlib.sha256(word.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2.0**64
    return "heldout" if position < heldout_share else "tune"


def build_hat(
    eligible: Mapping[str, int] | Sequence[str],
    size: int,
    seed: int,
    part: Part = "all",
    heldout_share: float = 0.5,
) -> list[str]:
    """`size` words drawn with `seed` from the eligible words of `part`, in drawing order.

    `eligible` is a list of words or a mapping of words to corpus counts (counts
    are not used: every eligible word is equally likely). When the part holds
    fewer than `size` words, the hat holds all of them, shuffled.
    """
    if size < 0:
        raise ValueError(f"a hat cannot hold {size} words")
    if part not in ("all", "tune", "heldout"):
        raise ValueError(f"unknown hat part {part!r}: use 'all', 'tune' or 'heldout'")
    if not 0.0 < heldout_share < 1.0:
        raise ValueError(f"heldout_share must be between 0 and 1, not {heldout_share}")
    words = sorted(set(eligible))
    if part != "all":
        words = [w for w in words if word_part(w, heldout_share) == part]
    return random.Random(seed).sample(words, min(size, len(words)))


def write_hat(path: Path, words: Iterable[str]) -> None:
    """Write a hat file: one word per line, in drawing order (written atomically)."""
    words = list(words)
    bad = [w for w in words if not w.strip() or "\n" in w or w != w.strip()]
    if bad:
        raise ValueError(f"hat words must be single non-blank tokens: {bad[:3]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    os.replace(tmp, path)


def read_hat(path: Path) -> list[str]:
    """Read a hat file: one word per line; blank lines and `#` comments are skipped."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            words.append(word)
    return words
