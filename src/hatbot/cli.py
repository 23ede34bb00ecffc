"""The `hatbot` command: serve the bot, run the pipeline or any stage, play tournaments."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from hatbot.game.recipes import RECIPES

# typer's help writes a type beside every parameter (`<bool>` for a flag, `<str>` beside an
# argument's name), required arguments as `{URL}`, and, in its rich mode, keeps each line
# break of a docstring. The classes below make every help screen read as plain usage:
# options show their metavar, flags and arguments no type, arguments their bare name, and
# each paragraph of a docstring is re-wrapped to the terminal. They change no parsing;
# `_plain_help` gives them to every command of the app.


class _PlainArgument(TyperArgument):
    """An argument shown by its metavar alone: `URL` in the usage line (`[URL]` when
    optional), and no type beside it in the table."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return [name if self.nargs == 1 else f"{name}..."]


def _unwrap(text: str | None) -> str | None:
    """Each paragraph of a docstring on one line, for the help to wrap."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def _plain_params(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # a flag takes no value: `--help`, not `--help <bool>`
        elif type(param) is TyperArgument:
            param.__class__ = _PlainArgument
    return params


class _PlainHelpCommand(TyperCommand):
    """A command whose help reads as plain usage (see `_PlainArgument`, `_unwrap`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _unwrap(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_params(super().get_params(ctx))


class _PlainHelpGroup(TyperGroup):
    """A group whose help reads as plain usage (its summary, `--help`, the completion
    flags)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _unwrap(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_params(super().get_params(ctx))


def _plain_help(typer_app: typer.Typer) -> None:
    """Give every group and command of `typer_app`, sub-apps included, the classes above."""
    typer_app.info.cls = _PlainHelpGroup
    for command in typer_app.registered_commands:
        command.cls = _PlainHelpCommand
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _plain_help(group.typer_instance)


app = typer.Typer(
    help="hatbot: a bot for The Hat, its model pipeline and its game engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="The data store: fetch the corpus, add texts.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ParamsOpt = Annotated[
    Path | None, typer.Option("--params", metavar="FILE", help="Parameters file (YAML).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a parameter: section.key=value (repeatable)."
    ),
]
DataOpt = Annotated[Path, typer.Option("--data-dir", metavar="DIR", help="The data store.")]
ModelsOpt = Annotated[
    Path,
    typer.Option(
        "--models-dir", metavar="DIR", envvar="HATBOT_MODEL_STORE", help="The model store."
    ),
]
TrackingOpt = Annotated[
    Path, typer.Option("--tracking-dir", metavar="DIR", help="Local MLflow store.")
]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source", metavar="URL|PATH", envvar="HATBOT_CORPUS", help="Corpus URL or local path."
    ),
]


def _params(path: Path | None, overrides: list[str] | None, source: str | None = None) -> Any:
    from hatbot.pipeline.params import Params

    if path is None and Path("params.yaml").is_file():
        path = Path("params.yaml")
    extra = [f"data.source={json.dumps(source)}"] if source else []
    try:
        return Params.load(path, [*(overrides or []), *extra])
    except (ValueError, OSError) as exc:
        _fail(f"bad parameters: {exc}")


def _paths(data_dir: Path, models_dir: Path, tracking_dir: Path = Path("mlruns")) -> Any:
    from hatbot.pipeline.run import Paths

    return Paths(data=data_dir, models=models_dir, tracking=tracking_dir)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a stage.

    A subclass, because CPython remembers a plain KeyboardInterrupt that passed through
    a string `exec` (dataclasses and namedtuples build their methods that way) and, under
    `python -m`, ends the process by SIGINT after the exit code 130 was chosen.
    """


def _guarded(stage: Any, *args: Any) -> Any:
    """Run a stage: its known failures become a one-line message and exit code 1, any other
    exception its traceback and exit code 1, an interrupt (Ctrl-C, SIGTERM) exit code 130.

    Stages clean up after themselves on the way out (scratch folders, fastText
    workers), so whatever the exit, the stores hold no half-written file.
    """
    import signal
    import threading
    import traceback

    from hatbot.index import ArtifactError
    from hatbot.pipeline.corpus import CorpusError
    from hatbot.pipeline.train import TrainingError

    def terminate(signum: int, frame: Any) -> None:
        raise Interrupted(f"signal {signum}")

    main_thread = threading.current_thread() is threading.main_thread()
    handled = (signal.SIGINT, signal.SIGTERM) if main_thread else ()
    previous = {signum: signal.signal(signum, terminate) for signum in handled}
    try:
        return stage(*args)
    except (
        CorpusError,
        TrainingError,
        ArtifactError,
        FileNotFoundError,
        ValueError,
        OSError,
    ) as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        _fail("interrupted; the stores keep only complete files", 130)
    except Exception as exc:
        traceback.print_exc()
        _fail(f"unexpected {type(exc).__name__}: {exc}")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


LOG_FORMAT = "time=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def _setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=LOG_FORMAT,
    )


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Interface to listen on.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Port (default $HATBOT_PORT, $PORT, 8000).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Worker processes (default $HATBOT_WORKERS, 1)."),
    ] = None,
    bootstrap: Annotated[
        bool,
        typer.Option(
            help="Train and promote a model first if the store has none (needs the train group)."
        ),
    ] = False,
    source: SourceOpt = None,
    params_file: ParamsOpt = None,
    set_: SetOpt = None,
    data_dir: DataOpt = Path("data"),
    tracking_dir: TrackingOpt = Path("mlruns"),
) -> None:
    """Serve the bot over HTTP: one uvicorn process, or --workers processes on one port.

    With --bootstrap and no model to serve, the port answers at once (/readyz says what is
    being prepared) while a separate process trains a quick model, then the full one; the
    service swaps each in when it is promoted.
    """
    # One BLAS thread per process: each query is a small matrix product, and BLAS threads
    # fight the event loop for the cores (measured 3.3x the throughput at 64 connections,
    # variant "blas-1" in benchmarks/results/contended-2026-11-26-0824.json). Set before NumPy
    # is first imported.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    import uvicorn

    from hatbot.config import Settings

    given = {"host": host, "port": port, "workers": workers}
    overrides = {k: v for k, v in given.items() if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    _setup_logging(settings.log_level)
    trainer = None
    if bootstrap:
        trainer = _bootstrap(settings, source, params_file, set_, data_dir, tracking_dir)
    try:
        if settings.workers == 1:
            from hatbot.app import create_app

            uvicorn.run(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                loop=EVENT_LOOP,
                log_level=settings.log_level,
                access_log=False,
                **settings.server_options(),
            )
        else:
            _serve_workers(settings)
    finally:
        if trainer is not None and trainer.poll() is None:
            trainer.terminate()
            trainer.wait()


def _bootstrap(
    settings: Any,
    source: str | None,
    params_file: Path | None,
    overrides: list[str] | None,
    data_dir: Path,
    tracking_dir: Path,
) -> Any:
    """Start `hatbot pipeline --quick-first` in its own process when the store has no model
    to serve, or only a quick one; None when there is nothing to train. Training never runs
    in the serving process, which stays as lean as a plain `hatbot serve`."""
    import subprocess

    from hatbot.pipeline.run import is_quick
    from hatbot.store import ModelStore

    store = ModelStore(settings.model_store)
    folder = store.resolve(settings.model_pointer)
    manifest = json.loads((folder / "manifest.json").read_text()) if folder is not None else None
    if manifest is not None and not is_quick(manifest):
        return None
    typer.echo(f"no full {settings.model_pointer} model in {settings.model_store}: training one")
    command = [sys.executable, "-m", "hatbot.cli", "pipeline", "--quick-first"]
    command += ["--data-dir", str(data_dir), "--models-dir", str(settings.model_store)]
    command += ["--tracking-dir", str(tracking_dir), "--parent", str(os.getpid())]
    if source:
        command += ["--source", source]
    if params_file is not None:
        command += ["--params", str(params_file)]
    for item in overrides or []:
        command += ["--set", item]
    return subprocess.Popen(command)


# One process runs Python's own asyncio loop, not uvloop: with 64 connections each keeping
# a request in flight, uvloop left some connections unserved for 1-5 s while the
# application's own time for every request stayed under 20 ms (wrk: p99 1.0 s, max 1.9 s,
# 16-24 requests past 5 s); asyncio served them in turn (p99 0.19 s, max 0.23 s, none past
# 5 s). The host gives up after 1 s. Several workers keep uvicorn's default (uvloop): with
# asyncio each of their answers waited 40 ms for a delayed ACK, and uvloop's tail showed in
# some of their runs only. docs/BENCHMARKS.md has the runs.
EVENT_LOOP: Literal["asyncio"] = "asyncio"


def _serve_workers(settings: Any) -> None:
    """Several uvicorn workers behind one socket, each building the app from the environment.

    Their Prometheus metrics are summed through files (prometheus_client's multiprocess
    mode, in $PROMETHEUS_MULTIPROC_DIR, a fresh folder unless set), so a scrape counts every
    worker's requests whichever worker answers it. That mode cannot share an `Info` or the
    process collector: `hatbot_model_info` and `process_*` are then not exported.
    """
    import shutil
    import tempfile

    import uvicorn

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="hatbot-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # a previous run's values must not be added to ours
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    # The workers read their settings from the environment; pass on what the command set.
    for name in (
        "model_store",
        "model_pointer",
        "log_level",
        "request_timeout",
        "max_header_bytes",
    ):
        os.environ[f"HATBOT_{name.upper()}"] = str(getattr(settings, name))
    try:
        uvicorn.run(
            "hatbot.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            log_config=_log_config(settings.log_level),
            access_log=False,
            **settings.server_options(),
        )
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)


