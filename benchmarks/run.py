"""The benchmark: hatbot against the starter-kit bot, over loopback, driven by wrk.

    poetry run python -m benchmarks.run                     # build what is missing, measure
    poetry run python -m benchmarks.run --models-dir /tmp/hb/full/models \\
        --data-dir /tmp/hb/full/data                        # reuse a trained store

What it does, in order:

1. Models. hatbot: the `production` model of `--models-dir`; when there is none,
   `hatbot pipeline --no-track` trains one from `--source` into `--models-dir`
   and `--data-dir`. Starter kit: `--starter-bin`, else the `.bin` the pipeline's
   evaluation trained (`<data>/work/*/panel-seed0/starter_kit/model.bin`: fastText
   library defaults on the raw corpus), else one trained here the same way.
   Both must have the same dimension.
2. The workload (`benchmarks.workload`): explain + guess with 1..10 hints, the
   host's request shapes, same list for both bots, written for wrk.
3. The in-process micro-benchmark of the index (`benchmarks.micro`), in its own process.
4. Per bot: start it `--startup-runs` times and time process start -> first 200
   answer to an explain; keep the last one; a short warm-up; then wrk with
   `benchmarks/rotate.lua` at each `--connections` for `--duration` seconds;
   a run against the trivial route (framework floor); then VmRSS/VmHWM/Pss.
5. hatbot variants set from outside src/ (environment, uvicorn's CLI), measured the
   same way, for the before/after evidence.
6. Results: `--results` (default `benchmarks/results/latest.json`, every number) and,
   beside it, the generated report `latest.md` and plot `latest.png` (same stem).
   `--render FILE.json` writes the report and plot of a saved results file again
   without measuring. docs/BENCHMARKS.md is written by hand and links to them.

Load goes to 127.0.0.1 only; every run is bounded by `--duration`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import workload

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = REPO.parent / "shared" / "corpus" / "20news-19997.tar.gz"
WORK = HERE / ".work"
LUA = HERE / "rotate.lua"
RESULTS = HERE / "results" / "latest.json"
HOST = "127.0.0.1"
MB = 1 << 20

# The goals of the issue.
GOAL_THROUGHPUT_RATIO = 5.0
GOAL_P99_MS = 25.0
GOAL_MEMORY_RATIO = 5.0
GOAL_MEMORY_MB = 200.0
GOAL_READY_S = 2.0
GOAL_MAX_MS = 1000.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- models


def fasttext_header(path: Path) -> dict[str, Any]:
    """The training arguments stored at the head of a fastText `.bin` (no model load)."""
    with path.open("rb") as f:
        fields = struct.unpack("<14i", f.read(56))
    magic, version, dim, ws, epoch, min_count, neg, ngrams, _, model, bucket, minn, maxn, _ = fields
    if magic != 793712314:
        raise ValueError(f"{path} is not a fastText model")
    return {
        "version": version,
        "dim": dim,
        "ws": ws,
        "epoch": epoch,
        "minCount": min_count,
        "neg": neg,
        "wordNgrams": ngrams,
        "model": {1: "cbow", 2: "skipgram", 3: "supervised"}.get(model, str(model)),
        "bucket": bucket,
        "minn": minn,
        "maxn": maxn,
    }


def hatbot_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hatbot.cli", *args]


def ensure_hatbot_model(models: Path, data: Path, source: str) -> Path:
    from hatbot.store import ModelStore

    store = ModelStore(models)
    folder = store.resolve("production")
    if folder is None:
        log(f"no production model in {models}: running the pipeline (tens of minutes)")
        subprocess.run(
            hatbot_cmd(
                "pipeline",
                "--source",
                source,
                "--data-dir",
                str(data),
                "--models-dir",
                str(models),
                "--no-track",
            ),
            check=True,
            cwd=REPO,
        )
        folder = store.resolve("production")
        if folder is None:
            raise SystemExit(f"the pipeline promoted no production model in {models}")
    return folder


def ensure_starter_bin(explicit: Path | None, data: Path, source: str) -> Path:
    if explicit is not None:
        if not explicit.is_file():
            raise SystemExit(f"--starter-bin {explicit} does not exist")
        return explicit
    # Finished panel trainings only (done.json is written last), the newest first.
    cached = sorted(
        (
            b
            for b in data.glob("work/*/panel-seed0/starter_kit/model.bin")
            if (b.parent / "done.json").is_file()
        ),
        key=lambda b: b.stat().st_mtime,
        reverse=True,
    )
    if cached:
        return cached[0]
    own = WORK / "starter_kit" / "model.bin"
    if own.is_file() and (own.parent / "done.json").is_file():
        return own
    from hatbot.pipeline.corpus import DataStore, prepare
    from hatbot.pipeline.params import PreprocessParams
    from hatbot.pipeline.train import LIBRARY_DEFAULTS, Job, run_jobs

    store = DataStore(data)
    store.fetch(source)
    corpora = prepare(store, PreprocessParams())
    log(f"training the starter kit's model (fastText defaults) on {corpora.raw}")
    args = {**LIBRARY_DEFAULTS, "thread": max(1, min(2, os.cpu_count() or 1))}
    run_jobs([Job(corpus=corpora.raw, args=args, out=own.parent, keep_bin=True)], parallel=1)
    return own


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(pid: int) -> dict[str, float]:
    """Resident memory of a process tree in MB: VmRSS, VmHWM, RssAnon, RssFile, Pss (sums)."""
    pids = tree(pid)
    out = {"processes": float(len(pids))}
    for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
        out[key] = sum(status_kb(p, key) for p in pids) / 1024
    out["Pss"] = sum(pss_kb(p) for p in pids) / 1024
    return out


def cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


@dataclass
class Bot:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    probe: str
    floor: str  # the cheapest route: the framework's own overhead
    process: subprocess.Popen[bytes] | None = None
    log_file: Path | None = None
    started: float = 0.0
    ready: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 300.0) -> dict[str, float]:
        """Start the process; seconds from spawn to the first 200 answer to `probe`."""
        assert self.log_file is not None
        out = self.log_file.open("ab")
        self.started = time.perf_counter()
        command = [a.replace("{port}", str(self.port)) for a in self.command]
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **self.env},
            stdout=out,
            stderr=out,
            cwd=REPO,
            start_new_session=True,
        )
        out.close()
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}; see {self.log_file}"
                )
            sent = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url + self.probe, timeout=30) as reply:
                    body = reply.read()
                    if reply.status == 200 and body.startswith(b"["):
                        now = time.perf_counter()
                        self.ready = {"ready_s": now - self.started, "first_answer_s": now - sent}
                        return self.ready
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.01)
        raise TimeoutError(f"{self.name} gave no answer within {timeout} s")

    def stop(self) -> None:
        if self.process is None:
            return
        pgid = self.process.pid  # its own session: the group holds it and its workers only
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None


# ---------------------------------------------------------------- load


def wrk(
    url: str,
    paths: Path,
    connections: int,
    duration: float,
    threads: int,
    lists: bool = True,
    offset: int = 0,
) -> dict[str, Any]:
    """One wrk run from line `offset` of `paths`; `lists`: count replies that are not a JSON
    list as errors (the host would)."""
    cmd = [
        "wrk",
        "-t",
        str(max(1, min(threads, connections))),
        "-c",
        str(connections),
        "-d",
        f"{duration:g}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        url,
        "--",
        str(paths),
        "lists" if lists else "any",
        str(offset),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no results:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line[5:])
    seconds = raw["duration_us"] / 1e6
    errors = (
        sum(
            raw[k]
            for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
        )
        + raw["invalid"]
    )
    return {
        "connections": connections,
        "requests": raw["requests"],
        "seconds": seconds,
        "rps": raw["requests"] / seconds,
        "p50_ms": raw["p50_us"] / 1e3,
        "p90_ms": raw["p90_us"] / 1e3,
        "p95_ms": raw["p95_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "max_ms": raw["max_us"] / 1e3,
        "mean_ms": raw["mean_us"] / 1e3,
        "errors": errors,
        "timeouts": raw["timeouts"],
        "invalid": raw["invalid"],
    }


def drain(bot: Bot, timeout: float = 60.0) -> float:
    """Wait until the bot has worked off the requests a finished run left queued.

    wrk closes its connections when its time is up, but a server may still be
    computing answers nobody waits for; the next run must not queue behind them.
    Returns the seconds waited.
    """
    assert bot.process is not None
    started = time.perf_counter()
    last = cpu_seconds(bot.process.pid)
    while time.perf_counter() - started < timeout:
        time.sleep(0.25)
        now = cpu_seconds(bot.process.pid)
        if now - last < 0.02:  # under 8 % of a core: idle
            break
        last = now
    return time.perf_counter() - started


def measured_wrk(
    bot: Bot,
    paths: Path,
    connections: int,
    duration: float,
    threads: int,
    lists: bool = True,
    offset: int = 0,
) -> dict[str, Any]:
    """A wrk run plus the server's CPU time per request and the machine's load meanwhile."""
    assert bot.process is not None
    drained = drain(bot)
    cpu0, (busy0, total0) = cpu_seconds(bot.process.pid), machine_busy()
    result = wrk(bot.url, paths, connections, duration, threads, lists, offset)
    cpu1, (busy1, total1) = cpu_seconds(bot.process.pid), machine_busy()
    ncpu = os.cpu_count() or 1
    result["server_cpu_ms_per_request"] = (cpu1 - cpu0) * 1e3 / max(1, result["requests"])
    result["server_cpu_cores"] = (cpu1 - cpu0) / result["seconds"]
    result["machine_busy_cores"] = (busy1 - busy0) / max(1.0, total1 - total0) * ncpu
    result["loadavg_1m"] = os.getloadavg()[0]
    result["drained_before_s"] = drained
    return result


def bench_bot(
    bot: Bot,
    paths: Path,
    floor_paths: Path,
    args: argparse.Namespace,
    runs_dir: Path,
    variant: bool = False,
) -> dict[str, Any]:
    """Start-up times, wrk at every concurrency, the framework floor, memory.

    A variant is started once (the baseline `--startup-runs` times)."""
    bot.log_file = runs_dir / f"{bot.name}.log"
    starts = []
    repeats = 1 if variant else args.startup_runs
    for i in range(repeats):
        bot.port = free_port()
        ready = bot.start()
        log(
            f"{bot.name}: first answer {ready['ready_s']:.2f} s after spawn "
            f"(that answer took {ready['first_answer_s'] * 1e3:.0f} ms)"
        )
        starts.append(ready)
        if i < repeats - 1:
            bot.stop()
    assert bot.process is not None
    result: dict[str, Any] = {
        "command": " ".join(bot.command).replace(sys.executable, "python"),
        "env": bot.env,
        "startup": starts,
        "ready_s": statistics.median(s["ready_s"] for s in starts),
        "first_answer_ms": statistics.median(s["first_answer_s"] for s in starts) * 1e3,
        "memory_idle": memory(bot.process.pid),
    }
    try:
        # Each run starts where the previous one stopped: no request is replayed while the
        # server may still remember its answer (the list holds more distinct guess calls
        # than the rounds a hatbot process remembers).
        result["warmup"] = measured_wrk(bot, paths, 16, args.warmup, args.wrk_threads)
        sent = result["warmup"]["requests"]
        runs = []
        for c in args.connections:
            run = measured_wrk(bot, paths, c, args.duration, args.wrk_threads, offset=sent)
            sent += run["requests"]
            log(
                f"{bot.name} c={c}: {run['rps']:.0f} req/s, p50 {run['p50_ms']:.1f} ms, "
                f"p99 {run['p99_ms']:.1f} ms, max {run['max_ms']:.0f} ms, "
                f"errors {run['errors']}, machine busy {run['machine_busy_cores']:.2f} cores"
            )
            runs.append(run)
        result["runs"] = runs
        drain(bot)
        result["memory_after_load"] = memory(bot.process.pid)
        floor = measured_wrk(
            bot,
            floor_paths,
            max(args.connections),
            args.floor_duration,
            args.wrk_threads,
            lists=False,
        )
        result["floor"] = floor
        log(
            f"{bot.name} floor ({bot.floor}) c={floor['connections']}: {floor['rps']:.0f} req/s, "
            f"{floor['server_cpu_ms_per_request']:.2f} CPU ms/req"
        )
    finally:
        bot.stop()
    return result


# ---------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    caches = dict(re.findall(r"^(L[123][di]? cache):\s+(.+)$", lscpu, re.M))
    hypervisor = re.search(r"^Hypervisor vendor:\s+(.+)$", lscpu, re.M)
    family = re.search(r"^CPU family:\s+(\d+)", lscpu, re.M)
    model = re.search(r"^Model:\s+(\d+)", lscpu, re.M)
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    import numpy

    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    return {
        "git": git + (" (src/ has uncommitted changes)" if dirty else ""),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "cpu_family_model": "/".join(m.group(1) if m else "?" for m in (family, model)),
        "hypervisor": hypervisor.group(1) if hypervisor else None,
        "caches": caches,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "wrk": (wrk_version.stdout + wrk_version.stderr).split("\n")[0].strip(),
        "loadavg_at_start": os.getloadavg(),
    }


# ---------------------------------------------------------------- report


def _fmt(value: float, digits: int = 1) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(value: float) -> str:
    return f"{value:.1f}x" if value < 100 else f"{value:,.0f}x"


def goals(results: dict[str, Any], h: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's goals for one hatbot configuration `h`, against the starter kit."""
    s = results["bots"]["starter_kit"]
    top = max(r["connections"] for r in h["runs"])
    h64 = next(r for r in h["runs"] if r["connections"] == top)
    s64 = next(r for r in s["runs"] if r["connections"] == top)
    ratio = h64["rps"] / s64["rps"]
    mem = h["memory_after_load"]
    # Several processes share the memory-mapped vectors: Pss counts them once.
    h_mem = mem["VmRSS"] if mem["processes"] == 1 else mem["Pss"]
    h_peak = mem["VmHWM"] if mem["processes"] == 1 else mem["Pss"]
    s_mem = s["memory_after_load"]["VmRSS"]
    h_max = max([r["max_ms"] for r in h["runs"]] + [h["warmup"]["max_ms"]])
    h_err = sum(r["errors"] for r in h["runs"]) + h["warmup"]["errors"]
    return [
        {
            "goal": (
                f">= {GOAL_THROUGHPUT_RATIO:g}x the starter kit's throughput at {top} connections"
            ),
            "value": f"{ratio:.2f}x ({h64['rps']:,.0f} vs {s64['rps']:,.0f} req/s)",
            "met": ratio >= GOAL_THROUGHPUT_RATIO,
        },
        {
            "goal": f"p99 at {top} connections < {GOAL_P99_MS:g} ms",
            "value": f"{h64['p99_ms']:,.0f} ms",
            "met": h64["p99_ms"] < GOAL_P99_MS,
        },
        {
            "goal": f"resident memory < 1/{GOAL_MEMORY_RATIO:g} of the starter kit's",
            "value": f"1/{s_mem / h_mem:.1f} ({h_mem:.0f} vs {s_mem:.0f} MB)",
            "met": h_mem * GOAL_MEMORY_RATIO < s_mem,
        },
        {
            "goal": f"resident memory < {GOAL_MEMORY_MB:g} MB",
            "value": f"{h_mem:.0f} MB" + ("" if mem["processes"] == 1 else " (Pss, all processes)"),
            "met": h_mem < GOAL_MEMORY_MB and h_peak < GOAL_MEMORY_MB,
        },
        {
            "goal": f"ready < {GOAL_READY_S:g} s after the artifact is present",
            "value": f"{h['ready_s']:.2f} s",
            "met": h["ready_s"] < GOAL_READY_S,
        },
        {
            "goal": "no request over 1 s at any load applied",
            "value": f"max {h_max:,.0f} ms, {h_err} errors",
            "met": h_max < GOAL_MAX_MS and h_err == 0,
        },
    ]


