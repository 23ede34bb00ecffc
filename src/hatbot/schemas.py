"""Request and response types of the typed API (`/v1/...`), the source of the OpenAPI docs.

Upper limits come from the settings (`HATBOT_MAX_N_WORDS`, `HATBOT_MAX_WORD_LENGTH`,
`HATBOT_MAX_HINTS`), so they are checked by the routes and stated in the descriptions,
not fixed in the schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WORD_NOTE = (
    "An English word, 1 to 64 characters by default (`HATBOT_MAX_WORD_LENGTH`). Case, "
    "digits and punctuation are dropped as the host does (`C3PO` is `cpo`); a word "
    "without letters a-z, or with letters of another alphabet, is refused (422). An "
    "unknown word still gets an answer."
)
N_NOTE = "1 to 50 by default (`HATBOT_MAX_N_WORDS`)."
HINTS_NOTE = (
    "Each hint is read like a word; 1 to 100 hints by default (`HATBOT_MAX_HINTS`). "
    "Repeats are ignored and only the first 10 distinct hints are played "
    "(`HATBOT_MAX_PLAYED_HINTS`; the host never sends more)."
)
CRITERIA_NOTE = (
    "The host's criteria this answer was made for: explanations pass the host's "
    "cleaning in these modes (both, unless the host's hints have shown that it plays soft "
    "or the model was trained with `strategy.hint_rules=soft` for a soft tournament); "
    "guesses never repeat or include what the rules exclude."
)
VERSION_EXAMPLE = "411e9dd45e40"


class ExplainRequest(BaseModel):
    """Ask for hints that make other bots guess `word`."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"word": "space", "n_words": 5}]}
    )

    word: str = Field(min_length=1, description=WORD_NOTE, examples=["space"])
    n_words: int = Field(
        5, ge=1, description=f"How many hints to return, at most. {N_NOTE}", examples=[5]
    )


class GuessRequest(BaseModel):
    """Ask for guesses of the hidden word from the hints given so far, in hint order."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"words": ["nasa", "orbit", "shuttle"], "n_words": 5}]},
    )

    words: list[str] = Field(
        min_length=1,
        description=f"The hints so far, first hint first. {HINTS_NOTE}",
        examples=[["nasa", "orbit", "shuttle"]],
    )
    n_words: int = Field(
        5, ge=1, description=f"How many guesses to return, at most. {N_NOTE}", examples=[5]
    )


class WordsResponse(BaseModel):
    """Words chosen by the model, with the model version and the rules they respect."""

    words: list[str] = Field(
        description="Lowercase English words (letters a-z), best first; at most `n_words`.",
        examples=[["planet", "orbit", "nasa", "shuttle", "moon"]],
    )
    model_version: str = Field(
        description="The version of the model that answered.", examples=[VERSION_EXAMPLE]
    )
    criteria: list[Literal["soft", "hard"]] = Field(
        default=["soft", "hard"], description=CRITERIA_NOTE, examples=[["soft", "hard"]]
    )


class WordNote(BaseModel):
    """How the model read one input word: the host's cleaning, and whether it knows it."""

    given: str = Field(description="The word as it was sent.", examples=["Outer Space"])
    read_as: str = Field(
        description="The word as the host reads it: letters only, lowercased.",
        examples=["outerspace"],
    )
    rewritten: bool = Field(
        description="True when `read_as` differs from `given`.", examples=[True]
    )
    known: bool = Field(
        description="True when the model's vocabulary holds `read_as`.", examples=[False]
    )
    closest: str | None = Field(
        None,
        description="An explained word the vocabulary lacks: the closest spelling explained "
        "in its place (null when none is close, or for hints).",
        examples=["outer"],
    )
    played: bool = Field(
        True,
        description="For a hint: false when it repeats an earlier one or comes after the "
        "hints a guess plays.",
        examples=[True],
    )
    note: str = Field(
        "",
        description="What happened to the word, in a sentence (empty when it was read as "
        "sent and is known).",
        examples=["read as 'outerspace': the host keeps letters only, lowercased"],
    )


class HintNote(BaseModel):
    """One hint of an explanation and the host modes it survives."""

    word: str = Field(description="The hint.", examples=["orbit"])
    survives: list[Literal["soft", "hard"]] = Field(
        description="The host modes whose cleaning keeps this hint as a clue for the word "
        "(the hard mode also needs a WordNet word with another stem).",
        examples=[["soft", "hard"]],
    )


