"""Routes: the host's protocol, the typed API, health, and a page to try the bot by hand.

This layer checks requests (a clear 4xx for bad input), counts answers in the metrics and
shapes responses; the answers themselves come from `hatbot.serving.ServedModel`.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

import hatbot
from hatbot.config import Settings
from hatbot.game.rules import normalise
from hatbot.metrics import Metrics
from hatbot.schemas import (
    HINTS_NOTE,
    N_NOTE,
    WORD_NOTE,
    ErrorResponse,
    ExplainRequest,
    ExplainResponse,
    GuessRequest,
    GuessResponse,
    HealthResponse,
    HintNote,
    ModelResponse,
    ReadinessResponse,
    WordNote,
)
from hatbot.serving import ModelManager, ServedModel, WordReading, readiness

router = APIRouter()
PAGE = (Path(__file__).parent / "page.html").read_text()
# Seconds a client is told to wait before asking again while no model is loaded.
RETRY_AFTER = "5"
NO_MODEL: dict[int | str, dict[str, object]] = {
    503: {
        "model": ErrorResponse,
        "description": "No model is loaded yet; `detail` says what is being prepared.",
    },
}
INVALID_OR_NO_MODEL: dict[int | str, dict[str, object]] = {
    422: {"model": ErrorResponse, "description": "The request is invalid; `detail` says why."},
    **NO_MODEL,
}
# FastAPI answers 400 when a body cannot even be decoded (bytes that are not UTF-8 text).
BODY_INVALID_OR_NO_MODEL: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "The body is not JSON text at all."},
    **INVALID_OR_NO_MODEL,
}
# What a browser may load for the page and the docs: this server's own scripts, styles and
# images only (inline ones included: the pages are single files), so they never reach out.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'self'"
)
# Values the manifest may hold that name places on the machine that built the model.
SOURCE_KEYS = ("source", "file", "path")


# The dependencies are `async def`: FastAPI runs a plain `def` dependency in its thread
# pool, a thread hop per dependency and request for what is an attribute lookup.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.state.metrics
    return metrics


async def get_model(request: Request) -> ServedModel:
    """The model serving right now; the request keeps it even if a swap happens meanwhile."""
    models: ModelManager = request.state.models
    model = models.current
    if model is None:
        raise HTTPException(503, models.unready_reason(), headers={"Retry-After": RETRY_AFTER})
    return model


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ModelDep = Annotated[ServedModel, Depends(get_model)]


def read_word(word: str, settings: Settings, what: str = "word") -> str:
    """The word as the host reads it (`rules.normalise`), or a 422 saying what is wrong."""
    if not word or len(word) > settings.max_word_length:
        raise HTTPException(422, f"{what} must be 1 to {settings.max_word_length} characters long")
    # Checked before lowercasing: "İ" and "K" (Kelvin) lowercase to ASCII letters.
    if any(ch.isalpha() and not ch.isascii() for ch in word):
        raise HTTPException(422, f"{what} {word!r} is not English: only letters a-z are played")
    letters = normalise(word)
    if not letters:
        raise HTTPException(422, f"{what} {word!r} holds no letters")
    return letters


def check_n_words(n_words: int, settings: Settings) -> int:
    if not 1 <= n_words <= settings.max_n_words:
        raise HTTPException(422, f"n_words must be between 1 and {settings.max_n_words}")
    return n_words


def read_hints(words: list[str], settings: Settings) -> list[str]:
    """Every hint read as the host reads it, in order (repeats kept), or a 422."""
    if not words:
        raise HTTPException(422, "give at least one hint in `words`")
    if len(words) > settings.max_hints:
        raise HTTPException(422, f"at most {settings.max_hints} hints are accepted")
    return [read_word(w, settings, "hint") for w in words]


def played(hints: list[str], settings: Settings) -> list[str]:
    """The hints a guess plays: repeats dropped, the first `max_played_hints`."""
    return list(dict.fromkeys(hints))[: settings.max_played_hints]


def explain_words(
    model: ServedModel, word: str, n_words: int, metrics: Metrics, host: bool = False
) -> list[str]:
    """The model's hints; `host`: the host protocol's call, whose word is a draw from the
    tournament's hat (it feeds the estimate of the hat's kind; a person's does not)."""
    if not model.knows(word):
        metrics.unknown_words.labels("explain").inc()
    words = model.explain(word, n_words, observe=host)
    if host:
        metrics.hat_everyday.set(model.strategy.hat.everyday())
    metrics.answers.labels("explain").inc()
    if len(words) < n_words:
        metrics.short_answers.labels("explain").inc()
    return words