def table(results: dict[str, Any]) -> str:
    h, s = results["bots"]["hatbot"], results["bots"]["starter_kit"]
    m = results["machine"]
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, sv: str, hv: str, ratio: str) -> None:
        rows.append((label, sv, hv, ratio))

    sm, hm = results["models"]["starter_kit"], results["models"]["hatbot"]
    row(
        "model",
        f"fastText {sm['model']} .bin, dim {sm['dim']}, "
        f"subwords {sm['minn']}-{sm['maxn']}, {sm['bucket']:,} buckets",
        f"artifact {hm['version']}, dim {hm['dim']}, {hm['words']:,} words x {hm['spaces']} spaces",
        "",
    )
    row(
        "model size on disk (MB)",
        _fmt(sm["size_mb"]),
        _fmt(hm["size_mb"]),
        f"{_ratio(sm['size_mb'] / hm['size_mb'])} smaller",
    )
    row(
        f"start -> first answer (s, median of {len(h['startup'])})",
        f"{s['ready_s']:.2f}",
        f"{h['ready_s']:.2f}",
        f"{_ratio(s['ready_s'] / h['ready_s'])} sooner",
    )
    row("first answer itself (ms)", _fmt(s["first_answer_ms"]), _fmt(h["first_answer_ms"]), "")
    for sr, hr in zip(s["runs"], h["runs"], strict=True):
        c = sr["connections"]
        row(
            f"**c={c}** throughput (req/s)",
            _fmt(sr["rps"]),
            _fmt(hr["rps"]),
            f"**{_ratio(hr['rps'] / sr['rps'])}**",
        )
        row(
            f"c={c} latency p50 / p95 / p99 (ms)",
            f"{_fmt(sr['p50_ms'])} / {_fmt(sr['p95_ms'])} / {_fmt(sr['p99_ms'])}",
            f"{_fmt(hr['p50_ms'])} / {_fmt(hr['p95_ms'])} / {_fmt(hr['p99_ms'])}",
            f"p99 {_ratio(sr['p99_ms'] / hr['p99_ms'])} lower",
        )
        row(
            f"c={c} max latency (ms), errors",
            f"{_fmt(sr['max_ms'])}, {sr['errors']}",
            f"{_fmt(hr['max_ms'])}, {hr['errors']}",
            "",
        )
        row(
            f"c={c} server CPU per request (ms)",
            f"{sr['server_cpu_ms_per_request']:.2f}",
            f"{hr['server_cpu_ms_per_request']:.2f}",
            _ratio(sr["server_cpu_ms_per_request"] / hr["server_cpu_ms_per_request"]) + " less",
        )
    sa, ha = s["memory_after_load"], h["memory_after_load"]
    row(
        "VmRSS after load (MB)",
        _fmt(sa["VmRSS"]),
        _fmt(ha["VmRSS"]),
        f"**{_ratio(sa['VmRSS'] / ha['VmRSS'])} smaller**",
    )
    row(
        "VmHWM peak (MB)",
        _fmt(sa["VmHWM"]),
        _fmt(ha["VmHWM"]),
        f"{_ratio(sa['VmHWM'] / ha['VmHWM'])} smaller",
    )
    row(
        "of which anonymous / file-backed (MB)",
        f"{_fmt(sa['RssAnon'])} / {_fmt(sa['RssFile'])}",
        f"{_fmt(ha['RssAnon'])} / {_fmt(ha['RssFile'])}",
        "",
    )
    sf, hf = s["floor"], h["floor"]
    row(
        f"framework floor: trivial route, c={hf['connections']} (req/s)",
        f"{_fmt(sf['rps'])} (`{results['floor_routes']['starter_kit']}`)",
        f"{_fmt(hf['rps'])} (`{results['floor_routes']['hatbot']}`)",
        _ratio(hf["rps"] / sf["rps"]),
    )
    lines = [
        f"Machine: {m['nproc']} vCPU {m['cpu']} (family/model {m['cpu_family_model']}, "
        f"{m['hypervisor'] or 'bare metal'}; L2 {m['caches'].get('L2 cache', '?')}, "
        f"L3 {m['caches'].get('L3 cache', '?')}), {m['memory_gb']} GB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}, NumPy {m['numpy']}, {m['wrk']}. hatbot at {m['git']}. "
        f"Load average when the run started: {m['loadavg_at_start'][0]:.2f}. "
        f"Run {results['date']}, wrk {results['settings']['duration']:g} s per level, "
        f"{results['settings']['wrk_threads']} wrk thread(s), keep-alive connections.",
        "",
        "| metric | starter kit | hatbot | hatbot vs starter kit |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    configs = {"`hatbot serve`": h} | {
        f"{name}": v for name, v in results.get("variants", {}).items()
    }
    evaluated = {name: goals(results, c) for name, c in configs.items()}
    first = next(iter(evaluated.values()))
    lines += [
        "",
        "Goals (same machine, same run), for `hatbot serve` as shipped and for each variant below:",
        "",
        "| goal | " + " | ".join(evaluated) + " |",
        "|---|" + "---|" * len(evaluated),
    ]
    for i, g in enumerate(first):
        cells = [
            f"{'yes' if e[i]['met'] else '**no**'}: {e[i]['value']}" for e in evaluated.values()
        ]
        lines.append(f"| {g['goal']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Machine load during each measured run (CPU cores busy, all processes; "
        f"the machine has {m['nproc']}):",
        "",
    ]
    lines += [
        "| run | c | server cores | machine busy cores | load avg (1 min) |",
        "|---|---:|---:|---:|---:|",
    ]
    everything = {"starter_kit": s, "hatbot": h} | results.get("variants", {})
    for name, b in everything.items():
        for r in [*b["runs"], b["floor"]]:
            label = name if r is not b["floor"] else f"{name} floor"
            lines.append(
                f"| {label} | {r['connections']} | {r['server_cpu_cores']:.2f} | "
                f"{r['machine_busy_cores']:.2f} | {r['loadavg_1m']:.2f} |"
            )
    if results.get("variants"):
        lines += [
            "",
            "hatbot variants set from outside src/ (before/after evidence):",
            "",
            "| variant | how | c | req/s | p50 / p95 / p99 / max (ms) | errors | "
            "CPU ms/req | floor req/s (CPU ms/req) | ready (s) | VmRSS / Pss (MB) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        variants = {"baseline": {"how": "`hatbot serve`", **h}} | results["variants"]
        for name, v in variants.items():
            mem, fl = v["memory_after_load"], v["floor"]
            for i, r in enumerate(v["runs"]):
                head = f"| {name} | {v['how']} |" if i == 0 else "| | |"
                tail = (
                    f"{_fmt(fl['rps'])} ({fl['server_cpu_ms_per_request']:.2f}) | "
                    f"{v['ready_s']:.2f} | {_fmt(mem['VmRSS'])} / {_fmt(mem['Pss'])} |"
                    if i == 0
                    else " | | |"
                )
                lines.append(
                    f"{head} {r['connections']} | {_fmt(r['rps'])} | {_fmt(r['p50_ms'])} / "
                    f"{_fmt(r['p95_ms'])} / {_fmt(r['p99_ms'])} / {_fmt(r['max_ms'])} | "
                    f"{r['errors']} | {r['server_cpu_ms_per_request']:.2f} | {tail}"
                )
    bare = results.get("bare_floor")
    if bare:
        lines += [
            "",
            f"Framework floor without hatbot's middleware: a bare FastAPI app "
            "(`benchmarks/bare_app.py`, uvicorn, same `/healthz`) at "
            f"c={bare['connections']}: "
            f"{_fmt(bare['rps'])} req/s, {bare['server_cpu_ms_per_request']:.2f} CPU ms "
            f"per request, vs `hatbot serve` {_fmt(h['floor']['rps'])} req/s, "
            f"{h['floor']['server_cpu_ms_per_request']:.2f} CPU ms.",
        ]
    ph = results.get("startup_phases")
    if ph:
        lines += [
            "",
            "Where hatbot's start-up goes (fresh interpreter, warm page cache, seconds): "
            f"interpreter {ph['interpreter_s']:.2f}, imports (FastAPI, uvicorn, NumPy, "
            f"hatbot) {ph['import_s']:.2f}, artifact load with checksums "
            f"{ph['load_with_checksums_s']:.2f} (without {ph['load_without_checksums_s']:.2f}), "
            f"strategy {ph['strategy_s']:.3f}, warm-up explain + guess {ph['warmup_s']:.2f}.",
        ]
    micros = results.get("micro") or {}
    if micros:
        lines += [
            "",
            "Index alone, in-process (`benchmarks.micro`, same calls, no HTTP, one process):",
            "",
            "| BLAS threads | call | calls/s | mean / p99 (ms) | vectors read per call (MB) | "
            "matrix products | bandwidth bound (ms) | share of the bound reached |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        labels = {"default": "OpenBLAS default", "blas1": "`OPENBLAS_NUM_THREADS=1`"}
        for label, micro in micros.items():
            for kind in ("explain", "guess"):
                q = micro[kind]
                lines.append(
                    f"| {labels.get(label, label)} | {kind} | {_fmt(q['qps'])} | "
                    f"{q['mean_ms']:.2f} / {q['p99_ms']:.2f} | {q['bytes_read_mb']:.1f} | "
                    f"{q['matrix_products']:.0f} | {q['bound_ms']:.2f} | "
                    f"{q['fraction_of_bound']:.0%} |"
                )
        micro = micros.get("blas1") or next(iter(micros.values()))
        k, bw = micro["kernels"], micro["bandwidth"]
        mixed = ", ".join(f"{labels.get(lb, lb)} {m['mixed_qps']:,.0f}" for lb, m in micros.items())
        lines += [
            "",
            f"Mixed calls (1 explain : 10 guesses) per second in-process: {mixed}. "
            f"Memory bandwidth (one thread): numpy copy of {bw['array_mb']} MB = "
            f"{bw['copy_gbps']:.1f} GB/s (read + write; {bw['copy_read_gbps']:.1f} GB/s read "
            f"side, the bound's denominator); a mat-vec streaming {bw['array_mb']} MB reads "
            f"{bw['gemv_stream_gbps']:.1f} GB/s. One space is {k['vocabulary']:,} x {k['dim']} "
            f"float32 = {k['space_mb']:.1f} MB ({k['spaces']} spaces, "
            f"{k['spaces'] * k['space_mb']:.1f} MB; L3 {m['caches'].get('L3 cache', '?')}); "
            f"one product over it: {k['gemv_f32_ms']:.3f} ms ({k['gemv_f32_gbps']:.1f} GB/s), "
            f"in float16 {k['gemv_f16_ms']:.2f} ms, over the {k['hintable_rows']:,} "
            f"hint-eligible rows only {k['gemv_hintable_rows_ms']:.3f} ms; the {k['spaces']} "
            f"spaces one after another {k['gemv_all_spaces_ms']:.3f} ms, as one stacked matrix "
            f"{k['gemv_stacked_spaces_ms']:.3f} ms, over the {k['projection_dims']}-axis "
            f"projection ({k['projection_mb']:.1f} MB) {k['gemv_projection_ms']:.3f} ms; "
            f"product + top-60 {k['gemv_top60_ms']:.3f} ms.",
        ]
        gh = micro["guess_by_hints_ms"]
        lines += [
            "",
            "Guess time by number of hints (ms, in-process, "
            f"{labels.get('blas1') if 'blas1' in micros else 'default BLAS'}): "
            + ", ".join(f"{n}: {v:.2f}" for n, v in gh.items())
            + " (host order: each call scores its last prefix and reuses the remembered "
            f"rounds before it); from scratch, every prefix scored: "
            f"{micro['guess_fresh_mean_ms']:.2f} ms on average. Rounds the shortlist answers "
            f"as scoring every word would: {micro['shortlist_rounds_identical']}. "
            f"Explanations with n_words=5 equal the first 5 of n_words=10 for "
            f"{micro['explain_prefix_consistent']} words.",
        ]
        if micro.get("table_explain_us") is not None:
            lines[-1] += (
                " Served explanations come from the artifact's precomputed table: a lookup "
                f"takes {micro['table_explain_us']:.1f} µs ({micro['table_explain_hits']} of "
                f"{micro.get('table_explain_calls', results['workload']['explain'])} words "
                "held), and the mixed calls "
                f"run at {micro['mixed_qps_with_table']:,.0f} per second in-process with it."
            )
    return "\n".join(lines)


def write_report(results: dict[str, Any], path: Path) -> Path:
    """The generated report of one run: `path` with the suffix `.md`, beside the results file."""
    report = path.with_suffix(".md")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(
        f"# Benchmark run of {results['date']}\n\n"
        f"_Generated by `{results['command']}` from `{path.name}`; do not edit: "
        "a rerun rewrites it. How to read it: docs/BENCHMARKS.md._\n\n"
        f"{table(results)}\n\n"
        f"![throughput, p99 and memory]({path.with_suffix('.png').name})\n"
    )
    return report


def plot(results: dict[str, Any], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is missing: no plot")
        return
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    colors = {"starter_kit": "tab:red", "hatbot": "tab:blue"}
    for name in ("starter_kit", "hatbot"):
        runs = results["bots"][name]["runs"]
        cs = [r["connections"] for r in runs]
        axes[0].plot(cs, [r["rps"] for r in runs], "o-", color=colors[name], label=name)
        axes[3].plot(
            cs, [r["server_cpu_ms_per_request"] for r in runs], "o-", color=colors[name], label=name
        )
        axes[1].plot(cs, [r["p99_ms"] for r in runs], "o-", color=colors[name], label=f"{name} p99")
        axes[1].plot(
            cs,
            [r["p50_ms"] for r in runs],
            "o:",
            color=colors[name],
            alpha=0.6,
            label=f"{name} p50",
        )
    shades = ["tab:green", "tab:purple", "tab:olive", "tab:cyan", "tab:brown"]
    for i, (name, v) in enumerate(results.get("variants", {}).items()):
        cs = [r["connections"] for r in v["runs"]]
        color = shades[i % len(shades)]
        axes[0].plot(cs, [r["rps"] for r in v["runs"]], "^--", color=color, label=f"hatbot {name}")
        axes[1].plot(
            cs, [r["p99_ms"] for r in v["runs"]], "^--", color=color, label=f"hatbot {name} p99"
        )
        axes[3].plot(
            cs,
            [r["server_cpu_ms_per_request"] for r in v["runs"]],
            "^--",
            color=color,
            label=f"hatbot {name}",
        )
    axes[1].axhline(GOAL_P99_MS, color="gray", linestyle="--", linewidth=1, label="goal p99")
    axes[1].axhline(GOAL_MAX_MS, color="black", linestyle="--", linewidth=1, label="host timeout")
    for ax, title in (
        (axes[0], "throughput (req/s)"),
        (axes[1], "latency (ms)"),
        (axes[3], "server CPU per request (ms)"),
    ):
        ax.set_xscale("log", base=2)
        if ax is axes[1]:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("concurrent connections")
        ax.set_title(title)
        ax.set_xticks(
            results["settings"]["connections"],
            labels=[str(c) for c in results["settings"]["connections"]],
        )
        ax.legend(fontsize=7)
        ax.grid(True, which="both", alpha=0.3)
    names = ["starter_kit", "hatbot"]
    rss = [results["bots"][n]["memory_after_load"]["VmRSS"] for n in names]
    hwm = [results["bots"][n]["memory_after_load"]["VmHWM"] for n in names]
    x = range(len(names))
    axes[2].bar([i - 0.2 for i in x], rss, 0.4, label="VmRSS after load", color="gray")
    axes[2].bar(
        [i + 0.2 for i in x],
        hwm,
        0.4,
        label="VmHWM (peak)",
        color="white",
        edgecolor="gray",
        hatch="//",
    )
    for i, n in enumerate(names):
        axes[2].bar([i - 0.2], [rss[i]], 0.4, color=colors[n])
        axes[2].bar([i + 0.2], [hwm[i]], 0.4, color="white", edgecolor=colors[n], hatch="//")
        axes[2].annotate(f"{rss[i]:.0f}", (i - 0.2, rss[i]), ha="center", va="bottom", fontsize=8)
    axes[2].axhline(512, color="black", linestyle="--", linewidth=1, label="free tier 512 MB")
    axes[2].axhline(GOAL_MEMORY_MB, color="gray", linestyle="--", linewidth=1, label="goal 200 MB")
    axes[2].set_xticks(list(x), labels=names)
    axes[2].set_title("resident memory (MB)")
    axes[2].legend(fontsize=7)
    fig.suptitle(
        f"hatbot vs starter kit, {results['machine']['nproc']} vCPU "
        f"{results['machine']['cpu']}, {results['date']}",
        fontsize=10,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    log(f"wrote {out}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="hatbot vs the starter-kit bot: throughput, latency, "
        "memory, start-up, over loopback with wrk."
    )
    p.add_argument(
        "--models-dir",
        type=Path,
        default=WORK / "models",
        help="hatbot model store: its production model is measured (trained if absent)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=WORK / "data",
        help="hatbot data store (the pipeline's; holds the starter kit's cached .bin)",
    )
    p.add_argument("--source", default=str(DEFAULT_SOURCE), help="corpus for training if needed")
    p.add_argument("--starter-bin", type=Path, help="the starter kit's fastText .bin")
    p.add_argument(
        "--connections", default="1,16,64", type=lambda s: [int(x) for x in s.split(",")]
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load")
    p.add_argument("--floor-duration", type=float, default=5.0)
    p.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads (1 leaves the most CPU to the bot)"
    )
    p.add_argument("--startup-runs", type=int, default=3)
    p.add_argument(
        "--targets",
        type=int,
        default=1000,
        help="hat words in the workload (10 guess calls each: keep the list's distinct guess "
        "calls above the rounds a hatbot process remembers, so repeats are computed again)",
    )
    p.add_argument(
        "--variants",
        default="log-warning,workers-2",
        help="hatbot variants set from outside src/ ('' for none)",
    )
    p.add_argument("--no-micro", action="store_true")
    p.add_argument(
        "--allow-different-dims",
        action="store_true",
        help="smoke-test the benchmark with a small model (not a fair comparison)",
    )
    p.add_argument(
        "--no-doc",
        "--no-report",
        dest="no_doc",
        action="store_true",
        help="write the results file only, not its report (.md) and plot (.png)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="results file (JSON); the report and plot go beside it with the same stem",
    )
    p.add_argument(
        "--render",
        type=Path,
        metavar="FILE.json",
        help="measure nothing: write the report and plot of a saved results file",
    )
    return p.parse_args(argv)


def variant_bots(names: list[str], store: Path, probe: str) -> dict[str, tuple[str, Bot]]:
    base_env = {"HATBOT_MODEL_STORE": str(store)}
    serve = hatbot_cmd("serve", "--host", HOST, "--port", "{port}")
    uvicorn = [
        sys.executable,
        "-m",
        "uvicorn",
        "hatbot.app:create_app",
        "--factory",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--workers",
        "2",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    table_: dict[str, tuple[str, list[str], dict[str, str]]] = {
        "log-warning": (
            "`HATBOT_LOG_LEVEL=warning` (no per-request log line)",
            serve,
            {"HATBOT_LOG_LEVEL": "warning"},
        ),
        "blas-2": (
            "`OPENBLAS_NUM_THREADS=2` (OpenBLAS's default here; `hatbot serve` sets 1)",
            serve,
            {"OPENBLAS_NUM_THREADS": "2"},
        ),
        "workers-1": ("`hatbot serve --workers 1`", [*serve, "--workers", "1"], {}),
        "workers-2": ("`hatbot serve --workers 2`", [*serve, "--workers", "2"], {}),
        # What hatbot measured before `--workers` existed: uvicorn's own CLI.
        "uvicorn-workers-2": (
            "`uvicorn hatbot.app:create_app --factory --workers 2`, "
            "`HATBOT_LOG_LEVEL=warning`, `OPENBLAS_NUM_THREADS=1`",
            uvicorn,
            {"HATBOT_LOG_LEVEL": "warning", "OPENBLAS_NUM_THREADS": "1"},
        ),
    }
    out = {}
    for name in names:
        how, cmd, env = table_[name]
        out[name] = (how, Bot(f"hatbot-{name}", cmd, {**base_env, **env}, 0, probe, "/healthz"))
    return out


def render(path: Path) -> None:
    """The report and plot of a saved results file, beside it."""
    results = json.loads(path.read_text())
    log(f"wrote {write_report(results, path)}")
    plot(results, path.with_suffix(".png"))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render is not None:
        render(args.render)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    command = (
        "poetry run python -m benchmarks.run"
        + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    )
    models, data = args.models_dir.resolve(), args.data_dir.resolve()
    artifact = ensure_hatbot_model(models, data, args.source)
    starter_bin = ensure_starter_bin(args.starter_bin, data, args.source)
    manifest = json.loads((artifact / "manifest.json").read_text())
    header = fasttext_header(starter_bin)
    dim = manifest["vocabulary"]["dim"]
    if header["dim"] != dim and not args.allow_different_dims:
        raise SystemExit(f"dimensions differ: hatbot {dim}, starter kit {header['dim']}")
    log(f"hatbot artifact {artifact} (dim {dim}); starter kit {starter_bin} ({header})")

    runs_dir = WORK / "runs" / time.strftime("%Y%m%d-%H%M%S")
    runs_dir.mkdir(parents=True, exist_ok=True)
    calls = workload.build(artifact, args.targets)
    calls_file, paths_file = workload.save(calls, runs_dir)
    probe = calls[0].path
    log(
        f"workload: {len(calls)} calls ({sum(c.kind == 'explain' for c in calls)} explain) "
        f"in {paths_file}"
    )

    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "command": command,
        "machine": machine(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "workload": {
            "calls": len(calls),
            "explain": sum(c.kind == "explain" for c in calls),
            "guess": sum(c.kind == "guess" for c in calls),
            "probe": probe,
        },
        "models": {
            "hatbot": {
                "path": str(artifact),
                "version": manifest["version"],
                "dim": dim,
                "words": manifest["vocabulary"]["words"],
                "spaces": 1 + len(list(artifact.glob("proxy-*"))),
                "size_mb": du(artifact) / MB,
            },
            "starter_kit": {"path": str(starter_bin), **header, "size_mb": du(starter_bin) / MB},
        },
        "floor_routes": {"hatbot": "/healthz", "starter_kit": "/"},
        "bots": {},
        "variants": {},
    }

    if not args.no_micro:
        # Twice: with OpenBLAS's default threads (what `hatbot serve` gets) and with one thread.
        results["micro"] = {}
        for label, env, passes in (("default", {}, 1), ("blas1", {"OPENBLAS_NUM_THREADS": "1"}, 2)):
            micro_json = runs_dir / f"micro-{label}.json"
            log(f"in-process micro-benchmark of the index (BLAS threads: {label})")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.micro",
                    "--artifact",
                    str(artifact),
                    "--calls",
                    str(calls_file),
                    "--json",
                    str(micro_json),
                    "--passes",
                    str(passes),
                ],
                check=True,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                env={**os.environ, **env},
            )
            results["micro"][label] = json.loads(micro_json.read_text())

    # Where hatbot's start-up goes (fresh interpreters, the artifact in the page cache).
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    phases = {"interpreter_s": time.perf_counter() - t}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.startup", "--artifact", str(artifact)],
        check=True,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    phases |= json.loads(done.stdout.strip().splitlines()[-1])
    results["startup_phases"] = phases
    log(f"start-up phases: {phases}")

    floor_files = {}
    for name, route in results["floor_routes"].items():
        floor_files[name] = runs_dir / f"floor-{name}.txt"
        floor_files[name].write_text(route + "\n")

    bots = {
        "starter_kit": Bot(
            "starter_kit",
            [
                sys.executable,
                "-m",
                "benchmarks.starter_kit_bot",
                "--model",
                str(starter_bin),
                "--host",
                HOST,
                "--port",
                "{port}",
            ],
            {},
            0,
            probe,
            "/",
        ),
        "hatbot": Bot(
            "hatbot",
            hatbot_cmd("serve", "--host", HOST, "--port", "{port}"),
            {"HATBOT_MODEL_STORE": str(models)},
            0,
            probe,
            "/healthz",
        ),
    }
    for name, bot in bots.items():
        log(f"benchmarking {name}")
        results["bots"][name] = bench_bot(bot, paths_file, floor_files[name], args, runs_dir)
    names = [v for v in args.variants.split(",") if v]
    for name, (how, bot) in variant_bots(names, models, probe).items():
        log(f"variant {name}")
        results["variants"][name] = {
            "how": how,
            **bench_bot(bot, paths_file, floor_files["hatbot"], args, runs_dir, variant=True),
        }

    if args.variants:
        # The framework alone: a bare FastAPI app on uvicorn, the same trivial route.
        bare = Bot(
            "fastapi-bare",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "benchmarks.bare_app:app",
                "--host",
                HOST,
                "--port",
                "{port}",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            {},
            0,
            probe,
            "/healthz",
        )
        bare.log_file = runs_dir / "fastapi-bare.log"
        bare.port = free_port()
        bare.start()
        try:
            results["bare_floor"] = measured_wrk(
                bare,
                floor_files["hatbot"],
                max(args.connections),
                args.floor_duration,
                args.wrk_threads,
                lists=False,
            )
        finally:
            bare.stop()
        log(f"bare FastAPI floor: {results['bare_floor']['rps']:.0f} req/s")

    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {args.results}")
    print(table(results))
    if not args.no_doc:
        render(args.results)


if __name__ == "__main__":
    main()
