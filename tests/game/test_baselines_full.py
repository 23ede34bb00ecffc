"""The baseline panel with the real recipe: library defaults on the full corpus (slow)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hatbot.game.hat import build_hat
from hatbot.game.players import (
    CleanNaivePlayer,
    Player,
    StarterKitPlayer,
    train_baseline_models,
)
from hatbot.game.report import format_leaderboard
from hatbot.game.tournament import GameConfig, play_tournament


@pytest.mark.slow
def test_baseline_panel_plays_a_heldout_hat_on_the_full_corpus(
    corpus_archive: Path, lexicon: Any, tmp_path: Path
) -> None:
    from hatbot.pipeline.corpus import DataStore, hat_vocabulary, prepare
    from hatbot.pipeline.params import PreprocessParams

    store = DataStore(tmp_path / "data")
    store.fetch(str(corpus_archive))
    corpora = prepare(store, PreprocessParams())
    models = train_baseline_models(corpora.clean, corpora.raw, tmp_path / "baselines", seed=0)
    eligible = hat_vocabulary(corpora.clean, lexicon.lemmatize)
    hat = build_hat(eligible, 30, seed=0, part="heldout")
    players: list[Player] = [
        StarterKitPlayer("starter_kit", models["starter_kit"]),
        CleanNaivePlayer("clean_naive", models["clean_naive"]),
    ]
    for criteria in ("soft", "hard"):
        config = GameConfig(criteria=criteria, seed=0)
        result = asyncio.run(play_tournament(players, hat, config, lexicon))
        rows = {row.name: row for row in result.leaderboard()}
        print(f"\n{criteria}:\n{format_leaderboard(result.leaderboard())}")
        assert len(result.games) == len(hat)
        assert all(row.failures == 0 and row.calls > len(hat) // 2 for row in rows.values())
        # Subword neighbours are mostly spellings of the word itself: the host deletes them.
        assert rows["starter_kit"].rejected > len(hat)
        # In process, fastText answers far inside the host's 1 s.
        assert all(row.p95_seconds is not None and row.p95_seconds < 0.5 for row in rows.values())
