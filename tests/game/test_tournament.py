"""Tournaments: the host's dealing and scoring, HTTP bots that misbehave, reproducibility."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from hatbot.game.players import Answer, HttpPlayer, Player, StrategyPlayer
from hatbot.game.report import format_leaderboard
from hatbot.game.tournament import GameConfig, TournamentResult, deal, play_tournament

# A tiny shared language: each word and the hints that explain it, best first.
TABLE = {
    "planet": ["orbit", "star", "moon", "telescope", "galaxy"],
    "guitar": ["string", "chord", "music", "band", "rock"],
    "doctor": ["hospital", "nurse", "medicine", "patient", "health"],
    "engine": ["motor", "fuel", "car", "piston", "power"],
    "church": ["god", "prayer", "priest", "faith", "bible"],
    "winter": ["snow", "cold", "ice", "december", "season"],
}


class TablePlayer:
    """A deterministic bot: explains from its table, guesses the word sharing most hints."""

    def __init__(
        self,
        name: str,
        table: Mapping[str, list[str]],
        seconds: float = 0.01,
        reverse: bool = False,
    ) -> None:
        self.name = name
        self.table = dict(table)
        self.seconds = seconds
        # A reversed explainer gives its weakest hints first.
        self.reverse = reverse

    async def explain(self, word: str, n_words: int) -> Answer:
        hints = self.table.get(word, [])
        return Answer(list(reversed(hints) if self.reverse else hints)[:n_words], self.seconds)

    async def guess(self, hints: list[str], n_words: int) -> Answer:
        overlap = {w: len(set(hints) & set(h)) for w, h in self.table.items()}
        ranked = sorted((w for w, k in overlap.items() if k > 0), key=lambda w: (-overlap[w], w))
        return Answer(ranked[:n_words], self.seconds)


class ScriptedPlayer:
    """A bot with one fixed explanation and guesses keyed by the hints it is given."""

    def __init__(
        self, name: str, explanation: list[str], guesses: Mapping[tuple[str, ...], list[str]]
    ) -> None:
        self.name = name
        self.explanation = explanation
        self.guesses = dict(guesses)
        self.asked: list[tuple[str, ...]] = []

    async def explain(self, word: str, n_words: int) -> Answer:
        return Answer(list(self.explanation), 0.01)

    async def guess(self, hints: list[str], n_words: int) -> Answer:
        self.asked.append(tuple(hints))
        return Answer(self.guesses.get(tuple(hints), []), 0.02)


class BrokenPlayer:
    """An in-process player that raises: it must lose its turns, not stop the tournament."""

    name = "broken"

    async def explain(self, word: str, n_words: int) -> Answer:
        raise RuntimeError("broken")

    async def guess(self, hints: list[str], n_words: int) -> Answer:
        raise RuntimeError("broken")


# Everyone explains "planet" the same way; soft keeps orbit, star, moon (n_explain 3).
EXPLANATION = ["Planets", "orbit!", "star", "moon", "sun"]


def _scripted() -> list[ScriptedPlayer]:
    return [
        # ann guesses at attempt 1 (a plural counts in soft mode only).
        ScriptedPlayer(
            "ann", EXPLANATION, {("orbit",): ["planets"], ("orbit", "star"): ["planet"]}
        ),
        # ben guesses at attempt 3 in soft mode; hard mode plays only two hints.
        ScriptedPlayer(
            "ben", EXPLANATION, {("orbit",): ["moon"], ("orbit", "star", "moon"): ["planet"]}
        ),
        # cy never guesses: "planetary" is 3 edits away.
        ScriptedPlayer("cy", EXPLANATION, {("orbit",): ["planetary"]}),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("criteria", "hints", "points_as_guesser", "rejected"),
    [
        # Soft: "planets" rejected, "moon" promoted; ann wins at 1 (3 points), ben at 3 (1).
        ("soft", ["orbit", "star", "moon"], {"ann": 3, "ben": 1, "cy": 0}, 1),
        # Hard: cut to 3 first, "planets" rejected; ann wins at 2 with the exact word (2).
        ("hard", ["orbit", "star"], {"ann": 2, "ben": 0, "cy": 0}, 1),
    ],
)
async def test_play_tournament_scores_like_the_host(
    lexicon: Any,
    criteria: str,
    hints: list[str],
    points_as_guesser: dict[str, int],
    rejected: int,
) -> None:
    players = _scripted()
    config = GameConfig(n_explain=3, criteria=criteria, seed=0)  # type: ignore[arg-type]
    result = await play_tournament(players, ["planet"], config, lexicon)
    (game,) = result.games
    assert game.hints == hints and game.rejected == rejected
    winners = {n: p for n, p in points_as_guesser.items() if n != game.explainer and p > 0}
    assert game.points == {**winners, game.explainer: sum(winners.values())}
    # Every attempt until the hints run out or all guessers won; winners are not asked again.
    asked = [set(a.guesses) for a in game.attempts]
    guessers = {p.name for p in players} - {game.explainer}
    assert asked[0] == guessers
    for attempt in game.attempts:
        for name in attempt.guessed:
            assert all(name not in later.guesses for later in game.attempts[attempt.attempt :])
    for player in players:
        assert player.asked == [tuple(hints[:i]) for i in range(1, len(player.asked) + 1)]
    rows = {row.name: row for row in result.leaderboard()}
    assert rows[game.explainer].explaining == sum(winners.values())
    assert rows[game.explainer].rejected == rejected
    assert sum(row.guessing for row in rows.values()) == sum(winners.values())


@pytest.mark.parametrize(
    ("players", "hat", "rounds"), [(3, 7, None), (4, 8, None), (3, 7, 1), (2, 3, 5)]
)
def test_deal_gives_each_player_one_word_per_round(
    players: int, hat: int, rounds: int | None
) -> None:
    config = GameConfig(seed=4, rounds=rounds)
    games = deal(players, hat, config)
    expected = hat if rounds is None else min(hat, rounds * players)
    assert [k for _, _, k in games] == list(range(expected))
    for r in {r for r, _, _ in games}:
        explainers = [p for q, p, _ in games if q == r]
        assert len(explainers) == len(set(explainers))
        if len(explainers) == players:
            assert sorted(explainers) == list(range(players))
    assert deal(players, hat, config) == games
    orders = {tuple(p for _, p, _ in deal(players, hat, GameConfig(seed=s))) for s in range(10)}
    assert len(orders) > 1


@pytest.mark.anyio
async def test_play_tournament_survives_a_raising_player() -> None:
    players: list[Player] = [TablePlayer("ann", TABLE), TablePlayer("ben", TABLE), BrokenPlayer()]
    result = await play_tournament(players, list(TABLE)[:3], GameConfig(seed=1), None)
    rows = {row.name: row for row in result.leaderboard()}
    assert rows["broken"].total == 0
    assert rows["broken"].failures == rows["broken"].calls > 0
    assert rows["ann"].total > 0 and rows["ben"].total > 0


def test_play_tournament_rejects_bad_setups() -> None:
    import asyncio

    ann, ben = TablePlayer("ann", TABLE), TablePlayer("ben", TABLE)
    with pytest.raises(ValueError, match="two players"):
        asyncio.run(play_tournament([ann], ["planet"], GameConfig(), None))
    with pytest.raises(ValueError, match="unique"):
        asyncio.run(play_tournament([ann, TablePlayer("ann", {})], ["planet"], GameConfig(), None))
    with pytest.raises(ValueError, match="lexicon"):
        asyncio.run(play_tournament([ann, ben], ["planet"], GameConfig(criteria="hard"), None))
    with pytest.raises(ValueError, match="n_explain"):
        GameConfig(n_explain=0)


def _deterministic_players() -> list[TablePlayer]:
    partial = {w: h for w, h in TABLE.items() if w not in ("engine", "winter")}
    return [
        TablePlayer("ann", TABLE, seconds=0.010),
        TablePlayer("ben", partial, seconds=0.020),
        TablePlayer("cy", TABLE, seconds=0.030, reverse=True),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("criteria", ["soft", "hard"])
async def test_play_tournament_reproduces_its_leaderboard(
    lexicon: Any, criteria: str, tmp_path: Path
) -> None:
    hat = list(TABLE) * 2
    config = GameConfig(n_explain=5, criteria=criteria, seed=11)  # type: ignore[arg-type]
    first = await play_tournament(_deterministic_players(), hat, config, lexicon)
    second = await play_tournament(_deterministic_players(), hat, config, lexicon)
    assert first.leaderboard() == second.leaderboard()
    assert first.to_json() == second.to_json()
    assert len(first.games) == len(hat)
    # Each player explained once per round: four words each for three players and 12 words.
    assert [row.explained for row in first.leaderboard()] == [4, 4, 4]
    # The log round-trips through a file.
    path = tmp_path / "tournament.json"
    first.write_json(path)
    data = json.loads(path.read_text())
    assert [row["name"] for row in data["leaderboard"]] == [r.name for r in first.leaderboard()]
    assert (
        TournamentResult.from_json(json.loads(path.read_text(encoding="utf-8"))).leaderboard()
        == first.leaderboard()
    )
    # Another seed deals the words to other explainers.
    other = await play_tournament(
        _deterministic_players(),
        hat,
        GameConfig(n_explain=5, criteria=criteria, seed=12),  # type: ignore[arg-type]
        lexicon,
    )
    assert [g.explainer for g in other.games] != [g.explainer for g in first.games]


@pytest.mark.anyio
async def test_play_tournament_leaderboard_counts_rates_and_times(lexicon: Any) -> None:
    hat = list(TABLE) * 2
    result = await play_tournament(
        _deterministic_players(), hat, GameConfig(n_explain=5, seed=11), lexicon
    )
    rows = {row.name: row for row in result.leaderboard()}
    ann = rows["ann"]
    # ann knows every word: she guesses every word others explained at all (ben cannot
    # explain "engine" or "winter": no hints, no attempts), each from its first hint.
    explained = [g for g in result.games if g.explainer != "ann" and g.hints]
    assert ann.guessing_games == 8 and 0 < len(explained) < 8
    assert ann.guess_rates == {1: len(explained) / 8, 3: len(explained) / 8, 5: len(explained) / 8}
    assert ann.guessing == 5 * len(explained)
    assert ann.guess_rates[1] <= ann.guess_rates[3] <= ann.guess_rates[5]
    assert ann.median_seconds == pytest.approx(0.010) and ann.p95_seconds == pytest.approx(0.010)
    # ben never learned "engine" and "winter".
    assert rows["ben"].guess_rates[5] < 1.0
    assert all(row.failures == row.timeouts == row.rejected == 0 for row in rows.values())
    assert sum(r.total for r in rows.values()) == 2 * sum(r.guessing for r in rows.values())


@pytest.mark.anyio
async def test_play_tournament_scores_slow_and_malformed_http_bots_as_empty(
    serve_bot: Callable[[str, Mapping[str, list[str]]], str],
    lexicon: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    slow_url = serve_bot("slow", TABLE)
    malformed_url = serve_bot("malformed", TABLE)
    players: list[Any] = [
        TablePlayer("ann", TABLE),
        TablePlayer("ben", {w: h for w, h in TABLE.items() if w != "engine"}),
    ]
    # With tests/conftest.py's tiny artifact, hatbot plays too (test_players skips without it).
    with contextlib.suppress(pytest.FixtureLookupError):
        players.append(StrategyPlayer("hatbot", _strategy(request.getfixturevalue("tiny_index"))))
    async with HttpPlayer("slow", slow_url) as slow, HttpPlayer("malformed", malformed_url) as bad:
        assert await slow.ping() and await bad.ping()
        players += [slow, bad]
        hat = list(TABLE)[: len(players)]
        config = GameConfig(n_explain=3, seed=5)
        result = await play_tournament(players, hat, config, lexicon, progress=True)

    print(format_leaderboard(result.leaderboard()))
    assert len(result.games) == len(hat)
    assert sorted(g.explainer for g in result.games) == sorted(p.name for p in players)
    rows = {row.name: row for row in result.leaderboard()}
    # The slow bot explains well over real HTTP, but every guess is late: an empty list.
    slow_row = rows["slow"]
    assert slow_row.guessing == 0 and slow_row.explaining > 0
    assert slow_row.timeouts == slow_row.failures == slow_row.calls - 1 > 0
    assert slow_row.p95_seconds is not None and slow_row.p95_seconds >= 1.0
    # The malformed bot loses every turn, and its word is never played.
    bad_row = rows["malformed"]
    assert bad_row.total == 0 and bad_row.failures == bad_row.calls > 0 and bad_row.timeouts == 0
    (bad_game,) = [g for g in result.games if g.explainer == "malformed"]
    assert bad_game.explanation.failure == "not a JSON list of strings"
    assert bad_game.hints == [] and bad_game.attempts == []
    for game in result.games:
        for attempt in game.attempts:
            for name in ("slow", "malformed"):
                if name in attempt.guesses:
                    assert attempt.guesses[name].words == []
                    assert name not in attempt.guessed
    assert rows["ann"].total > 0 and rows["ann"].failures == 0
    result.write_json(tmp_path / "log.json")
    logged = json.loads((tmp_path / "log.json").read_text())
    failures = [
        answer["failure"]
        for game in logged["games"]
        for attempt in game["attempts"]
        for answer in attempt["guesses"].values()
        if answer["failure"]
    ]
    assert set(failures) == {"timeout", "not a JSON list of strings"}


def _strategy(index: Any) -> Any:
    from hatbot.strategy import Strategy

    return Strategy(index)
