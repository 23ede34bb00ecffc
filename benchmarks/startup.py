"""Where hatbot's start-up time goes, phase by phase, in a fresh interpreter.

    python -m benchmarks.startup --artifact models/<version>

Prints JSON: seconds to import the service (FastAPI app, uvicorn, NumPy...),
to load the artifact with checksum verification (what the service does) and
without, to build the Strategy, and for the warm-up explain + guess the
service runs before it reports ready. The interpreter's own start is measured
by the caller (`python -c pass`).
"""

from __future__ import annotations

import time

_t0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", type=Path, required=True)
    args = parser.parse_args()
    out: dict[str, float] = {}
    t = time.perf_counter()
    import uvicorn  # noqa: F401

    from hatbot.app import create_app  # noqa: F401
    from hatbot.index import WordIndex
    from hatbot.strategy import Strategy

    out["import_s"] = time.perf_counter() - t
    t = time.perf_counter()
    WordIndex(args.artifact, verify=False)
    out["load_without_checksums_s"] = time.perf_counter() - t
    t = time.perf_counter()
    index = WordIndex(args.artifact)
    out["load_with_checksums_s"] = time.perf_counter() - t
    t = time.perf_counter()
    strategy = Strategy(index)
    out["strategy_s"] = time.perf_counter() - t
    t = time.perf_counter()
    probe = index.words[min(len(index) - 1, 100)]
    strategy.guess(strategy.explain(probe, 5)[:2] or [probe], 5)
    out["warmup_s"] = time.perf_counter() - t
    out["total_in_process_s"] = time.perf_counter() - _t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
