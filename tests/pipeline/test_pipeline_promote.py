"""Promotion: the pure decision rule, and real model stores with pointers that move or not."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hatbot.pipeline.params import PromoteParams
from hatbot.pipeline.promote import decide, promote, sanity_problems
from hatbot.store import ModelStore

GOOD = {
    "score_vs_panel": 2.0,
    "hat_size": 40,
    "soft_panel_rejected": 0.0,
    "hard_panel_rejected": 0.0,
    "soft_selfplay_rejected": 0.0,
    "soft_panel_failures": 0.0,
}


def _m(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


@pytest.mark.parametrize(
    ("metrics", "production", "production_metrics", "params", "promoted", "reason"),
    [
        (_m(), None, None, PromoteParams(), True, "no production model yet"),
        (_m(), "old", _m(score_vs_panel=1.5), PromoteParams(), True, "2.0000 >= production's 1.5"),
        (_m(), "old", _m(score_vs_panel=2.0), PromoteParams(), True, ">= production's 2.0000"),
        (_m(), "old", _m(score_vs_panel=2.5), PromoteParams(), False, "< production's 2.5000"),
        (
            _m(),
            "old",
            _m(score_vs_panel=1.95),
            PromoteParams(min_delta=0.1),
            False,
            "< production's 1.9500 + 0.1",
        ),
        (_m(), "old", _m(score_vs_panel=2.05), PromoteParams(min_delta=-0.1), True, "+ -0.1"),
        (_m(), "old", {}, PromoteParams(), True, "production's -inf"),
        (
            _m(soft_panel_total=0.5, score_vs_panel=9.0),
            "old",
            _m(soft_panel_total=0.7),
            PromoteParams(metric="soft_panel_total"),
            False,
            "soft_panel_total 0.5000 <",
        ),
        (_m(), "cand", _m(), PromoteParams(), False, "already in production"),
        # Sanity checks refuse whatever the score.
        (
            _m(soft_panel_rejected=2.0),
            None,
            None,
            PromoteParams(),
            False,
            "rejected 2 of its explanation words",
        ),
        (_m(hard_selfplay_rejected=1.0), None, None, PromoteParams(), False, "rejected 1"),
        (_m(soft_panel_failures=3.0), None, None, PromoteParams(), False, "failed 3 calls"),
        (_m(score_vs_panel=math.nan), None, None, PromoteParams(), False, "not a number"),
        (_m(score_vs_panel=math.inf), None, None, PromoteParams(), False, "not a number"),
        (
            {k: v for k, v in GOOD.items() if k != "score_vs_panel"},
            None,
            None,
            PromoteParams(),
            False,
            "missing",
        ),
        (_m(score_vs_panel=0.0), None, None, PromoteParams(), False, "is not above 0"),
        (
            _m(score_vs_panel=1.0),
            None,
            None,
            PromoteParams(min_score=1.5),
            False,
            "is not above 1.5",
        ),
        (_m(hat_size=0), None, None, PromoteParams(), False, "hat of at least one word"),
        ({**_m(), "hat_size": None}, None, None, PromoteParams(), False, "hat of at least"),
        # The baselines' rejected words are not the candidate's problem.
        (
            _m(soft_panel_starter_kit_rejected=12.0, hard_panel_clean_naive_failures=1.0),
            None,
            None,
            PromoteParams(),
            True,
            "no production model yet",
        ),
    ],
)
def test_decide(
    metrics: dict[str, Any],
    production: str | None,
    production_metrics: dict[str, Any] | None,
    params: PromoteParams,
    promoted: bool,
    reason: str,
) -> None:
    decision = decide("cand", metrics, production, production_metrics, params)
    assert decision.promoted is promoted
    assert decision.reason.startswith("promoted: " if promoted else "refused: ")
    assert reason in decision.reason
    assert decision.as_dict() == {
        "promoted": promoted,
        "reason": decision.reason,
        "candidate": "cand",
        "production": production,
    }


def test_sanity_problems_lists_every_problem() -> None:
    problems = sanity_problems(
        _m(soft_panel_rejected=1.0, soft_panel_failures=2.0, score_vs_panel=-1.0), "score_vs_panel"
    )
    assert len(problems) == 3


def _store_with_two_models(tiny_store: Path, root: Path) -> tuple[ModelStore, str, str]:
    """A copy of the tiny store plus a second version (same files, another name)."""
    shutil.copytree(tiny_store, root)
    store = ModelStore(root)
    production = store.read("production")
    assert production is not None
    shutil.copytree(store.path(production), store.path("candidate1"))
    store.point("staging", "candidate1")
    return store, production, "candidate1"


def _set_metrics(store: ModelStore, version: str, metrics: dict[str, Any]) -> None:
    path = store.path(version) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["metrics"] = metrics
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("candidate", "production", "promoted"),
    [
        (_m(score_vs_panel=2.5), _m(), True),
        (_m(score_vs_panel=1.5), _m(), False),
        (_m(soft_panel_rejected=1.0, score_vs_panel=9.0), _m(), False),
    ],
)
def test_promote_moves_the_production_pointer_only_when_the_candidate_wins(
    tiny_store: Path,
    tmp_path: Path,
    candidate: dict[str, Any],
    production: dict[str, Any],
    promoted: bool,
    state: Callable[[Path], dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, old, new = _store_with_two_models(tiny_store, tmp_path / "models")
    _set_metrics(store, new, candidate)
    _set_metrics(store, old, production)
    before = state(store.root)
    with caplog.at_level("INFO", logger="hatbot.promote"):
        decision = promote(store, PromoteParams())
    assert decision.promoted is promoted
    assert store.read("production") == (new if promoted else old)
    assert store.read("staging") == new
    assert f"promotion of {new}: {decision.reason}" in caplog.text
    after = state(store.root)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == ({"production"} if promoted else set())


def test_promote_without_staging_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no staging model"):
        promote(ModelStore(tmp_path / "models"), PromoteParams())


def test_cli_promote_compares_on_the_same_evaluation_setup(
    prod_paths: Any,
    tiny_eval_params: Any,
    tiny_params_file: Path,
    state: Callable[[Path], dict[str, str]],
) -> None:
    """`hatbot promote` on a real store: production is scored on the candidate's setup
    (here both already are, so no tournament runs), and the decision is printed."""
    from typer.testing import CliRunner

    from hatbot.cli import app
    from hatbot.pipeline.corpus import DataStore, prepare
    from hatbot.pipeline.run import evaluation_key

    store = ModelStore(prod_paths.models)
    old = store.read("production")
    assert old is not None
    shutil.copytree(store.path(old), store.path("candidate1"))
    store.point("staging", "candidate1")
    data = DataStore(prod_paths.data)
    key = evaluation_key(
        tiny_eval_params, prepare(data, tiny_eval_params.preprocess), data.snapshot().id
    )
    # Production's manifest says it scored 9 elsewhere; on this setup it scores 1.
    _set_metrics(store, old, _m(score_vs_panel=1.0, evaluation_key=key))
    _set_metrics(store, "candidate1", _m(score_vs_panel=1.2, evaluation_key=key))
    args = [
        "promote",
        "--params",
        str(tiny_params_file),
        "--data-dir",
        str(prod_paths.data),
        "--models-dir",
        str(prod_paths.models),
    ]
    result = CliRunner().invoke(app, [*args, "--set", "promote.min_delta=0.5"])
    assert result.exit_code == 0, result.output
    assert "refused: score_vs_panel 1.2000 < production's 1.0000 + 0.5" in result.output
    assert store.read("production") == old
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "promoted: score_vs_panel 1.2000 >= production's 1.0000 + 0" in result.output
    assert store.read("production") == "candidate1"
    before = state(store.root)
    result = CliRunner().invoke(app, args)
    assert "refused: the candidate is already in production" in result.output
    assert state(store.root) == before
