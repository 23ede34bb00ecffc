"""Evaluation: play the model in tournaments on a held-out hat and report its metrics.

The panel is what other teams field: one baseline player per public recipe
(`hatbot.game.recipes`, docs/GAME.md "The field"), trained on the same corpus
independently of hatbot's own proxies. Every number is measured by the game engine
under the host's rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hatbot.game.hat import build_hat
from hatbot.game.players import Player, StrategyPlayer, recipe_player
from hatbot.game.recipes import RECIPES
from hatbot.game.rules import Lexicon
from hatbot.game.tournament import GameConfig, TournamentResult, play_tournament
from hatbot.index import WordIndex
from hatbot.pipeline.params import EvaluateParams, Params
from hatbot.store import ModelStore
from hatbot.strategy import Strategy


@dataclass(frozen=True)
class Panel:
    """The baseline models hatbot is measured against: {recipe name: model.bin}."""

    models: dict[str, Path]

    def players(self) -> list[Player]:
        return [recipe_player(name, RECIPES[name], m) for name, m in self.models.items()]


def heldout_hat(index: WordIndex, params: EvaluateParams) -> list[str]:
    eligible = [w for w, ok in zip(index.words, index.eligible, strict=True) if ok]
    return build_hat(eligible, params.hat_size, params.seed, "heldout", params.heldout_share)


def summarise(result: TournamentResult, player: str, prefix: str) -> dict[str, float]:
    """One player's row of a tournament as flat metrics, points per hat word."""
    row = next(r for r in result.leaderboard() if r.name == player)
    words = max(1, len(result.hat))
    metrics = {
        f"{prefix}_total": row.total / words,
        f"{prefix}_explaining": row.explaining / words,
        f"{prefix}_guessing": row.guessing / words,
        f"{prefix}_rejected": float(row.rejected),
        f"{prefix}_failures": float(row.failures),
    }
    for k, rate in row.guess_rates.items():
        metrics[f"{prefix}_guess_rate_{k}"] = rate
    return metrics


async def _play(
    players: Sequence[Player], hat: list[str], config: GameConfig, lexicon: Lexicon
) -> TournamentResult:
    return await play_tournament(players, hat, config, lexicon, progress=True)


def evaluate(
    index: WordIndex,
    panel: Panel,
    params: EvaluateParams,
    lexicon: Lexicon,
    name: str = "hatbot",
) -> dict[str, Any]:
    """Metrics of the model: against the panel and in self-play, for every criterion.

    `score_vs_panel` (hatbot's points per hat word against the panel, averaged
    over the criteria) is what promotion compares.
    """
    hat = heldout_hat(index, params)
    metrics: dict[str, Any] = {"hat_size": len(hat)}
    for criteria in params.criteria:
        # A fresh strategy per mode, as a tournament plays one: its estimates of the hat's
        # kind and the host's mode start empty (hatbot.host_mode).
        strategy = Strategy(index)
        config = GameConfig(params.n_explain, params.n_guess, criteria, params.seed)
        players = [*panel.players(), StrategyPlayer(name, strategy)]
        result = asyncio.run(_play(players, hat, config, lexicon))
        metrics |= summarise(result, name, f"{criteria}_panel")
        for baseline in panel.models:
            metrics |= summarise(result, baseline, f"{criteria}_panel_{baseline}")
        selfplay = [StrategyPlayer(f"{name}_a", strategy), StrategyPlayer(f"{name}_b", strategy)]
        result = asyncio.run(_play(selfplay, hat, config, lexicon))
        metrics |= summarise(result, f"{name}_a", f"{criteria}_selfplay")
    metrics["score_vs_panel"] = sum(metrics[f"{c}_panel_total"] for c in params.criteria) / len(
        params.criteria
    )
    return metrics


def _builtin_player(
    spec: str, model: Callable[[str, int], Path], panel_seed: int, store: ModelStore
) -> Player:
    """`KIND` or `NAME=KIND[:ARG]`: hatbot (ARG a model version, default production), or
    a recipe (`hatbot.game.recipes`; ARG the seed of an independently trained model)."""
    name, _, kind = spec.partition("=")
    kind, _, arg = (kind or name).partition(":")
    if kind == "hatbot":
        folder = store.path(arg) if arg else store.resolve("production")
        if folder is None:
            raise FileNotFoundError(f"no production model in {store.root}")
        return StrategyPlayer(name, Strategy(WordIndex(folder)))
    if kind in RECIPES:
        return recipe_player(name, RECIPES[kind], model(kind, int(arg) if arg else panel_seed))
    raise ValueError(f"unknown built-in player {spec!r}: use hatbot or one of {', '.join(RECIPES)}")


def run_tournament(
    bots: list[str],
    builtins: list[str],
    hat_file: Path | None,
    hat_size: int,
    part: str,
    criteria: Literal["soft", "hard"],
    n_explain: int,
    n_guess: int,
    seed: int,
    panel_seed: int,
    json_out: Path | None,
    chart: Path | None,
    params: Params,
    paths: Any,
) -> TournamentResult:
    """The `hatbot tournament` command: build the players and the hat, play, report."""
    from hatbot.game.hat import read_hat
    from hatbot.game.lexicon import NltkLexicon
    from hatbot.game.players import HttpPlayer
    from hatbot.game.report import format_leaderboard, save_chart
    from hatbot.pipeline.corpus import DataStore, prepare
    from hatbot.pipeline.panel import train_baseline_models

    store = ModelStore(paths.models)

    def model(kind: str, seed: int) -> Path:
        """The recipe's model of the panel of `seed` (trained when missing)."""
        corpora = prepare(DataStore(paths.data), params.preprocess)
        folder = corpora.clean.parent / f"panel-seed{seed}"
        args = params.evaluate.panel_args or None
        models = train_baseline_models(
            corpora.clean, corpora.raw, folder, seed, args, recipes=(kind,)
        )
        return models[kind]

    players: list[Player] = [_builtin_player(b, model, panel_seed, store) for b in builtins]
    for spec in bots:
        name, sep, url = spec.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise ValueError(f"--bot takes NAME=URL, not {spec!r}")
        players.append(HttpPlayer(name, url.rstrip("/")))
    if hat_file is not None:
        hat = read_hat(hat_file)
    else:
        folder = store.resolve("production")
        if folder is None:
            raise FileNotFoundError(f"a corpus hat needs a production model in {store.root}")
        index = WordIndex(folder)
        eligible = [w for w, ok in zip(index.words, index.eligible, strict=True) if ok]
        hat = build_hat(eligible, hat_size, seed, part)  # type: ignore[arg-type]
    config = GameConfig(n_explain, n_guess, criteria, seed)
    result = asyncio.run(_play(players, hat, config, NltkLexicon()))
    print(format_leaderboard(result.leaderboard()))
    if json_out is not None:
        result.write_json(json_out)
    if chart is not None:
        save_chart(result, chart)
    return result
