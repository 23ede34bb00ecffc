"""A tournament as the host plays it (docs/GAME.md), with every answer recorded.

Words leave the hat in order. In every round each player explains once, in an
order shuffled with the tournament's seed; the other players guess. For each
word the explanation is cleaned by the host's rules, then at attempt `i` every
player still guessing receives the first `i` hints, all of them at once. Success
at attempt `i` earns `n_explain + 1 - i`; the explainer earns the sum.

Given a seed and deterministic players, the log and the leaderboard are the same
on every run (response times aside, unless the players report fixed times).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from hatbot.game import rules
from hatbot.game.players import TIMEOUT, Answer, Player
from hatbot.game.rules import Lexicon

# The attempts whose cumulative guess rates the leaderboard shows by default.
RATE_ATTEMPTS = (1, 3, 5)


@dataclass(frozen=True)
class GameConfig:
    """How a tournament is played."""

    # Words an explainer is asked for (5 in the latest tournaments, 10 earlier).
    n_explain: int = 5
    # Guesses a guesser is asked for.
    n_guess: int = 5
    criteria: Literal["soft", "hard"] = "soft"
    # Seeds the order of explainers in every round.
    seed: int = 0
    # Rounds to play (each player explains once per round); None: until the hat is empty.
    rounds: int | None = None

    def __post_init__(self) -> None:
        if self.n_explain < 1 or self.n_guess < 1:
            raise ValueError("n_explain and n_guess must be at least 1")
        if self.criteria not in rules.CRITERIA:
            raise ValueError(f"unknown criteria {self.criteria!r}: use 'soft' or 'hard'")
        if self.rounds is not None and self.rounds < 0:
            raise ValueError(f"cannot play {self.rounds} rounds")


@dataclass(frozen=True)
class Attempt:
    """One attempt: the first `attempt` hints went to every player still guessing."""

    attempt: int
    guesses: dict[str, Answer]
    # Players whose guesses won at this attempt.
    guessed: list[str]


@dataclass(frozen=True)
class Game:
    """One word of the hat: its explanation, the hints the host kept, every attempt, the points."""

    index: int
    round: int
    word: str
    explainer: str
    explanation: Answer
    hints: list[str]
    # Words among the first n_explain of the explanation that the host deleted.
    rejected: int
    attempts: list[Attempt]
    # Points of every guesser who succeeded, and of the explainer (their sum).
    points: dict[str, int]

    def guessed_at(self, player: str) -> int | None:
        """The attempt at which `player` guessed the word, or None."""
        for attempt in self.attempts:
            if player in attempt.guessed:
                return attempt.attempt
        return None


@dataclass(frozen=True)
class LeaderboardRow:
    """One player's results over a tournament."""

    name: str
    total: int
    explaining: int
    guessing: int
    # Words this player explained / words it was asked to guess (explained by others).
    explained: int
    guessing_games: int
    # Attempt k -> share of its guessing games won within the first k attempts.
    guess_rates: dict[int, float]
    # The total's standard error over the words played (`total_error`); None below two.
    total_se: float | None
    # Explanation words (within the first n_explain) that the host deleted.
    rejected: int
    calls: int
    # Calls whose answer counted as an empty list (timeouts included), and timeouts alone.
    failures: int
    timeouts: int
    median_seconds: float | None
    p95_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        rates = row.pop("guess_rates")
        for k, rate in rates.items():
            row[f"guess_rate_{k}"] = rate
        return row


def _answer_json(answer: Answer, include_seconds: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"words": list(answer.words)}
    if include_seconds:
        data["seconds"] = answer.seconds
    data["failure"] = answer.failure
    return data


def _answer_from_json(data: Mapping[str, Any]) -> Answer:
    return Answer(list(data["words"]), float(data.get("seconds", 0.0)), data.get("failure"))


def points_of(name: str, games: Sequence[Game]) -> int:
    """The points `name` earned in `games`."""
    return sum(g.points.get(name, 0) for g in games)


def failure_counts(answers: Sequence[Answer]) -> tuple[int, int]:
    """How many answers counted as an empty list (timeouts included), and timeouts alone."""
    failed = [a.failure for a in answers if a.failure is not None]
    return len(failed), failed.count(TIMEOUT)


