"""Before/after rows of the performance changes, from saved `benchmarks.run` results.

    python -m benchmarks.steps                       # print the table
    python -m benchmarks.steps --doc                 # and write it into docs/BENCHMARKS.md

Each change was measured by `benchmarks.run --variants '' --no-micro --startup-runs 1`
(`--variants workers-2` for the workers) with `--results benchmarks/results/<step>.json`,
on the code of that step (see STEPS); the starter kit runs in every one, so each row
carries its own reference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "BENCHMARKS.md"
START, END = "<!-- steps:start -->", "<!-- steps:end -->"

# (results file, hatbot variant or None for `hatbot serve`, what changed), in order.
STEPS = [
    ("step0-before", None, "before: `hatbot serve` at 9fb0f5c, artifact format 1"),
    ("step1-explanations", None, "1. explanations precomputed at export, looked up when served"),
    ("step2-middleware", None, "2. one pure ASGI middleware for metrics and the access log"),
    ("step3-workers", None, "3. `hatbot serve` (`--workers` default 1)"),
    ("step3-workers", "workers-2", "3. `hatbot serve --workers 2`, same run"),
    (
        "step4-shortlist",
        None,
        "4. guessing shortlist, remembered rounds, async dependencies, gc.freeze, asyncio loop",
    ),
    ("step4-shortlist", "workers-2", "4. the same, `hatbot serve --workers 2`, same run"),
]


def _row(what: str, r: dict[str, Any], variant: str | None) -> str:
    h = r["variants"][variant] if variant else r["bots"]["hatbot"]
    s = r["bots"]["starter_kit"]
    by_c = {x["connections"]: x for x in h["runs"]}
    kit = {x["connections"]: x for x in s["runs"]}
    mem = h["memory_after_load"]
    rps = " / ".join(f"{by_c[c]['rps']:.0f}" for c in sorted(by_c))
    p99 = " / ".join(f"{by_c[c]['p99_ms']:,.0f}" for c in sorted(by_c))
    cpu = by_c[max(by_c)]["server_cpu_ms_per_request"]
    top = max(by_c)
    ratio = by_c[top]["rps"] / kit[top]["rps"]
    return (
        f"| {what} | {rps} | {ratio:.2f}x | {p99} | {cpu:.2f} | "
        f"{h['floor']['rps']:,.0f} ({h['floor']['server_cpu_ms_per_request']:.2f}) | "
        f"{mem['VmRSS']:.0f} / {mem['Pss']:.0f} | {h['ready_s']:.2f} | "
        f"{r['models']['hatbot']['size_mb']:.1f} | {r['machine']['loadavg_at_start'][0]:.1f} |"
    )


def table(results: Path = HERE / "results") -> str:
    lines = [
        "| change | req/s c=1 / 16 / 64 | vs kit at c=64 | p99 ms c=1 / 16 / 64 | "
        "CPU ms/req (c=64) | floor req/s (CPU ms) | VmRSS / Pss MB | ready s | "
        "artifact MB | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, variant, what in STEPS:
        path = results / f"{name}.json"
        if path.is_file():
            found = json.loads(path.read_text())
            if variant is None or variant in found.get("variants", {}):
                lines.append(_row(what, found, variant))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--doc", action="store_true", help="write into docs/BENCHMARKS.md")
    args = parser.parse_args()
    text = table()
    print(text)
    if args.doc:
        doc = DOC.read_text()
        head, rest = doc.split(START, 1)
        doc = head + START + "\n" + text + "\n" + END + rest.split(END, 1)[1]
        DOC.write_text(doc)


if __name__ == "__main__":
    main()