def _log_config(level: str) -> dict[str, Any]:
    """`_setup_logging` for uvicorn's worker processes (they start fresh interpreters)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"hatbot": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "hatbot",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


@data_app.command("fetch")
def data_fetch(
    source: SourceOpt = None,
    sha256: Annotated[
        str | None, typer.Option(metavar="HEX", help="Expected checksum of the source.")
    ] = None,
    params_file: ParamsOpt = None,
    set_: SetOpt = None,
    data_dir: DataOpt = Path("data"),
) -> None:
    """Download or copy the corpus into the data store and verify it."""
    from hatbot.pipeline.run import fetch

    _setup_logging()
    overrides = [*(set_ or []), *([f"data.sha256={json.dumps(sha256)}"] if sha256 else [])]
    params = _params(params_file, overrides, source)
    record = _guarded(fetch, _paths(data_dir, Path("models")), params)
    typer.echo(json.dumps(record, indent=2))


@data_app.command("add")
def data_add(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="JSON file or URL of texts.")],
    data_dir: DataOpt = Path("data"),
) -> None:
    """Add texts published during a tournament (JSON objects with a "text" key); the next
    training uses them with the corpus."""
    from hatbot.pipeline.corpus import DataStore

    _setup_logging()
    record = _guarded(DataStore(data_dir).add, source)
    typer.echo(json.dumps(record, indent=2))


@app.command()
def train(
    params_file: ParamsOpt = None,
    set_: SetOpt = None,
    data_dir: DataOpt = Path("data"),
    models_dir: ModelsOpt = Path("models"),
) -> None:
    """Preprocess, train fastText, export the artifact; it becomes the staging model."""
    from hatbot.pipeline.run import train as train_stage

    _setup_logging()
    version = _guarded(train_stage, _paths(data_dir, models_dir), _params(params_file, set_))
    typer.echo(f"trained model {version} (now staging)")


@app.command()
def evaluate(
    version: Annotated[
        str | None, typer.Option(metavar="VERSION", help="Model version (default: staging).")
    ] = None,
    params_file: ParamsOpt = None,
    set_: SetOpt = None,
    data_dir: DataOpt = Path("data"),
    models_dir: ModelsOpt = Path("models"),
) -> None:
    """Play the model against the baseline panel on the held-out hat; print its metrics."""
    from hatbot.pipeline.run import evaluate as evaluate_stage

    _setup_logging()
    metrics = _guarded(
        evaluate_stage, _paths(data_dir, models_dir), _params(params_file, set_), version
    )
    typer.echo(json.dumps(metrics, indent=2, sort_keys=True))


@app.command()
def promote(
    params_file: ParamsOpt = None,
    set_: SetOpt = None,
    data_dir: DataOpt = Path("data"),
    models_dir: ModelsOpt = Path("models"),
) -> None:
    """Promote staging to production if it passes the sanity checks and scores at least
    production's score on the same hat and panel; print the decision and why."""
    from hatbot.pipeline.run import promote_staging

    _setup_logging()
    decision = _guarded(promote_staging, _paths(data_dir, models_dir), _params(params_file, set_))
    typer.echo(decision.reason)


