"""A tournament's leaderboard as a Markdown table and as a PNG chart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hatbot.game.tournament import LeaderboardRow, TournamentResult


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_leaderboard(rows: Sequence[LeaderboardRow]) -> str:
    """The leaderboard as a Markdown table (plain text that reads well in a terminal too),
    with a legend of its columns and a line on its noise below."""
    attempts = sorted({k for row in rows for k in row.guess_rates})
    header = ["#", "player", "total", "explaining", "guessing"]
    header += [f"guessed by {k}" for k in attempts]
    header += ["rejected words", "failures", "timeouts", "calls", "median s", "p95 s"]
    lines = [header]
    for rank, row in enumerate(rows, start=1):
        cells = [str(rank), row.name, str(row.total), str(row.explaining), str(row.guessing)]
        cells += [f"{row.guess_rates[k]:.0%}" if k in row.guess_rates else "-" for k in attempts]
        cells += [
            str(row.rejected),
            str(row.failures),
            str(row.timeouts),
            str(row.calls),
            _seconds(row.median_seconds),
            _seconds(row.p95_seconds),
        ]
        lines.append(cells)
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    # Names left-aligned, numbers right-aligned.
    left = {1}

    def render(cells: list[str]) -> str:
        padded = [
            cell.ljust(widths[c]) if c in left else cell.rjust(widths[c])
            for c, cell in enumerate(cells)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if c not in left else ":" + "-" * (w + 1)
            for c, w in enumerate(widths)
        )
        + "|"
    )
    table = [render(lines[0]), rule, *(render(line) for line in lines[1:])]
    return "\n".join([*table, "", *LEGEND, _noise(rows)]) + "\n"


LEGEND = (
    "- explaining: the points its guessers earned on the words it explained; guessing: the "
    "points it earned guessing the others' words.",
    "- guessed by k: the share of the words the others explained that it guessed within the "
    "first k hints.",
    "- rejected words: its explanation words the host deleted; failures: calls that counted as "
    "an empty list (timeouts included); median s, p95 s: its response times.",
)


def _noise(rows: Sequence[LeaderboardRow]) -> str:
    """One line on how far the totals can move by chance (docs/GAME.md, "A leaderboard")."""
    words = rows[0].explained + rows[0].guessing_games if rows else 0
    errors = [row.total_se for row in rows if row.total_se is not None]
    if not errors:
        return f"- noise: {words} word{'' if words == 1 else 's'} played, too few to measure."
    worst = max(errors)
    return (
        f"- noise: {words} words played; a total's standard error over them is at most "
        f"±{worst:.1f} here, so totals less than {3 * worst:.0f} apart (3 × {worst:.1f}) "
        "could be chance."
    )


def save_chart(result: TournamentResult, path: Path) -> None:
    """A PNG bar chart of each player's explaining and guessing points (stacked: the total)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = result.leaderboard()
    names = [row.name for row in rows]
    explaining = [row.explaining for row in rows]
    guessing = [row.guessing for row in rows]
    # A bare Figure on the Agg canvas: no pyplot, no global backend state.
    figure = Figure(figsize=(max(5.0, 1.1 * len(rows) + 2.0), 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(rows)))
    axes.bar(positions, explaining, label="explaining", color="#4c72b0")
    axes.bar(positions, guessing, bottom=explaining, label="guessing", color="#dd8452")
    for x, row in zip(positions, rows, strict=True):
        axes.annotate(
            str(row.total),
            (x, row.total),
            ha="center",
            va="bottom",
            xytext=(0, 2),
            textcoords="offset points",
        )
    axes.set_xticks(positions, names, rotation=20 if len(rows) > 4 else 0)
    axes.set_ylabel("points")
    config = result.config
    axes.set_title(
        f"{len(result.games)} words, {config.criteria} rules, "
        f"{config.n_explain} hints, {config.n_guess} guesses, seed {config.seed}"
    )
    # Headroom for the totals and a one-row legend above the tallest bar.
    axes.set_ylim(0, max([row.total for row in rows] + [1]) * 1.3)
    axes.legend(loc="upper right", ncols=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
