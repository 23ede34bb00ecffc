"""Routes: the host's protocol, the typed API, health, and a page to try the bot by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

import hatbot
from hatbot.app import Model, ModelManager
from hatbot.config import Settings
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
    ModelResponse,
)

router = APIRouter()
PAGE = (Path(__file__).parent / "page.html").read_text()
UNREADY: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorResponse, "description": "No model is loaded yet."},
}
REFUSALS: dict[int | str, dict[str, object]] = {
    422: {"model": ErrorResponse, "description": "The request is invalid; `detail` says why."},
    **UNREADY,
}
# FastAPI answers 400 when a body cannot even be decoded (bytes that are not UTF-8 text).
BODY_REFUSALS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "The body is not JSON text at all."},
    **REFUSALS,
}


# The dependencies are `async def`: FastAPI runs a plain `def` dependency in its thread
# pool, a thread hop per dependency and request for what is an attribute lookup.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.state.metrics
    return metrics


async def get_model(request: Request) -> Model:
    """The model serving right now; the request keeps it even if a swap happens meanwhile."""
    models: ModelManager = request.state.models
    model = models.current
    if model is None:
        raise HTTPException(503, "no model is loaded yet")
    return model


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ModelDep = Annotated[Model, Depends(get_model)]


def clean_word(word: str, settings: Settings, what: str = "word") -> str:
    """The word as the host reads it (lowercase letters), or a 422 saying what is wrong."""
    if not word or len(word) > settings.max_word_length:
        raise HTTPException(422, f"{what} must be 1 to {settings.max_word_length} characters long")
    # Checked before lowercasing: "İ" and "K" (Kelvin) lowercase to ASCII letters.
    if any(ch.isalpha() and not ch.isascii() for ch in word):
        raise HTTPException(422, f"{what} {word!r} is not English: only letters a-z are played")
    letters = "".join(ch for ch in word.lower() if ch.isalpha())
    if not letters:
        raise HTTPException(422, f"{what} {word!r} holds no letters")
    return letters


def check_n_words(n_words: int, settings: Settings) -> int:
    if not 1 <= n_words <= settings.max_n_words:
        raise HTTPException(422, f"n_words must be between 1 and {settings.max_n_words}")
    return n_words


def check_hints(words: list[str], settings: Settings) -> list[str]:
    """The hints a guess plays: cleaned, repeats dropped, the first `max_played_hints`."""
    if not words:
        raise HTTPException(422, "give at least one hint in `words`")
    if len(words) > settings.max_hints:
        raise HTTPException(422, f"at most {settings.max_hints} hints are accepted")
    hints = dict.fromkeys(clean_word(w, settings, "hint") for w in words)
    return list(hints)[: settings.max_played_hints]


def explain_words(model: Model, word: str, n_words: int, metrics: Metrics) -> list[str]:
    """The strategy's explanation of a cleaned word: from the artifact's precomputed table
    when it holds the word and `n_words` is within its depth, else computed now."""
    if word not in model.index.ids:
        metrics.unknown_words.labels("explain").inc()
    words = model.index.explanation(word, n_words) if model.precomputed else None
    if words is None:
        words = model.strategy.explain(word, n_words)
    metrics.answers.labels("explain").inc()
    if len(words) < n_words:
        metrics.short_answers.labels("explain").inc()
    return words


def guess_words(model: Model, hints: list[str], n_words: int, metrics: Metrics) -> list[str]:
    unknown = sum(h not in model.index.ids for h in hints)
    if unknown:
        metrics.unknown_words.labels("guess").inc(unknown)
    words = model.strategy.guess(hints, n_words)
    metrics.answers.labels("guess").inc()
    if len(words) < n_words:
        metrics.short_answers.labels("guess").inc()
    return words


@router.get("/", response_class=HTMLResponse, tags=["people"], summary="Try the bot by hand")
async def page() -> str:
    """A small page: type a word to see its explanation, or hints to see guesses."""
    return PAGE


@router.get(
    "/explain",
    response_model=list[str],
    tags=["host protocol"],
    responses=REFUSALS,
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

    None of them is one the host's cleaning deletes (in `soft` or `hard` mode).
    """
    return explain_words(
        model, clean_word(word, settings), check_n_words(n_words, settings), metrics
    )


@router.get(
    "/guess",
    response_model=list[str],
    tags=["host protocol"],
    responses=REFUSALS,
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
    hints = check_hints(words, settings)
    return guess_words(model, hints, check_n_words(n_words, settings), metrics)


@router.post("/v1/explain", tags=["typed API"], responses=BODY_REFUSALS, summary="Explain a word")
async def explain_v1(
    body: ExplainRequest, model: ModelDep, settings: SettingsDep, metrics: MetricsDep
) -> ExplainResponse:
    """Hints for a word, with the model version that chose them."""
    word = clean_word(body.word, settings)
    words = explain_words(model, word, check_n_words(body.n_words, settings), metrics)
    return ExplainResponse(
        words=words, model_version=model.version, criteria=model.strategy.explain_criteria
    )


@router.post("/v1/guess", tags=["typed API"], responses=BODY_REFUSALS, summary="Guess a word")
async def guess_v1(
    body: GuessRequest, model: ModelDep, settings: SettingsDep, metrics: MetricsDep
) -> GuessResponse:
    """Guesses from hints, with the model version that made them."""
    hints = check_hints(body.words, settings)
    words = guess_words(model, hints, check_n_words(body.n_words, settings), metrics)
    return GuessResponse(words=words, model_version=model.version)


@router.get("/v1/model", tags=["operations"], responses=UNREADY, summary="The serving model")
async def model_info(model: ModelDep) -> ModelResponse:
    """Version, training parameters, data checksums and evaluation metrics of the model."""
    m = model.index.manifest
    return ModelResponse(
        version=model.version,
        service_version=hatbot.__version__,
        params=m.get("params", {}),
        data=m.get("data", {}),
        metrics=m.get("metrics", {}),
        vocabulary=m.get("vocabulary", {}),
        code=m.get("code", {}),
    )


@router.get("/healthz", tags=["operations"], summary="Liveness")
async def healthz() -> HealthResponse:
    """200 while the process is up and serving requests."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    tags=["operations"],
    summary="Readiness",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "No model loaded yet."}},
)
async def readyz(request: Request) -> HealthResponse | JSONResponse:
    """200 once a model is loaded and warmed up; 503 before."""
    models: ModelManager = request.state.models
    if models.current is None:
        return JSONResponse(HealthResponse(status="not ready").model_dump(), status_code=503)
    return HealthResponse(status="ready", model_version=models.current.version)
