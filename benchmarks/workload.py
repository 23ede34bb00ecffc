"""The request mix both bots are driven with: the host's exact request shapes.

For each of `targets` words drawn from the hat-eligible vocabulary (the
tournament's method, `hatbot.game.hat.build_hat`) the host sends

* `GET /explain?word=W&n_words=10` (the explainer's call; 10 as in the longer
  tournaments, so that guesses can carry 1 to 10 hints), then
* `GET /guess?words=h1&...&words=hk&n_words=5` for k = 1..10, the hints being
  hatbot's own explanation of W (what a guesser receives, attempt by attempt).

That is 1 explain per 10 guesses: one explainer and up to 10 guess attempts per
other bot, per word. The list is deterministic (seeded) and the same for both bots.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

EXPLAIN_N = 10
GUESS_N = 5
MAX_HINTS = 10


@dataclass(frozen=True)
class Call:
    kind: str  # "explain" or "guess"
    words: tuple[str, ...]  # the word to explain, or the hints so far
    n_words: int

    @property
    def path(self) -> str:
        if self.kind == "explain":
            return "/explain?" + urlencode({"word": self.words[0], "n_words": self.n_words})
        query = [("words", w) for w in self.words] + [("n_words", str(self.n_words))]
        return "/guess?" + urlencode(query)


def build(artifact: Path, targets: int = 1000, seed: int = 0) -> list[Call]:
    """The call sequence for `targets` hat words, hints from hatbot's explanations."""
    from hatbot.game.hat import build_hat
    from hatbot.index import WordIndex
    from hatbot.strategy import Strategy

    index = WordIndex(artifact)
    strategy = Strategy(index)
    eligible = [w for w, ok in zip(index.words, index.eligible, strict=True) if ok]
    calls: list[Call] = []
    for word in build_hat(eligible, targets, seed, "all"):
        calls.append(Call("explain", (word,), EXPLAIN_N))
        # The artifact's precomputed explanation (what the service answers), else live.
        hints = index.explanation(word, MAX_HINTS) or strategy.explain(word, MAX_HINTS)
        for k in range(1, len(hints) + 1):
            calls.append(Call("guess", tuple(hints[:k]), GUESS_N))
    return calls


def save(calls: list[Call], folder: Path) -> tuple[Path, Path]:
    """Write `calls.json` (for the in-process benchmark) and `paths.txt` (for wrk)."""
    folder.mkdir(parents=True, exist_ok=True)
    calls_file = folder / "calls.json"
    calls_file.write_text(json.dumps([asdict(c) for c in calls]))
    paths_file = folder / "paths.txt"
    paths_file.write_text("".join(c.path + "\n" for c in calls))
    return calls_file, paths_file


def load(calls_file: Path) -> list[Call]:
    return [
        Call(c["kind"], tuple(c["words"]), int(c["n_words"]))
        for c in json.loads(calls_file.read_text())
    ]