@app.command()
def pipeline(
    source: SourceOpt = None,
    params_file: ParamsOpt = None,
    set_: SetOpt = None,
    data_dir: DataOpt = Path("data"),
    models_dir: ModelsOpt = Path("models"),
    tracking_dir: TrackingOpt = Path("mlruns"),
    track: Annotated[bool, typer.Option(help="Record the run in MLflow.")] = True,
    quick_first: Annotated[
        bool,
        typer.Option(
            help="Prepare a store for serving: with no production model, a quick model "
            "first (minutes), then the full one; progress in the store's .progress.json."
        ),
    ] = False,
    parent: Annotated[
        int | None, typer.Option(hidden=True, metavar="PID", help="Stop when this process ends.")
    ] = None,
) -> None:
    """Fetch, train, evaluate and promote in one go, recorded in MLflow."""
    from hatbot.pipeline.run import first_run, run_pipeline

    _setup_logging()
    if parent is not None:
        from hatbot.pipeline.fasttext_worker import _die_with

        if not _die_with(parent):
            _fail("the process that started this run has ended")
    params = _params(params_file, set_, source)
    paths = _paths(data_dir, models_dir, tracking_dir)
    if quick_first:
        summaries = _guarded(first_run, paths, params, track)
    else:
        summaries = [_guarded(run_pipeline, paths, params, track)]
    for summary in summaries:
        typer.echo(json.dumps(summary["decision"], indent=2))
        score = summary["metrics"]["score_vs_panel"]
        wall = summary["timings"]["pipeline"]["wall_s"]
        typer.echo(f"model {summary['version']}: score_vs_panel {score:.4f}, {wall:.0f} s")


