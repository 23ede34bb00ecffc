"""Request and response types of the typed API (`/v1/...`), the source of the OpenAPI docs.

Upper limits come from the settings (`HATBOT_MAX_N_WORDS`, `HATBOT_MAX_WORD_LENGTH`,
`HATBOT_MAX_HINTS`), so they are checked by the routes and stated in the descriptions,
not fixed in the schema.
"""

from __future__ import annotations

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
    "cleaning in these modes (both, unless the model was trained with "
    "`strategy.hint_rules=soft` for a soft tournament); guesses never repeat or include "
    "what the rules exclude."
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


class ExplainResponse(WordsResponse):
    """Hints for the word, the most telling first; none is one the host would delete."""


class GuessResponse(WordsResponse):
    """Guesses of the hidden word, the likeliest first."""


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


class HealthResponse(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready", "not ready"] = Field(
        description="`ok` (alive), `ready` (a model serves) or `not ready` (none loaded yet).",
        examples=["ready"],
    )
    model_version: str | None = Field(
        None, description="The model serving, once one is loaded.", examples=[VERSION_EXAMPLE]
    )


class ErrorResponse(BaseModel):
    """Why a request was refused."""

    detail: Any = Field(
        description="A message, or a list of validation errors (`loc`, `msg`, `type`).",
        examples=["n_words must be between 1 and 50"],
    )
