"""Request and response types of the typed API (`/v1/...`), the source of the OpenAPI docs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Word = Field(
    min_length=1,
    max_length=64,
    description="An English word. Case and non-letters are dropped, as the host does; "
    "other alphabets are refused.",
    examples=["space"],
)
NWords = Field(5, ge=1, le=50, description="How many words to return, at most.", examples=[5])
CRITERIA_NOTE = (
    "The host's criteria this answer was made for: explanations pass the host's "
    "cleaning in both modes; guesses never repeat or include what the rules exclude."
)


class ExplainRequest(BaseModel):
    """Ask for hints that make other bots guess `word`."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"word": "space", "n_words": 5}]}
    )

    word: str = Word
    n_words: int = NWords


class GuessRequest(BaseModel):
    """Ask for guesses of the hidden word from the hints given so far, in hint order."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"words": ["nasa", "orbit", "shuttle"], "n_words": 5}]},
    )

    words: list[str] = Field(
        min_length=1,
        max_length=100,
        description="The hints so far, first hint first.",
        examples=[["nasa", "orbit", "shuttle"]],
    )
    n_words: int = NWords


class WordsResponse(BaseModel):
    """Words chosen by the model, with the model version and the rules they respect."""

    words: list[str] = Field(description="Lowercase English words, best first.")
    model_version: str = Field(description="The version of the model that answered.")
    criteria: list[Literal["soft", "hard"]] = Field(
        default=["soft", "hard"], description=CRITERIA_NOTE
    )


class ExplainResponse(WordsResponse):
    """Hints for the word, the most telling first; none is one the host would delete."""


class GuessResponse(WordsResponse):
    """Guesses of the hidden word, the likeliest first."""


class ModelResponse(BaseModel):
    """What is serving: the artifact's manifest, minus its file list."""

    version: str = Field(description="The model version (a content hash of the artifact).")
    service_version: str = Field(description="The hatbot package version.")
    params: dict[str, Any] = Field(description="Training, strategy and evaluation parameters.")
    data: dict[str, Any] = Field(description="The data snapshot it was trained on (checksums).")
    metrics: dict[str, Any] = Field(description="Evaluation metrics from the pipeline.")
    vocabulary: dict[str, Any] = Field(description="Vocabulary size, hat candidates, dimension.")
    code: dict[str, Any] = Field(description="The code version that trained it.")


class HealthResponse(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "ready", "not ready"]
    model_version: str | None = None


class ErrorResponse(BaseModel):
    """Why a request was refused."""

    detail: Any = Field(description="A message, or a list of validation errors.")
