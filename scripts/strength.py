"""Measure hatbot's strength the fair way (docs/STRATEGY.md) and print the table.

Two tournaments per setting on the same hat with the same panel (one bot per recipe of
`hatbot.game.recipes`, trained on the corpus shuffled by seed 0): panel + hatbot, and
panel + a second, independently trained clean-naive player (seed 1). hatbot is compared
with that second player, whose explaining points depend on the same guessers. Settings:
each criterion, hint count (`--n-explain 5 10`) and hat (`--hats heldout everyday`: the
held-out half of the tournament's corpus words, and of the everyday words).

    poetry run python scripts/strength.py --hat-size 200 --seed 0 [--set strategy.k=v ...]

`--without RECIPE` plays hatbot without its proxy of that recipe (what modelling it is
worth); `--no-twins RECIPE` with that recipe's proxy alone: neither its twins' hint lists
(the guesser) nor their spaces (the explainer).
`--diagnose` plays each role apart instead, on every hat word: hatbot and the second
clean-naive player each explain every word once to the panel's guessers (explaining),
and each guess every word the panel explains (guessing).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from hatbot.game.hat import EVERYDAY_HAT, build_hat, read_hat
from hatbot.game.lexicon import NltkLexicon
from hatbot.game.players import Player, StrategyPlayer, recipe_player
from hatbot.game.recipes import RECIPES
from hatbot.game.report import format_leaderboard
from hatbot.game.rules import Criteria, clean, is_guessed
from hatbot.game.tournament import GameConfig, play_tournament
from hatbot.hat_kind import HatKind
from hatbot.host_mode import HostMode
from hatbot.index import WordIndex
from hatbot.pipeline.corpus import DataStore, prepare
from hatbot.pipeline.evaluate import heldout_hat
from hatbot.pipeline.panel import train_baseline_models
from hatbot.pipeline.params import Params
from hatbot.store import ModelStore
from hatbot.strategy import Strategy, StrategyParams

KEYS = ("total", "guessing", "explaining", "rejected", "guessed_by_1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--hat-size", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", default="heldout", choices=["heldout", "tune"])
    parser.add_argument("--hats", nargs="+", default=["corpus"], choices=["corpus", "everyday"])
    parser.add_argument("--criteria", nargs="+", default=["soft", "hard"])
    parser.add_argument("--n-explain", type=int, nargs="+", default=[5])
    parser.add_argument("--n-guess", type=int, default=5)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--without", action="append", default=[], choices=list(RECIPES))
    parser.add_argument(
        "--no-twins",
        action="append",
        default=[],
        choices=list(RECIPES),
        help="Model this recipe by its proxy alone: no twins' hint lists or spaces.",
    )
    parser.add_argument(
        "--hat-memory", type=int, default=100, help="hatbot's hat-kind memory (0: off)."
    )
    parser.add_argument(
        "--mode-memory", type=int, default=50, help="hatbot's host-mode memory (0: off)."
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", type=Path, help="Write the numbers here.")
    parser.add_argument(
        "--no-reference", action="store_true", help="Skip the second clean-naive player."
    )
    parser.add_argument(
        "--panel", type=Path, help="Folder of already trained baselines (<recipe>/model.bin)."
    )
    parser.add_argument(
        "--reference",
        type=Path,
        help="Folder of an already trained second panel; its clean_naive is the reference.",
    )
    parser.add_argument(
        "--roles",
        nargs="+",
        default=["explaining", "guessing"],
        choices=["explaining", "guessing"],
        help="The roles --diagnose plays.",
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
    # Without a recipe's proxy: no hint lists to read backwards, no weight anywhere; without
    # its twins: only the proxy's own hint lists, and only the proxy simulated.
    index.proxies = [
        dataclasses.replace(p, lists=())
        if p.name in args.without
        else dataclasses.replace(p, lists=p.lists[:1], twins=())
        if p.name in args.no_twins
        else p
        for p in index.proxies
    ]
    for weights in ("proxy_weights", "explain_proxy_weights"):
        strategy_params[weights] = {
            name: w for name, w in strategy_params[weights].items() if name not in args.without
        }
    chosen = StrategyParams(**strategy_params)

    panel, second = panel_models(args, params)
    hats = {kind: hat_of(kind, index, params, args) for kind in args.hats}
    lexicon = NltkLexicon()
    opponents = [recipe_player(name, RECIPES[name], panel[name]) for name in args.recipes]

    def challengers() -> list[Player]:
        # A fresh strategy per tournament: its estimate of the hat's kind starts empty.
        strategy = Strategy(index, chosen, HatKind(args.hat_memory), HostMode(args.mode_memory))
        players: list[Player] = [StrategyPlayer("hatbot", strategy)]
        if second is not None:
            players.append(recipe_player("clean_naive_2", RECIPES["clean_naive"], second))
        return players

    if args.diagnose:
        for kind, hat in hats.items():
            print(f"\n{kind} hat")
            diagnose(challengers, opponents, hat, args, lexicon)
        return
    results: dict[str, dict[str, dict[str, float]]] = {}
    for kind, hat in hats.items():
        for n_explain in args.n_explain:
            for criteria in args.criteria:
                setting = f"{kind} {n_explain} {criteria}"
                config = GameConfig(n_explain, args.n_guess, criteria, args.seed)  # type: ignore[arg-type]
                rows = {}
                for challenger in challengers():
                    players = [*opponents, challenger]
                    result = asyncio.run(play_tournament(players, hat, config, lexicon))
                    board = result.leaderboard()
                    if args.leaderboards:
                        print(f"\n{setting}, panel + {challenger.name}")
                        print(format_leaderboard(board))
                    row = next(r for r in board if r.name == challenger.name)
                    rows[challenger.name] = {
                        "total": row.total,
                        "explaining": row.explaining,
                        "guessing": row.guessing,
                        "rejected": row.rejected,
                        "guessed_by_1": row.guess_rates.get(1, 0.0),
                    }
                results[setting] = rows
                print(f"{setting}: " + ", ".join(f"{n} {r['total']:g}" for n, r in rows.items()))

    print(
        "\nhats: "
        + ", ".join(f"{k} {len(h)} words" for k, h in hats.items())
        + f" ({args.part}), seed {args.seed}, {args.n_guess} guesses, model {index.version}, "
        f"panel {' '.join(args.recipes)}"
        + (f", without {' '.join(args.without)}" if args.without else "")
    )
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def panel_models(args: argparse.Namespace, params: Params) -> tuple[dict[str, Path], Path | None]:
    """The panel's model of each recipe, and the reference clean-naive model (or None)."""
    if args.panel is not None:
        panel = {name: args.panel / name / "model.bin" for name in args.recipes}
        second = None
        if args.reference is not None and not args.no_reference:
            second = args.reference / "clean_naive" / "model.bin"
        return panel, second
    corpora = prepare(DataStore(args.data_dir), params.preprocess)
    panel = train_baseline_models(
        corpora.clean, corpora.raw, corpora.clean.parent / "panel-seed0", 0, recipes=args.recipes
    )
    if args.no_reference:
        return panel, None
    reference = train_baseline_models(
        corpora.clean,
        corpora.raw,
        corpora.clean.parent / "panel-seed1",
        1,
        recipes=("clean_naive",),
    )
    return panel, reference["clean_naive"]