def guess_words(
    model: ServedModel, hints: list[str], n_words: int, metrics: Metrics, host: bool = False
) -> list[str]:
    """The model's guesses; `host`: the host protocol's call, whose newest hint feeds the
    estimate of the host's mode (a person's does not)."""
    unknown = sum(not model.knows(h) for h in hints)
    if unknown:
        metrics.unknown_words.labels("guess").inc(unknown)
    words = model.guess(hints, n_words, observe=host)
    if host:
        metrics.host_soft.set(model.strategy.mode.soft())
    metrics.answers.labels("guess").inc()
    if len(words) < n_words:
        metrics.short_answers.labels("guess").inc()
    return words


def word_note(reading: WordReading) -> WordNote:
    return WordNote(
        given=reading.given,
        read_as=reading.read_as,
        rewritten=reading.rewritten,
        known=reading.known,
        closest=reading.closest,
        played=reading.played,
        note=reading.note,
    )


def without_paths(value: Any) -> Any:
    """A manifest section without the build machine's paths: a corpus source or file is
    cut to its name (its last path segment, no query string); checksums stay."""
    if isinstance(value, dict):
        return {
            k: (name_of(v) if k in SOURCE_KEYS and isinstance(v, str) else without_paths(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_paths(v) for v in value]
    return value


def name_of(location: str) -> str:
    return location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def promotion_of(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The promotion decision the manifest records, if any."""
    for found in (manifest.get("promotion"), manifest.get("metrics", {}).get("decision")):
        if isinstance(found, dict):
            return found
    return None


@router.get("/", response_class=HTMLResponse, tags=["people"], summary="Try the bot by hand")
async def page(request: Request, response: Response) -> str:
    """A small page: type a word to see its explanation, or hints to see guesses."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    models: ModelManager = request.state.models
    if models.current is not None:
        status = f"Model {models.current.version} is serving."
        state = "ready"
    else:
        status = "Preparing the first model: " + models.unready_reason()
        state = "not-ready"
    return PAGE.replace("__STATUS__", html.escape(status)).replace("__STATE__", state)


@router.head("/", include_in_schema=False)
async def page_head() -> Response:
    return Response(media_type="text/html")


@router.get(
    "/explain",
    response_model=list[str],
    tags=["host protocol"],
    responses=INVALID_OR_NO_MODEL,
    summary="Explain a word (host protocol)",
)
async def explain(
    model: ModelDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    word: Annotated[str, Query(description=WORD_NOTE, examples=["space"])],
    n_words: Annotated[
        int, Query(description=f"How many hints to give, at most. {N_NOTE}", examples=[5])
    ],
) -> list[str]:
    """Hints for `word`, most telling first: a bare JSON list of lowercase words.

    None of them is one the host's cleaning deletes, in `soft` or `hard` mode; once
    the host's hints show that it plays `soft` (a hint WordNet does not know), none
    that its `soft` cleaning deletes.
    """
    return explain_words(
        model, read_word(word, settings), check_n_words(n_words, settings), metrics, host=True
    )


@router.get(
    "/guess",
    response_model=list[str],
    tags=["host protocol"],
    responses=INVALID_OR_NO_MODEL,
    summary="Guess a word from hints (host protocol)",
)
async def guess(
    model: ModelDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    words: Annotated[
        list[str],
        Query(
            description=f"The hints so far, one `words=` each, first hint first. {HINTS_NOTE}",
            examples=[["nasa", "orbit", "shuttle"]],
        ),
    ],
    n_words: Annotated[
        int, Query(description=f"How many guesses to give, at most. {N_NOTE}", examples=[5])
    ],
) -> list[str]:
    """Guesses of the hidden word: a bare JSON list of lowercase words, likeliest first.

    Never a hint, never a word the host's rules exclude given the hints, and
    never a guess already made for a shorter prefix of the same hints. Only the
    first 10 distinct hints are played (`HATBOT_MAX_PLAYED_HINTS`; the host sends
    at most 10).
    """
    hints = played(read_hints(words, settings), settings)
    return guess_words(model, hints, check_n_words(n_words, settings), metrics, host=True)


@router.post(
    "/v1/explain", tags=["typed API"], responses=BODY_INVALID_OR_NO_MODEL, summary="Explain a word"
)
async def explain_v1(
    body: ExplainRequest, model: ModelDep, settings: SettingsDep, metrics: MetricsDep
) -> ExplainResponse:
    """Hints for a word, with the model version that chose them, how the word was read
    (rewritten by the host's cleaning, unknown to the model and the spelling used instead)
    and the host modes each hint survives.

    The hints are chosen for the other bots' models: words their simulated guessers rank
    the target high for, which a person may find odd."""
    word = read_word(body.word, settings)
    words = explain_words(model, word, check_n_words(body.n_words, settings), metrics)
    modes = model.hint_modes(word, words)
    return ExplainResponse(
        words=words,
        model_version=model.version,
        criteria=model.criteria,
        input=[word_note(model.read_word(body.word, word))],
        hints=[HintNote(word=w, survives=m) for w, m in zip(words, modes, strict=True)],
    )


@router.post(
    "/v1/guess", tags=["typed API"], responses=BODY_INVALID_OR_NO_MODEL, summary="Guess a word"
)
async def guess_v1(
    body: GuessRequest, model: ModelDep, settings: SettingsDep, metrics: MetricsDep
) -> GuessResponse:
    """Guesses from hints, with the model version that made them and how each hint was
    read (rewritten, unknown to the model, a repeat, or beyond the hints played)."""
    hints = read_hints(body.words, settings)
    words = guess_words(
        model, played(hints, settings), check_n_words(body.n_words, settings), metrics
    )
    readings = model.read_hints(body.words, hints, settings.max_played_hints)
    return GuessResponse(
        words=words, model_version=model.version, input=[word_note(r) for r in readings]
    )


@router.get("/v1/model", tags=["operations"], responses=NO_MODEL, summary="The serving model")
async def model_info(model: ModelDep) -> ModelResponse:
    """Version, training parameters, data checksums, evaluation metrics, when the model was
    trained and its promotion decision. Corpus locations are cut to their names."""
    m = model.index.manifest
    return ModelResponse(
        version=model.version,
        service_version=hatbot.__version__,
        params=without_paths(m.get("params", {})),
        data=without_paths(m.get("data", {})),
        metrics=m.get("metrics", {}),
        vocabulary=m.get("vocabulary", {}),
        code=m.get("code", {}),
        trained_at=datetime.fromtimestamp(model.trained_at, UTC),
        promotion=promotion_of(m),
    )


@router.get("/healthz", tags=["operations"], summary="Liveness")
async def healthz(request: Request) -> HealthResponse:
    """200 while the process is up and serving requests, with the model version serving
    (null before one is loaded)."""
    models: ModelManager = request.state.models
    current = models.current
    return HealthResponse(status="ok", model_version=current.version if current else None)


@router.head("/healthz", include_in_schema=False)
async def healthz_head() -> Response:
    return Response(media_type="application/json")


@router.get(
    "/readyz",
    tags=["operations"],
    summary="Readiness",
    response_model=HealthResponse,
    responses={
        503: {
            "model": ReadinessResponse,
            "description": "No model loaded yet; what the store's trainer is preparing.",
        }
    },
)
async def readyz(request: Request) -> HealthResponse | JSONResponse:
    """200 once a model is loaded and warmed up; 503 before, saying what a trainer is
    preparing (`training` with its stage and steps, or `failed` with its message)."""
    models: ModelManager = request.state.models
    if models.current is None:
        body = ReadinessResponse.model_validate(readiness(models))
        return JSONResponse(
            body.model_dump(exclude_none=True),
            status_code=503,
            headers={"Retry-After": RETRY_AFTER},
        )
    return HealthResponse(status="ready", model_version=models.current.version)


@router.head("/readyz", include_in_schema=False)
async def readyz_head(request: Request) -> Response:
    models: ModelManager = request.state.models
    status = 200 if models.current is not None else 503
    return Response(status_code=status, media_type="application/json")
