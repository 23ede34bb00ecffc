"""Promotion: a staged model replaces production only if it passes sanity checks and scores
at least as well, measured on the same hat against the same panel."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from hatbot.pipeline.params import PromoteParams
from hatbot.store import ModelStore

log = logging.getLogger("hatbot.promote")


@dataclass(frozen=True)
class Decision:
    """Whether the candidate went to production, and why."""

    promoted: bool
    reason: str
    candidate: str
    production: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "promoted": self.promoted,
            "reason": self.reason,
            "candidate": self.candidate,
            "production": self.production,
        }


def sanity_problems(metrics: dict[str, Any], metric: str, min_score: float = 0.0) -> list[str]:
    """What disqualifies a model whatever its score."""
    problems = []
    value = metrics.get(metric)
    if not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"its {metric} is missing or not a number")
    elif value <= min_score:
        problems.append(f"its {metric} {value:.4f} is not above {min_score:g}")
    hat_size = metrics.get("hat_size")
    if not isinstance(hat_size, int | float) or hat_size < 1:
        problems.append("it was not evaluated on a hat of at least one word")
    for key, count in sorted(metrics.items()):
        if key.endswith(("_panel_rejected", "_selfplay_rejected")) and count:
            problems.append(f"the host rejected {count:g} of its explanation words ({key})")
        if key.endswith(("_panel_failures", "_selfplay_failures")) and count:
            problems.append(f"it failed {count:g} calls ({key})")
    return problems


def decide(
    candidate: str,
    metrics: dict[str, Any],
    production: str | None,
    production_metrics: dict[str, Any] | None,
    params: PromoteParams,
) -> Decision:
    """The promotion rule; pure, so it is tested on its own."""
    problems = sanity_problems(metrics, params.metric, params.min_score)
    if problems:
        return Decision(False, "refused: " + "; ".join(problems), candidate, production)
    new = float(metrics[params.metric])
    if production is None or production_metrics is None:
        return Decision(
            True,
            f"promoted: no production model yet ({params.metric} {new:.4f})",
            candidate,
            production,
        )
    if production == candidate:
        return Decision(
            False, "refused: the candidate is already in production", candidate, production
        )
    old = float(production_metrics.get(params.metric, float("-inf")))
    if new >= old + params.min_delta:
        return Decision(
            True,
            f"promoted: {params.metric} {new:.4f} >= production's {old:.4f} + {params.min_delta:g}",
            candidate,
            production,
        )
    return Decision(
        False,
        f"refused: {params.metric} {new:.4f} < production's {old:.4f} + {params.min_delta:g}",
        candidate,
        production,
    )


def manifest(store: ModelStore, version: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((store.path(version) / "manifest.json").read_text())
    return data


def promote(
    store: ModelStore,
    params: PromoteParams,
    production_metrics: dict[str, Any] | None = None,
    apply: bool = True,
) -> Decision:
    """Promote the staging model if it beats production; move the pointer atomically.

    `production_metrics` are production's metrics measured in this run on the
    candidate's hat and panel; without them, the production manifest's are used.
    With `apply` false the decision is only taken (`apply_decision` moves the pointer).
    """
    candidate = store.read("staging")
    if candidate is None:
        raise FileNotFoundError(f"no staging model in {store.root}: run `hatbot train` first")
    production = store.read("production")
    if production is not None and production_metrics is None:
        production_metrics = manifest(store, production).get("metrics", {})
    decision = decide(
        candidate,
        manifest(store, candidate).get("metrics", {}),
        production,
        production_metrics,
        params,
    )
    log.info("promotion of %s: %s", candidate, decision.reason)
    if apply:
        apply_decision(store, decision)
    return decision


def apply_decision(store: ModelStore, decision: Decision) -> None:
    """Point production at the candidate if the decision says so (one atomic rename)."""
    if decision.promoted:
        store.point("production", decision.candidate)
        log.info("production is now %s (was %s)", decision.candidate, decision.production)