class ExplainResponse(WordsResponse):
    """Hints for the word, the most telling first; none is one the host would delete.

    The hints are chosen for the other bots' models, not for people: each is a word that
    simulated guessers of the opponents' recipes rank the target high for."""

    input: list[WordNote] = Field(
        description="How the word was read (one entry).",
        examples=[[{"given": "space", "read_as": "space", "rewritten": False, "known": True}]],
    )
    hints: list[HintNote] = Field(
        description="Each hint of `words`, in order, with the host modes it survives.",
        examples=[[{"word": "orbit", "survives": ["soft", "hard"]}]],
    )


class GuessResponse(WordsResponse):
    """Guesses of the hidden word, the likeliest first."""

    input: list[WordNote] = Field(
        description="How each hint was read, in the order sent.",
        examples=[[{"given": "NASA", "read_as": "nasa", "rewritten": True, "known": True}]],
    )


class ModelResponse(BaseModel):
    """What is serving: the artifact's manifest, minus its file list."""

    version: str = Field(
        description="The model version (a content hash of the artifact).",
        examples=[VERSION_EXAMPLE],
    )
    service_version: str = Field(description="The hatbot package version.", examples=["0.1.0"])
    params: dict[str, Any] = Field(
        description="Training, strategy and evaluation parameters.",
        examples=[{"train": {"dim": 100, "epoch": 5}, "strategy": {"min_hint_count": 10}}],
    )
    data: dict[str, Any] = Field(
        description="The data snapshot it was trained on (checksums).",
        examples=[{"id": "c30a04297b16449c", "corpus": {"sha256": "c1170c31d78d34db..."}}],
    )
    metrics: dict[str, Any] = Field(
        description="Evaluation metrics from the pipeline.",
        examples=[{"score_vs_panel": 0.42}],
    )
    vocabulary: dict[str, Any] = Field(
        description="Vocabulary size, hat candidates, dimension.",
        examples=[{"words": 5901, "hat_eligible": 1121, "dim": 24}],
    )
    code: dict[str, Any] = Field(
        description="The code version that trained it.",
        examples=[{"git_commit": "8367560", "hatbot": "0.1.0"}],
    )
    trained_at: datetime = Field(
        description="When the model was trained (UTC): the manifest's `trained_at`, else the "
        "newest modification time of the artifact's files.",
        examples=["2026-12-01T20:14:03Z"],
    )
    promotion: dict[str, Any] | None = Field(
        description="The promotion decision recorded in the manifest (`promotion`, or the "
        "metrics' `decision`), or null when none is recorded.",
        examples=[{"promoted": True, "reason": "promoted: no production model yet"}],
    )


class HealthResponse(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready"] = Field(
        description="`ok` (alive) or `ready` (a model serves).", examples=["ready"]
    )
    model_version: str | None = Field(
        None, description="The model serving, once one is loaded.", examples=[VERSION_EXAMPLE]
    )


class ReadinessResponse(BaseModel):
    """Not ready: no model is loaded yet, and what the store's trainer is preparing."""

    status: Literal["not ready", "training", "failed"] = Field(
        description="`training` (a trainer is making the first model), `failed` (it stopped "
        "with an error: `message`) or `not ready` (no trainer says anything, or the model it "
        "made is not loaded yet).",
        examples=["training"],
    )
    stage: str | None = Field(None, description="The pipeline stage under way.", examples=["train"])
    step: str | None = Field(None, description="Its current step.", examples=["fastText own"])
    done: int | None = Field(None, description="Steps of the stage done...", examples=[4])
    of: int | None = Field(None, description="... of this many (0: not counted).", examples=[9])
    model: str | None = Field(
        None,
        description="Which model the trainer makes: `quick` (the first, minutes) or `full`.",
        examples=["quick"],
    )
    started: float | None = Field(
        None, description="When the run started (Unix time).", examples=[1764620000.0]
    )
    updated: float | None = Field(
        None, description="When the trainer last wrote (Unix time).", examples=[1764620123.4]
    )
    message: str | None = Field(None, description="Why the run failed, when it did.", examples=[""])
    detail: str | None = Field(
        None,
        description="The same in a sentence.",
        examples=["no model yet: training the first one, stage train 4/9; retry shortly"],
    )


class ErrorResponse(BaseModel):
    """Why a request was refused."""

    detail: Any = Field(
        description="A message, or a list of validation errors (`loc`, `msg`, `type`).",
        examples=["n_words must be between 1 and 50"],
    )
