"""Measure hatbot's strength the fair way (docs/STRATEGY.md) and print the table.

Two tournaments per criterion on the same held-out hat with the same panel (the
starter-kit and clean-naive baselines): panel + hatbot, and panel + a second,
independently trained clean-naive player. hatbot is compared with that second
player, whose explaining points depend on the same guessers.

    poetry run python scripts/strength.py --hat-size 200 --seed 0 [--set strategy.k=v ...]

`--diagnose` plays each role apart instead, on every hat word: hatbot and the second
clean-naive player each explain every word once to the panel's guessers (explaining),
and each guess every word the panel explains (guessing). Points are counted as in a
game, per guesser (explaining) or per explainer (guessing), with the attempt that won.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path

from hatbot.game.lexicon import NltkLexicon
from hatbot.game.players import (
    CleanNaivePlayer,
    Player,
    StarterKitPlayer,
    StrategyPlayer,
)
from hatbot.game.report import format_leaderboard
from hatbot.game.rules import Criteria, clean, is_guessed
from hatbot.game.tournament import GameConfig, play_tournament
from hatbot.index import WordIndex
from hatbot.pipeline.corpus import DataStore, prepare
from hatbot.pipeline.evaluate import heldout_hat
from hatbot.pipeline.panel import train_baseline_models
from hatbot.pipeline.params import Params
from hatbot.store import ModelStore
from hatbot.strategy import Strategy, StrategyParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--hat-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", default="heldout", choices=["heldout", "tune"])
    parser.add_argument("--criteria", nargs="+", default=["soft", "hard"])
    parser.add_argument("--n-explain", type=int, default=5)
    parser.add_argument("--n-guess", type=int, default=5)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", type=Path, help="Write the numbers here.")
    parser.add_argument(
        "--no-reference", action="store_true", help="Skip the second clean-naive player."
    )
    parser.add_argument(
        "--panel", type=Path, help="Folder of already trained baselines (<kind>/model.bin)."
    )
    parser.add_argument(
        "--reference",
        type=Path,
        help="Folder of an already trained second panel; its clean_naive is the reference.",
    )
    parser.add_argument("--leaderboards", action="store_true", help="Print every leaderboard.")
    parser.add_argument(
        "--diagnose", action="store_true", help="Play explaining and guessing apart (above)."
    )
    args = parser.parse_args()

    params = Params.load(None, [])
    folder = ModelStore(args.models_dir).resolve("production")
    if folder is None:
        raise SystemExit(f"no production model in {args.models_dir}")
    index = WordIndex(folder)
    strategy_params = StrategyParams.of_model(index.manifest).model_dump()
    for item in args.overrides:
        key, _, value = item.partition("=")
        strategy_params[key.removeprefix("strategy.")] = json.loads(value)
    strategy = Strategy(index, StrategyParams(**strategy_params))

    second = None
    if args.reference is not None and not args.no_reference:
        second = {kind: args.reference / kind / "model.bin" for kind in ("clean_naive",)}
    if args.panel is not None:
        panel = {kind: args.panel / kind / "model.bin" for kind in ("starter_kit", "clean_naive")}
    else:
        corpora = prepare(DataStore(args.data_dir), params.preprocess)
        panel = train_baseline_models(
            corpora.clean, corpora.raw, corpora.clean.parent / "panel-seed0", seed=0
        )
        if not args.no_reference:
            second = train_baseline_models(
                corpora.clean, corpora.raw, corpora.clean.parent / "panel-seed1", seed=1
            )
    evaluate = params.evaluate.model_copy(update={"hat_size": args.hat_size, "seed": args.seed})
    hat = heldout_hat(index, evaluate)
    if args.part == "tune":
        from hatbot.game.hat import build_hat

        eligible = [w for w, ok in zip(index.words, index.eligible, strict=True) if ok]
        hat = build_hat(eligible, args.hat_size, args.seed, "tune")
    lexicon = NltkLexicon()
    starter = StarterKitPlayer("starter_kit", panel["starter_kit"])
    naive = CleanNaivePlayer("clean_naive", panel["clean_naive"])
    challengers: list[Player] = [StrategyPlayer("hatbot", strategy)]
    if second is not None:
        challengers.append(CleanNaivePlayer("clean_naive_2", second["clean_naive"]))

    if args.diagnose:
        diagnose(challengers, [starter, naive], hat, args, lexicon)
        return
    results: dict[str, dict[str, dict[str, float]]] = {}
    for criteria in args.criteria:
        config = GameConfig(args.n_explain, args.n_guess, criteria, args.seed)  # type: ignore[arg-type]
        rows = {}
        for challenger in challengers:
            players: list[Player] = [starter, naive, challenger]
            result = asyncio.run(play_tournament(players, hat, config, lexicon))
            board = result.leaderboard()
            if args.leaderboards:
                print(f"\n{criteria}, panel + {challenger.name}\n{format_leaderboard(board)}")
            row = next(r for r in board if r.name == challenger.name)
            rows[challenger.name] = {
                "total": row.total,
                "explaining": row.explaining,
                "guessing": row.guessing,
                "rejected": row.rejected,
                "guessed_by_1": row.guess_rates.get(1, 0.0),
                "guessed_by_5": row.guess_rates.get(5, 0.0),
            }
        results[criteria] = rows

    print(
        f"\nhat: {len(hat)} words ({args.part}), seed {args.seed}, "
        f"{args.n_explain} hints, {args.n_guess} guesses, model {index.version}"
    )
    print("| criteria | points | hatbot | clean_naive_2 | ratio |")
    print("|---|---|---:|---:|---:|")
    for criteria, rows in results.items():
        for key in ("total", "guessing", "explaining", "rejected", "guessed_by_1", "guessed_by_5"):
            a, b = rows["hatbot"][key], rows.get("clean_naive_2", {}).get(key, 0)
            ratio = f"{a / b:.2f}x" if b else "-"
            fmt = "{:.0%}" if key.startswith("guessed") else "{:g}"
            print(f"| {criteria} | {key} | {fmt.format(a)} | {fmt.format(b)} | {ratio} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


async def _points(
    explainer: Player,
    guessers: list[Player],
    hat: list[str],
    criteria: Criteria,
    n_explain: int,
    n_guess: int,
    lexicon: NltkLexicon,
) -> Counter[tuple[str, int]]:
    """Each guesser's wins (its name and the winning attempt) over the explainer's
    explanations of every hat word, cleaned by the host."""
    wins: Counter[tuple[str, int]] = Counter()
    for word in hat:
        reported = (await explainer.explain(word, n_explain)).words
        hints = clean(word, reported, n_explain, criteria, lexicon).hints
        for guesser in guessers:
            for attempt in range(1, len(hints) + 1):
                guesses = (await guesser.guess(hints[:attempt], n_guess)).words
                if is_guessed(word, guesses, criteria):
                    wins[guesser.name, attempt] += 1
                    break
    return wins


def diagnose(
    challengers: list[Player],
    panel: list[Player],
    hat: list[str],
    args: argparse.Namespace,
    lexicon: NltkLexicon,
) -> None:
    """Print each challenger's explaining and guessing points, role by role."""
    n, g = args.n_explain, args.n_guess
    print(f"\nhat: {len(hat)} words ({args.part}), seed {args.seed}, {n} hints, {g} guesses")
    names = [c.name for c in challengers]
    print("| criteria | role | by | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---:|" * len(names))
    for criteria in args.criteria:
        explaining = [
            asyncio.run(_points(c, panel, hat, criteria, n, g, lexicon)) for c in challengers
        ]
        # Each panel bot explains every word once; all challengers guess the same hints.
        guessing = [Counter[tuple[str, int]]() for _ in challengers]
        for explainer in panel:
            wins = asyncio.run(_points(explainer, challengers, hat, criteria, n, g, lexicon))
            for tally, c in zip(guessing, challengers, strict=True):
                tally.update(
                    {(explainer.name, k): v for (name, k), v in wins.items() if name == c.name}
                )
        for role, tallies in (("explaining", explaining), ("guessing", guessing)):
            for who in [p.name for p in panel] + ["all"]:
                cells = []
                for wins in tallies:
                    mine: Counter[int] = Counter()
                    for (name, k), v in wins.items():
                        if who in ("all", name):
                            mine[k] += v
                    points = sum((n + 1 - k) * v for k, v in mine.items())
                    first = mine.get(1, 0) / len(hat) / (len(panel) if who == "all" else 1)
                    cells.append(f"{points} ({first:.0%} at 1)")
                print(f"| {criteria} | {role} | {who} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
