"""The explainer's cost: CPU time a word of `Strategy.explain`, and the kernel it repeats.

    python -m benchmarks.explainer --artifact models/<version> [--words 150] [--json out.json]
        [--set strategy.NAME=JSON ...]

* `Strategy.explain(word, 10)` over an even sample of the words the export's table holds
  (eligible and common), CPU milliseconds a word in this process with one BLAS thread, as
  the export's workers run it.
* The kernel: the k-th best competitor of every option (a row of option-by-competitor
  similarities), by k row maxima (what `SimulatedGuesser.scores_with_each_option` does)
  and by a partial sort of every row (`ndarray.partition`), on random matrices of the
  sizes the explainer meets; both must give the same values.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads: as the workers

import numpy as np

K = 5  # the guesses a simulated guesser makes (`strategy.simulated_guesses`)


def kth_by_partition(matrix: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    rows = matrix.copy()
    width = rows.shape[1]
    rows.partition(width - k, axis=1)
    kth: np.ndarray[Any, Any] = rows[:, width - k :].min(axis=1)
    return kth


def kth_by_row_maxima(matrix: np.ndarray[Any, Any], k: int) -> np.ndarray[Any, Any]:
    from hatbot.explainer import take_row_maxima

    kth: np.ndarray[Any, Any] = take_row_maxima(matrix.copy(), k)[:, k - 1]
    return kth


def kernel(shapes: list[tuple[int, int]], repeat: int = 20) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    results = []
    for options, competitors in shapes:
        matrix = rng.standard_normal((options, competitors)).astype(np.float32)
        assert np.array_equal(kth_by_partition(matrix, K), kth_by_row_maxima(matrix, K))
        times = {}
        for name, fn in (("partition", kth_by_partition), ("row_maxima", kth_by_row_maxima)):
            start = time.process_time()
            for _ in range(repeat):
                fn(matrix, K)
            times[name] = (time.process_time() - start) / repeat * 1e3
        results.append(
            {
                "options": options,
                "competitors": competitors,
                "partition_ms": round(times["partition"], 3),
                "row_maxima_ms": round(times["row_maxima"], 3),
                "ratio": round(times["partition"] / times["row_maxima"], 2),
            }
        )
    return results


def explain(artifact: Path, words: int, overrides: dict[str, Any]) -> dict[str, Any]:
    from hatbot.index import WordIndex
    from hatbot.strategy import Strategy
    from hatbot.strategy_params import StrategyParams

    index = WordIndex(artifact)
    named = StrategyParams.of_model(index.manifest).model_dump()
    strategy = Strategy(index, StrategyParams(**{**named, **overrides}))
    held = np.flatnonzero(index.eligible | index.common)
    sample = [index.words[i] for i in held[:: max(1, len(held) // words)][:words]]
    strategy.explain(sample[0], 10)  # warm-up
    start = time.process_time()
    for word in sample:
        strategy.explain(word, 10)
    seconds = time.process_time() - start
    return {
        "artifact": artifact.name,
        "words": len(sample),
        "spaces": len(strategy.explainer.spaces),
        "overrides": overrides,
        "cpu_ms_a_word": round(seconds / len(sample) * 1e3, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", type=Path, help="a model folder (models/<version>)")
    parser.add_argument("--words", type=int, default=150)
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a strategy parameter over the model's, e.g. strategy.competitor_neighbours=3",
    )
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name.removeprefix("strategy.")] = json.loads(value)
    result: dict[str, Any] = {
        "load_average": os.getloadavg(),
        "kernel": kernel([(300, 3000), (600, 6000)]),
    }
    if args.artifact:
        result["explain"] = explain(args.artifact, args.words, overrides)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
