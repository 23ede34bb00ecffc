"""Time a newcomer's first run: a fresh clone, the README's run command, a client polling.

    python benchmarks/first_run.py --corpus ../shared/corpus/20news-19997.tar.gz \
        [--until first-answer|full-model] [--out benchmarks/results/first-run.json]

Clones this repository into a scratch folder, runs `bash scripts/run` there (setup
included) on a free port with `HATBOT_CORPUS` set, and records, from the moment the
command is typed: when the port first answers (`/healthz`), when `/explain` and `/guess`
first answer correctly (the quick model), and, with `--until full-model`, when the full
model serves. It also keeps every `/readyz` stage seen, the load average at the start and
end, and the pipeline's own step times from the served models' manifests. The table goes
to stdout and, as JSON, to `--out`. Stops the bot (and its trainer) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(url: str, started: float, until: str, timeout: float) -> dict[str, Any]:
    """Poll the bot; return the moments (seconds since `started`) of each milestone."""
    seen: dict[str, Any] = {"stages": []}
    client = httpx.Client(timeout=2.0)
    quick_version = None
    while time.monotonic() - started < timeout:
        now = round(time.monotonic() - started, 1)
        try:
            health = client.get(f"{url}/healthz")
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        seen.setdefault("listening_s", now)
        ready = client.get(f"{url}/readyz")
        if ready.status_code == 503:
            body = ready.json()
            stage = (body.get("model"), body.get("stage"))
            if body.get("stage") and (not seen["stages"] or seen["stages"][-1][1:] != stage):
                seen["stages"].append((now, *stage))
        elif health.status_code == 200:
            explain = client.get(f"{url}/explain", params={"word": "space", "n_words": 5})
            guess = client.get(f"{url}/guess", params={"words": ["nasa", "orbit"], "n_words": 5})
            good = explain.status_code == guess.status_code == 200
            if good and len(explain.json()) == 5 and len(guess.json()) == 5:
                version = client.get(f"{url}/v1/model").json().get("version")
                if "first_answer_s" not in seen:
                    seen["first_answer_s"], quick_version = now, version
                    seen["first_version"] = version
                    if until == "first-answer":
                        return seen
                elif version != quick_version:
                    seen["full_model_s"], seen["full_version"] = now, version
                    return seen
        time.sleep(1.0)
    seen["timed_out"] = True
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--until", choices=["first-answer", "full-model"], default="full-model")
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/first-run.json")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="hatbot-first-run-"))
    clone = scratch / "hatbot"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    port = free_port()
    load_before = os.getloadavg()
    env = {**os.environ, "HATBOT_CORPUS": str(args.corpus.resolve()), "HATBOT_PORT": str(port)}
    env.pop("VIRTUAL_ENV", None)
    log = (scratch / "run.log").open("w")
    started = time.monotonic()
    process = subprocess.Popen(
        ["bash", "scripts/run", "--host", "127.0.0.1"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        seen = poll(f"http://127.0.0.1:{port}", started, args.until, args.timeout)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    seen["load_average_start"] = [round(x, 2) for x in load_before]
    seen["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    seen["cpu_count"] = os.cpu_count()
    seen["timings"] = {}
    for key in ("first_version", "full_version"):
        version = seen.get(key)
        manifest = clone / "models" / str(version) / "manifest.json"
        if version and manifest.is_file():
            seen["timings"][version] = json.loads(manifest.read_text()).get("timings", {})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(seen, indent=2) + "\n")
    print("| milestone | seconds after `bash scripts/run` |")
    print("|---|---:|")
    for key in ("listening_s", "first_answer_s", "full_model_s"):
        print(f"| {key.removesuffix('_s').replace('_', ' ')} | {seen.get(key, '-')} |")
    for moment, model, stage in seen["stages"]:
        print(f"| readyz: {model} model, stage {stage} | {moment} |")
    print(f"load average {seen['load_average_start']} -> {seen['load_average_end']}")
    shutil.rmtree(scratch, ignore_errors=True)
    if seen.get("timed_out"):
        sys.exit("timed out")


if __name__ == "__main__":
    main()