@app.command()
def hat(
    size: Annotated[int, typer.Option(metavar="N", help="Words in the hat.")] = 200,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the draw.")] = 0,
    part: Annotated[str, typer.Option(metavar="PART", help="all, tune or heldout.")] = "all",
    out: Annotated[Path | None, typer.Option(metavar="FILE", help="Write the hat here.")] = None,
    models_dir: ModelsOpt = Path("models"),
) -> None:
    """Draw a hat of words by the tournament's method from the production model's corpus."""
    from hatbot.game.hat import build_hat, write_hat
    from hatbot.index import WordIndex
    from hatbot.store import ModelStore

    folder = ModelStore(models_dir).resolve("production")
    if folder is None:
        _fail(f"no production model in {models_dir}")
    index = _guarded(WordIndex, folder)
    eligible = [w for w, ok in zip(index.words, index.eligible, strict=True) if ok]
    words = _guarded(build_hat, eligible, size, seed, part)
    if out:
        write_hat(out, words)
    else:
        typer.echo("\n".join(words))


@app.command()
def tournament(
    bot: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME=URL", help="A bot over HTTP: NAME=URL (repeatable)."),
    ] = None,
    builtin: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PLAYER",
            help="A built-in player (repeatable): KIND or NAME=KIND[:ARG]; KIND hatbot (ARG: "
            f"a model version) or a recipe, {', '.join(RECIPES)} (ARG: the seed of its own "
            "model; docs/GAME.md, 'The field').",
        ),
    ] = None,
    hat_file: Annotated[
        Path | None, typer.Option("--hat", metavar="FILE", help="Hat file, one word a line.")
    ] = None,
    hat_size: Annotated[
        int, typer.Option(metavar="N", help="Words of a corpus-derived hat.")
    ] = 200,
    part: Annotated[
        str, typer.Option(metavar="PART", help="Corpus hat part: all, tune or heldout.")
    ] = "heldout",
    criteria: Annotated[str, typer.Option(metavar="MODE", help="soft or hard.")] = "soft",
    n_explain: Annotated[int, typer.Option(metavar="N", help="Explanation words.")] = 5,
    n_guess: Annotated[int, typer.Option(metavar="N", help="Guesses per attempt.")] = 5,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the hat and the order.")] = 0,
    panel_seed: Annotated[int, typer.Option(metavar="N", help="Seed of the baseline models.")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Write every attempt here.")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Save a PNG of the standings.")
    ] = None,
    params_file: ParamsOpt = None,
    set_: SetOpt = None,
    data_dir: DataOpt = Path("data"),
    models_dir: ModelsOpt = Path("models"),
) -> None:
    """Play a tournament between bots over HTTP and built-in players; print the leaderboard."""
    from hatbot.pipeline.evaluate import run_tournament

    if criteria not in ("soft", "hard"):
        _fail("criteria must be soft or hard")
    crit: Literal["soft", "hard"] = "soft" if criteria == "soft" else "hard"
    _guarded(
        run_tournament,
        bot or [],
        builtin or [],
        hat_file,
        hat_size,
        part,
        crit,
        n_explain,
        n_guess,
        seed,
        panel_seed,
        json_out,
        chart,
        _params(params_file, set_),
        _paths(data_dir, models_dir),
    )


@app.command()
def smoke(
    url: Annotated[str, typer.Argument(metavar="URL", help="Base URL of a running bot.")],
    expect_version: Annotated[
        str | None,
        typer.Option(metavar="VERSION", help="Fail unless /v1/model reports this version."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds to wait for readiness.")
    ] = 60.0,
) -> None:
    """Check a deployed bot: ready, the expected model, and the host protocol answering."""
    from hatbot.game.smoke import smoke_test

    problems = asyncio.run(smoke_test(url, expect_version, timeout))
    if problems:
        for problem in problems:
            typer.secho(f"FAIL {problem}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {url} is ready and plays the host protocol")


from hatbot.remote import model_app  # noqa: E402  (registered last: one self-contained sub-app)

app.add_typer(model_app, name="model")
_plain_help(app)

if __name__ == "__main__":
    app()
