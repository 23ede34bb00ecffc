"""Micro-benchmark of the index alone: explain and guess in-process, and the memory-bandwidth bound.

    python -m benchmarks.micro --artifact models/<version> --calls calls.json [--json out.json]

* Queries per second of `Strategy.explain` and `Strategy.guess` over the loaded
  `WordIndex`, on the same calls the HTTP benchmark sends (no HTTP, no JSON).
* Bytes of vectors each query reads: every matrix product touching an index
  matrix is counted (a counting ndarray subclass, in a separate untimed pass).
* Memory bandwidth: a numpy copy of a 256 MB array (bytes read + bytes written
  per second), and a matrix-vector product streaming a 256 MB matrix. The
  bound per query is bytes read / bandwidth; the measured time over that bound
  says how far from the limit the index is.
* Guesses in host order (each call reuses the remembered rounds of the shorter
  prefixes) and from scratch (every prefix scored), and how many rounds the
  guesser's shortlist answers as scoring every word would; guesses for a host of
  either mode, a soft one and a hard one (`guess_by_mode`).
* Kernels behind the recommendations: one float32 product over one space, the
  same in float16, over the hint-eligible rows only, over all spaces side by
  side, over the principal-axes projection, and the strategy's candidate sets' sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.workload import Call, load

MB = 1 << 20


class Counting(np.ndarray):
    """An index matrix that counts the bytes every matrix product reads from it."""

    read = 0
    products = 0

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if ufunc is np.matmul:
            for x in inputs:
                if isinstance(x, Counting):
                    Counting.read += x.nbytes
                    Counting.products += 1
        plain = [np.asarray(x) if isinstance(x, Counting) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(o) for o in kwargs["out"])
        return getattr(ufunc, method)(*plain, **kwargs)


def _run(strategy: Any, call: Call) -> list[str]:
    if call.kind == "explain":
        return strategy.explain(call.words[0], call.n_words)  # type: ignore[no-any-return]
    return strategy.guess(list(call.words), call.n_words)  # type: ignore[no-any-return]


def _best(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bandwidth(size_mb: int = 256, repeat: int = 5) -> dict[str, float]:
    """Copy bandwidth (read + write bytes per second) and streaming mat-vec read bandwidth."""
    n = size_mb * MB // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.empty_like(src)
    copy = _best(lambda: np.copyto(dst, src), repeat)
    matrix = src[: n - n % 100].reshape(-1, 100)
    vector = np.ones(100, dtype=np.float32)
    gemv = _best(lambda: matrix @ vector, repeat)
    return {
        "array_mb": size_mb,
        "copy_s": copy,
        "copy_gbps": 2 * src.nbytes / copy / 1e9,  # read + write
        "copy_read_gbps": src.nbytes / copy / 1e9,  # read side alone
        "gemv_stream_gbps": matrix.nbytes / gemv / 1e9,
    }


def kernels(strategy: Any, repeat: int = 50) -> dict[str, Any]:
    """The inner product the strategy repeats, in the forms the recommendations compare."""
    space = np.ascontiguousarray(strategy.guesser.spaces[0], dtype=np.float32)
    query = space[min(100, len(space) - 1)].copy()
    half = space.astype(np.float16)
    rows = np.flatnonzero(strategy.hintable)
    eligible = np.flatnonzero(strategy.index.eligible)
    sub = np.ascontiguousarray(space[rows])
    stacked = strategy.index.stacked  # all spaces side by side, one pass
    queries = np.concatenate([s[100] for s in strategy.guesser.spaces]).astype(np.float32)
    t32 = _best(lambda: space @ query, repeat)
    t16 = _best(lambda: half @ query.astype(np.float16), max(3, repeat // 10))
    tsub = _best(lambda: sub @ query, repeat)
    tall = _best(lambda: [s @ s[100] for s in strategy.guesser.spaces], repeat)
    tstack = _best(lambda: stacked @ queries, repeat)
    top = _best(lambda: strategy.index.top(space @ query, 60), repeat)
    axes_query = strategy.guesser.axes.T @ queries
    tproj = _best(lambda: strategy.guesser.projected @ axes_query, repeat)
    return {
        "vocabulary": len(space),
        "dim": int(space.shape[1]),
        "spaces": len(strategy.guesser.spaces),
        "space_mb": space.nbytes / MB,
        "hintable_rows": len(rows),
        "eligible_rows": len(eligible),
        "gemv_f32_ms": t32 * 1e3,
        "gemv_f32_gbps": space.nbytes / t32 / 1e9,
        "gemv_f16_ms": t16 * 1e3,
        "gemv_hintable_rows_ms": tsub * 1e3,
        "gemv_all_spaces_ms": tall * 1e3,
        "gemv_stacked_spaces_ms": tstack * 1e3,
        "gemv_top60_ms": top * 1e3,
        "projection_dims": int(strategy.guesser.projected.shape[1]),
        "projection_mb": strategy.guesser.projected.nbytes / MB,
        "gemv_projection_ms": tproj * 1e3,
    }


def shortlist_agreement(strategy: Any, calls: list[Call]) -> str:
    """How many rounds (guesses for one prefix of hints) equal scoring every word."""
    import hatbot.guesser

    hints = {tuple(c.words) for c in calls if c.kind == "guess"}
    longest = [h for h in hints if not any(len(o) > len(h) and o[: len(h)] == h for o in hints)]
    rounds = []
    for shortlist in (hatbot.guesser.SHORTLIST, 10**9):
        hatbot.guesser.SHORTLIST = shortlist
        strategy.guesser._rounds.cache_clear()
        rounds.append([r for h in sorted(longest) for r in strategy.guesser._rounds(h, 5)])
    strategy.guesser._rounds.cache_clear()
    same = sum(a == b for a, b in zip(*rounds, strict=True))
    return f"{same}/{len(rounds[0])}"


def measure(artifact: Path, calls: list[Call], passes: int = 2) -> dict[str, Any]:
    from hatbot.index import WordIndex
    from hatbot.strategy import Strategy

    started = time.perf_counter()
    index = WordIndex(artifact)
    strategy = Strategy(index)
    load_s = time.perf_counter() - started
    for call in calls[: min(len(calls), 22)]:
        _run(strategy, call)  # warm caches and code paths

    times: dict[str, list[float]] = {"explain": [], "guess": []}
    by_hints: dict[int, list[float]] = {}
    for _ in range(passes):
        strategy.guesser._rounds.cache_clear()  # each pass in host order, from no remembered rounds
        for call in calls:
            t = time.perf_counter()
            _run(strategy, call)
            dt = time.perf_counter() - t
            times[call.kind].append(dt)
            if call.kind == "guess":
                by_hints.setdefault(len(call.words), []).append(dt)

    # Guesses computed from scratch: the remembered rounds forgotten before every call, so
    # each guess scores every prefix of its hints (a host-order call scores only its last).
    fresh: list[float] = []
    for call in calls:
        if call.kind == "guess":
            strategy.guesser._rounds.cache_clear()
            t = time.perf_counter()
            _run(strategy, call)
            fresh.append(time.perf_counter() - t)

    # Guesses by the host's mode, as the guesser picks them once the mode is known (a soft
    # host's guesses cover several targets where they can: `Guesser._cover`), in host order.
    by_mode: dict[str, dict[str, float]] = {}
    for mode in (None, "soft", "hard"):
        strategy.guesser._rounds.cache_clear()
        spent: list[float] = []
        for call in calls:
            if call.kind == "guess":
                t = time.perf_counter()
                strategy.guesser.guess(list(call.words), call.n_words, mode=mode)
                spent.append(time.perf_counter() - t)
        by_mode[mode or "either"] = {
            "mean_ms": statistics.fmean(spent) * 1e3,
            "p50_ms": float(np.percentile(spent, 50)) * 1e3,
            "p99_ms": float(np.percentile(spent, 99)) * 1e3,
        }

    # Explanations as the service answers them: from the artifact's precomputed table.
    strategy.guesser._rounds.cache_clear()
    table: list[float] = []
    served: list[float] = []
    for call in calls:
        t = time.perf_counter()
        if call.kind == "explain":
            found = index.explanation(call.words[0], call.n_words)
            table.append(time.perf_counter() - t)
            if found is None:
                _run(strategy, call)
        else:
            _run(strategy, call)
        served.append(time.perf_counter() - t)

    # An untimed pass, in host order, that counts the bytes of index matrices every query
    # reads: the spaces (explain), the projection (first pass) and the rows gathered.
    guesser, explainer = strategy.guesser, strategy.explainer
    originals = (guesser.spaces, guesser.projected, index.stacked, explainer.spaces)
    guesser.spaces = [s.view(Counting) for s in originals[0]]
    guesser.projected = originals[1].view(Counting)
    index.stacked = originals[2].view(Counting)
    explainer.spaces = [s.view(Counting) for s in originals[3]]
    strategy.guesser._rounds.cache_clear()
    read: dict[str, list[int]] = {"explain": [], "guess": []}
    products: dict[str, list[int]] = {"explain": [], "guess": []}
    for call in calls:
        Counting.read = Counting.products = 0
        _run(strategy, call)
        read[call.kind].append(Counting.read)
        products[call.kind].append(Counting.products)
    (
        strategy.guesser.spaces,
        strategy.guesser.projected,
        index.stacked,
        strategy.explainer.spaces,
    ) = originals

    # Explanations are prefix-consistent (so one precomputed 10-list answers every n <= 10);
    # the shortlisted rounds equal scoring every word.
    explained = [c for c in calls if c.kind == "explain"]
    consistent = sum(
        strategy.explain(c.words[0], 5) == strategy.explain(c.words[0], 10)[:5] for c in explained
    )
    agreement = shortlist_agreement(strategy, calls)

    bw = bandwidth()
    result: dict[str, Any] = {
        "explain_prefix_consistent": f"{consistent}/{len(explained)}",
        "guess_fresh_mean_ms": statistics.fmean(fresh) * 1e3 if fresh else None,
        "guess_by_mode": by_mode,
        "shortlist_rounds_identical": agreement,
        "table_explain_us": statistics.fmean(table) * 1e6 if table else None,
        "table_explain_calls": len(explained),
        "table_explain_hits": sum(
            index.explanation(c.words[0], c.n_words) is not None
            for c in calls
            if c.kind == "explain"
        ),
        "mixed_qps_with_table": len(served) / sum(served),
        "artifact": str(artifact),
        "load_s": load_s,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "bandwidth": bw,
        "kernels": kernels(strategy),
        "calls": len(calls),
        "passes": passes,
    }
    total = sum(sum(v) for v in times.values())
    result["mixed_qps"] = sum(len(v) for v in times.values()) / total
    for kind, values in times.items():
        mean_read = statistics.fmean(read[kind])
        mean_s = statistics.fmean(values)
        bound_s = mean_read / (bw["copy_read_gbps"] * 1e9)
        result[kind] = {
            "count": len(values),
            "qps": len(values) / sum(values),
            "mean_ms": mean_s * 1e3,
            "p50_ms": float(np.percentile(values, 50)) * 1e3,
            "p99_ms": float(np.percentile(values, 99)) * 1e3,
            "max_ms": max(values) * 1e3,
            "bytes_read_mb": mean_read / MB,
            "matrix_products": statistics.fmean(products[kind]),
            "bound_ms": bound_s * 1e3,
            "bound_qps": 1 / bound_s,
            "fraction_of_bound": bound_s / mean_s,
        }
    result["guess_by_hints_ms"] = {
        str(k): statistics.fmean(v) * 1e3 for k, v in sorted(by_hints.items())
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="In-process benchmark of hatbot's index.")
    parser.add_argument("--artifact", type=Path, required=True, help="An artifact folder.")
    parser.add_argument("--calls", type=Path, required=True, help="calls.json from the workload.")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument(
        "--limit", type=int, default=1100, help="Use the first calls only (100 hat words)."
    )
    parser.add_argument("--json", type=Path, help="Write the results here.")
    args = parser.parse_args()
    result = measure(args.artifact, load(args.calls)[: args.limit], args.passes)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