def hat_of(kind: str, index: WordIndex, params: Params, args: argparse.Namespace) -> list[str]:
    """The hat of a kind: the tournament's (corpus words) or everyday words, of `args.part`."""
    if kind == "everyday":
        words = [w for w in read_hat(EVERYDAY_HAT) if w in index.ids]
        return build_hat(words, args.hat_size, args.seed, args.part)
    if args.part == "tune":
        eligible = [w for w, ok in zip(index.words, index.eligible, strict=True) if ok]
        return build_hat(eligible, args.hat_size, args.seed, "tune")
    evaluate = params.evaluate.model_copy(update={"hat_size": args.hat_size, "seed": args.seed})
    return heldout_hat(index, evaluate)


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    """One row per setting: hatbot, clean_naive_2 and their ratio for each kind of points."""
    print("| hat | hints | criteria | " + " | ".join(KEYS) + " |")
    print("|---|---:|---|" + "---:|" * len(KEYS))
    for setting, rows in results.items():
        cells = []
        for key in KEYS:
            a = rows["hatbot"][key]
            b = rows.get("clean_naive_2", {}).get(key)
            if key == "guessed_by_1":
                cells.append(f"{a:.0%}" + (f" / {b:.0%}" if b is not None else ""))
            elif key == "rejected" or not b:
                cells.append(f"{a:g}" + (f" / {b:g}" if b is not None else ""))
            else:
                cells.append(f"{a:g} / {b:g} = **{a / b:.2f}x**")
        print("| " + " | ".join(setting.split(" ")) + " | " + " | ".join(cells) + " |")


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
    new_challengers: Callable[[], list[Player]],
    panel: list[Player],
    hat: list[str],
    args: argparse.Namespace,
    lexicon: NltkLexicon,
) -> None:
    """Print each challenger's explaining and guessing points, role by role, for each
    number of hints: fresh challengers per mode, as a tournament has one, guessing first,
    as a bot guesses most rounds before its first explanation (and its estimate of the
    host's mode learns from the hints)."""
    g = args.n_guess
    for n in args.n_explain:
        fresh = {criteria: new_challengers() for criteria in args.criteria}
        print(f"\nhat: {len(hat)} words ({args.part}), seed {args.seed}, {n} hints, {g} guesses")
        names = [c.name for c in next(iter(fresh.values()))]
        print("| criteria | role | by | " + " | ".join(names) + " |")
        print("|---|---|---|" + "---:|" * len(names))
        for criteria, challengers in fresh.items():
            # Each panel bot explains every word once; all challengers guess the same hints.
            guessing = [Counter[tuple[str, int]]() for _ in challengers]
            for explainer in panel if "guessing" in args.roles else []:
                wins = asyncio.run(_points(explainer, challengers, hat, criteria, n, g, lexicon))
                for tally, c in zip(guessing, challengers, strict=True):
                    tally.update(
                        {(explainer.name, k): v for (name, k), v in wins.items() if name == c.name}
                    )
            explaining = [
                asyncio.run(_points(c, panel, hat, criteria, n, g, lexicon))
                for c in (challengers if "explaining" in args.roles else [])
            ]
            for role, tallies in (("explaining", explaining), ("guessing", guessing)):
                if role not in args.roles:
                    continue
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
