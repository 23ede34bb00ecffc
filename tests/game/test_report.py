"""Reports: the leaderboard as a Markdown table and a PNG chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from hatbot.game.players import Answer
from hatbot.game.report import format_leaderboard, save_chart
from hatbot.game.tournament import Attempt, Game, GameConfig, TournamentResult


def _result() -> TournamentResult:
    """Two words: ann explains "planet" (ben wins at 2), ben explains "guitar" (nobody wins)."""
    games = [
        Game(
            index=0,
            round=0,
            word="planet",
            explainer="ann",
            explanation=Answer(["planets", "orbit", "star"], 0.01),
            hints=["orbit", "star"],
            rejected=1,
            attempts=[
                Attempt(1, {"ben": Answer(["moon"], 0.2)}, []),
                Attempt(2, {"ben": Answer(["planet"], 0.4)}, ["ben"]),
            ],
            points={"ben": 2, "ann": 2},
        ),
        Game(
            index=1,
            round=0,
            word="guitar",
            explainer="ben",
            explanation=Answer(["string"], 0.3),
            hints=["string"],
            rejected=0,
            attempts=[Attempt(1, {"ann": Answer([], 1.0, "timeout")}, [])],
            points={"ben": 0},
        ),
    ]
    return TournamentResult(
        config=GameConfig(n_explain=3),
        players=["ann", "ben"],
        hat=["planet", "guitar"],
        games=games,
    )


def test_leaderboard_summarises_the_log() -> None:
    ann, ben = _result().leaderboard()
    assert (ben.name, ben.total, ben.explaining, ben.guessing) == ("ben", 2, 0, 2)
    assert ben.guess_rates == {1: 0.0, 3: 1.0, 5: 1.0}
    assert (ann.name, ann.total, ann.rejected, ann.failures, ann.timeouts) == ("ann", 2, 1, 1, 1)
    assert ann.calls == 2 and ann.median_seconds == 0.505
    assert ben.median_seconds == 0.3 and abs(ben.p95_seconds - 0.39) < 1e-9  # type: ignore[operator]
    assert ben.as_dict()["guess_rate_3"] == 1.0


def test_format_leaderboard_renders_a_markdown_table() -> None:
    table, legend = format_leaderboard(_result().leaderboard()).split("\n\n")
    assert legend.startswith("- explaining: ")
    lines = table.splitlines()
    assert len(lines) == 4
    assert lines[0].split("|")[1:4] == [" # ", " player ", " total "]
    assert set(lines[1]) <= {"|", "-", ":"}
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    assert len({len(line) for line in lines}) == 1
    # Equal totals: by name.
    ann = [c.strip() for c in lines[2].split("|")[1:-1]]
    ben = [c.strip() for c in lines[3].split("|")[1:-1]]
    assert ann[:5] == ["1", "ann", "2", "2", "0"] and ben[:5] == ["2", "ben", "2", "0", "2"]
    assert ben[5:8] == ["0%", "100%", "100%"]
    # rejected, failures, timeouts, calls, median, p95
    assert ann[8:] == ["1", "1", "1", "2", "0.505", "0.950"]
    assert ben[8:] == ["0", "0", "0", "3", "0.300", "0.390"]


def test_leaderboard_total_se_is_the_standard_error_over_words() -> None:
    ann, ben = _result().leaderboard()
    # Points per word: ann 2 and 0, ben 2 and 0; sqrt(2) x their standard deviation sqrt(2).
    assert ann.total_se == pytest.approx(2.0) and ben.total_se == pytest.approx(2.0)
    assert ann.as_dict()["total_se"] == pytest.approx(2.0)
    alone = TournamentResult(GameConfig(), ["ann", "ben"], ["planet"], _result().games[:1])
    assert [row.total_se for row in alone.leaderboard()] == [None, None]


def test_format_leaderboard_explains_its_columns_and_noise() -> None:
    text = format_leaderboard(_result().leaderboard())
    assert text.endswith("\n") and "\n\n\n" not in text
    legend = text.split("\n\n")[1].splitlines()
    assert len(legend) == 4 and all(line.startswith("- ") for line in legend)
    assert legend[0].startswith("- explaining: ") and "; guessing: " in legend[0]
    assert legend[1] == (
        "- guessed by k: the share of the words the others explained that it guessed within"
        " the first k hints."
    )
    assert legend[2].startswith("- rejected words: ") and "failures: " in legend[2]
    assert legend[3] == (
        "- noise: 2 words played; a total's standard error over them is at most ±2.0 here,"
        " so totals less than 6 apart (3 × 2.0) could be chance."
    )


def test_format_leaderboard_says_when_too_few_words_were_played() -> None:
    result = TournamentResult(config=GameConfig(), players=["ann", "ben"], hat=[])
    noise = format_leaderboard(result.leaderboard()).splitlines()[-1]
    assert noise == "- noise: 0 words played, too few to measure."
    alone = TournamentResult(GameConfig(), ["ann", "ben"], ["planet"], _result().games[:1])
    noise = format_leaderboard(alone.leaderboard()).splitlines()[-1]
    assert noise == "- noise: 1 word played, too few to measure."


def test_format_leaderboard_shows_missing_times() -> None:
    result = TournamentResult(config=GameConfig(), players=["ann", "ben"], hat=[])
    table = format_leaderboard(result.leaderboard())
    cells = [c.strip() for c in table.splitlines()[2].split("|")[1:-1]]
    assert cells[-2:] == ["-", "-"]


def test_save_chart_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "charts" / "leaderboard.png"
    save_chart(_result(), path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