def guess_rates(name: str, games: Sequence[Game], attempts: Sequence[int]) -> dict[int, float]:
    """Attempt k -> share of `games` that `name` guessed within the first k attempts."""
    if not games:
        return {k: 0.0 for k in attempts}
    won_at = [g.guessed_at(name) for g in games]
    return {k: sum(1 for a in won_at if a is not None and a <= k) / len(games) for k in attempts}


def total_error(name: str, games: Sequence[Game]) -> float | None:
    """The standard error of `name`'s total over `games`: sqrt(n) times the standard
    deviation of its points per word, how far the total moves by chance from one hat of n
    words to another. None below two words."""
    points = [g.points.get(name, 0) for g in games]
    if len(points) < 2:
        return None
    return math.sqrt(len(points)) * statistics.stdev(points)


def response_times(answers: Sequence[Answer]) -> tuple[float | None, float | None]:
    """The answers' median and 95th-percentile seconds; None for both without answers."""
    seconds = [a.seconds for a in answers]
    if not seconds:
        return None, None
    return float(statistics.median(seconds)), float(np.percentile(seconds, 95))


@dataclass(frozen=True)
class TournamentResult:
    """The full log of a tournament, and the leaderboard computed from it."""

    config: GameConfig
    players: list[str]
    hat: list[str]
    games: list[Game] = field(default_factory=list)

    def answers(self, player: str) -> list[Answer]:
        """Every answer `player` gave, explanations and guesses, in order."""
        found = []
        for game in self.games:
            if game.explainer == player:
                found.append(game.explanation)
            for attempt in game.attempts:
                if player in attempt.guesses:
                    found.append(attempt.guesses[player])
        return found

    def leaderboard(self, attempts: Sequence[int] = RATE_ATTEMPTS) -> list[LeaderboardRow]:
        """One row per player, best total first (ties by name)."""
        rows = [self.leaderboard_row(name, attempts) for name in self.players]
        return sorted(rows, key=lambda r: (-r.total, r.name))

    def leaderboard_row(self, name: str, attempts: Sequence[int] = RATE_ATTEMPTS) -> LeaderboardRow:
        """`name`'s results: points as explainer and as guesser, guess rates, calls."""
        explained = [g for g in self.games if g.explainer == name]
        guessing_games = [g for g in self.games if g.explainer != name]
        explaining = points_of(name, explained)
        guessing = points_of(name, guessing_games)
        answers = self.answers(name)
        failures, timeouts = failure_counts(answers)
        median, p95 = response_times(answers)
        return LeaderboardRow(
            name=name,
            total=explaining + guessing,
            explaining=explaining,
            guessing=guessing,
            explained=len(explained),
            guessing_games=len(guessing_games),
            guess_rates=guess_rates(name, guessing_games, attempts),
            total_se=total_error(name, self.games),
            rejected=sum(g.rejected for g in explained),
            calls=len(answers),
            failures=failures,
            timeouts=timeouts,
            median_seconds=median,
            p95_seconds=p95,
        )

    def to_json(self, include_seconds: bool = True) -> dict[str, Any]:
        """The log as JSON-able data; without seconds it depends only on what players said."""
        return {
            "config": asdict(self.config),
            "players": list(self.players),
            "hat": list(self.hat),
            "games": [
                {
                    "index": g.index,
                    "round": g.round,
                    "word": g.word,
                    "explainer": g.explainer,
                    "explanation": _answer_json(g.explanation, include_seconds),
                    "hints": list(g.hints),
                    "rejected": g.rejected,
                    "attempts": [
                        {
                            "attempt": a.attempt,
                            "guesses": {
                                name: _answer_json(answer, include_seconds)
                                for name, answer in a.guesses.items()
                            },
                            "guessed": list(a.guessed),
                        }
                        for a in g.attempts
                    ],
                    "points": dict(g.points),
                }
                for g in self.games
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TournamentResult:
        games = [
            Game(
                index=g["index"],
                round=g["round"],
                word=g["word"],
                explainer=g["explainer"],
                explanation=_answer_from_json(g["explanation"]),
                hints=list(g["hints"]),
                rejected=g["rejected"],
                attempts=[
                    Attempt(
                        attempt=a["attempt"],
                        guesses={n: _answer_from_json(x) for n, x in a["guesses"].items()},
                        guessed=list(a["guessed"]),
                    )
                    for a in g["attempts"]
                ],
                points={n: int(p) for n, p in g["points"].items()},
            )
            for g in data["games"]
        ]
        return cls(
            config=GameConfig(**data["config"]),
            players=list(data["players"]),
            hat=list(data["hat"]),
            games=games,
        )

    def write_json(self, path: Path) -> None:
        """Write the log and the leaderboard to `path` (atomically)."""
        data = self.to_json()
        data["leaderboard"] = [row.as_dict() for row in self.leaderboard()]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)


def deal(n_players: int, hat_size: int, config: GameConfig) -> list[tuple[int, int, int]]:
    """(round, explainer index, hat index) of every game, as the host deals them."""
    rng = random.Random(config.seed)
    rounds = config.rounds if config.rounds is not None else math.ceil(hat_size / n_players)
    games: list[tuple[int, int, int]] = []
    for r in range(rounds):
        order = list(range(n_players))
        rng.shuffle(order)
        for p in order:
            if len(games) == hat_size:
                return games
            games.append((r, p, len(games)))
    return games


async def _ask(call: Callable[[], Awaitable[Answer]]) -> Answer:
    """A player's answer; a player that raises loses the turn, as a crashed bot would."""
    start = time.perf_counter()
    try:
        return await call()
    except Exception as exc:  # a broken in-process player must not stop the tournament
        return Answer([], time.perf_counter() - start, f"error {type(exc).__name__}")


async def play_game(
    index: int,
    round_: int,
    word: str,
    explainer: Player,
    guessers: Sequence[Player],
    config: GameConfig,
    lexicon: Lexicon | None,
) -> Game:
    """One word: explanation, cleaning, attempts until everyone guessed or hints run out."""
    explanation = await _ask(partial(explainer.explain, word, config.n_explain))
    cleaning = rules.clean(word, explanation.words, config.n_explain, config.criteria, lexicon)
    hints = cleaning.hints
    waiting = list(guessers)
    success: dict[str, int] = {}
    attempts = []
    for i in range(1, len(hints) + 1):
        if not waiting:
            break
        answers = await asyncio.gather(
            *(_ask(partial(p.guess, hints[:i], config.n_guess)) for p in waiting)
        )
        guessed = [
            p.name
            for p, answer in zip(waiting, answers, strict=True)
            if rules.is_guessed(word, answer.words, config.criteria)
        ]
        attempts.append(
            Attempt(
                attempt=i,
                guesses={p.name: a for p, a in zip(waiting, answers, strict=True)},
                guessed=guessed,
            )
        )
        for name in guessed:
            success[name] = i
        waiting = [p for p in waiting if p.name not in success]
    points = {name: config.n_explain + 1 - i for name, i in success.items()}
    points[explainer.name] = sum(points.values())
    return Game(
        index=index,
        round=round_,
        word=word,
        explainer=explainer.name,
        explanation=explanation,
        hints=hints,
        rejected=cleaning.rejected,
        attempts=attempts,
        points=points,
    )


async def play_tournament(
    players: Sequence[Player],
    hat: Sequence[str],
    config: GameConfig,
    lexicon: Lexicon | None,
    progress: bool = False,
) -> TournamentResult:
    """Play the hat with these players; `lexicon` is needed for the hard criterion."""
    names = [p.name for p in players]
    if len(players) < 2:
        raise ValueError("a tournament needs at least two players")
    if len(set(names)) != len(names):
        raise ValueError(f"player names must be unique: {names}")
    if config.criteria == "hard" and lexicon is None:
        raise ValueError("the hard criterion needs a lexicon (stems and WordNet)")
    schedule = deal(len(players), len(hat), config)
    games = []
    with tqdm(total=len(schedule), desc="tournament", unit="word", disable=not progress) as bar:
        for round_, p, k in schedule:
            explainer = players[p]
            guessers = [q for q in players if q is not explainer]
            games.append(await play_game(k, round_, hat[k], explainer, guessers, config, lexicon))
            bar.update(1)
    return TournamentResult(config=config, players=names, hat=list(hat), games=games)
