"""Pipeline parameters: one versioned file (`params.yaml`), overridable from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hatbot.game.recipes import RECIPES
from hatbot.strategy import StrategyParams

CANONICAL_CORPUS_URL = "http://qwone.com/~jason/20Newsgroups/20news-19997.tar.gz"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The most twins a recipe may have (each is one more fastText model to train).
MAX_TWINS = 8


def _known_recipes(names: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in RECIPES]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"recipes {list(names)}: each once, among {', '.join(RECIPES)}")
    return names


class DataParams(_Section):
    # A URL or a local path: an archive (20news-19997 or 20news-bydate layout) or a folder.
    source: str = CANONICAL_CORPUS_URL
    # Expected sha256 of the source; None records the checksum without checking it.
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")


class PreprocessParams(_Section):
    strip_headers: bool = True
    strip_quotes: bool = True
    strip_signatures: bool = True
    strip_addresses: bool = True
    # WordNet noun lemmas for every token (the hat is lemmatized the same way).
    lemmatize: bool = False


class TrainParams(_Section):
    model: Literal["skipgram", "cbow"] = "skipgram"
    dim: int = Field(100, ge=2, le=1000)
    epoch: int = Field(10, ge=1, le=200)
    ws: int = Field(5, ge=1, le=50)
    min_count: int = Field(5, ge=1)
    # Subword n-grams: 0/0 turns them off (neighbours then are meanings, not spellings).
    minn: int = Field(0, ge=0)
    maxn: int = Field(0, ge=0)
    lr: float = Field(0.05, gt=0, le=1)
    neg: int = Field(5, ge=1)
    # One thread gives byte-identical vectors run after run; more threads are faster but not.
    threads: int = Field(1, ge=1, le=64)
    # Train the opponent recipes' proxies beside hatbot's own model (the explainer simulates
    # them, the guesser reads their hint lists); false: hatbot's own space only, the quick
    # first model of `hatbot serve --bootstrap` (docs/PIPELINE.md).
    opponents: bool = True
    # Twins of each opponent recipe: its models on its corpus shuffled by seeds 2, 3, ...;
    # a recipe not named has none. The explainer simulates the twins of the recipes it aims
    # at, and the guesser reads every model's hint lists backwards (docs/STRATEGY.md,
    # "What each recipe's proxy is worth").
    twins: dict[str, int] = Field(
        default_factory=lambda: {
            "starter_kit": 2,
            "clean_naive": 2,
            "notebook_cbow16": 4,
            "notebook_sg10": 4,
        }
    )
    # The opponent recipes hatbot trains proxies of (`hatbot.game.recipes`): not
    # notebook_sg5, whose three models add little for their CPU (docs/STRATEGY.md).
    recipes: tuple[str, ...] = ("starter_kit", "clean_naive", "notebook_cbow16", "notebook_sg10")
    # The recipes whose proxy trains on its corpus shuffled (by the seed after its twins')
    # rather than in order. One thread on the corpus in order (grouped by newsgroup) makes
    # a model unlike any other team's: wasted on reading a bot's hints, yet the explainer's
    # simulated guessers gain from its other view (docs/STRATEGY.md, "Models of a recipe").
    shuffled_proxies: tuple[str, ...] = ("notebook_cbow16", "notebook_sg10")
    # Precompute hatbot's explanation of every word a hat can hold (the service looks them
    # up, and explains any other word live); false: every explanation is computed when asked.
    explanation_table: bool = True

    _recipes_known = field_validator("recipes", "shuffled_proxies")(_known_recipes)

    @field_validator("twins")
    @classmethod
    def _twins_known(cls, twins: dict[str, int]) -> dict[str, int]:
        _known_recipes(tuple(twins))
        if any(not 0 <= n <= MAX_TWINS for n in twins.values()):
            raise ValueError(f"twins {twins}: between 0 and {MAX_TWINS} per recipe")
        return twins


class EvaluateParams(_Section):
    hat_size: int = Field(200, ge=2)
    seed: int = 0
    criteria: tuple[Literal["soft", "hard"], ...] = ("soft", "hard")
    n_explain: int = Field(5, ge=1, le=50)
    n_guess: int = Field(5, ge=1, le=50)
    # Share of hat-eligible words held out for evaluation (never used for tuning).
    heldout_share: float = Field(0.5, gt=0, lt=1)
    # fastText arguments overriding the library defaults of the baseline panel's models
    # (empty: the real recipe; tests shrink it, e.g. {bucket: 20000, dim: 16}).
    panel_args: dict[str, int | float | str] = Field(default_factory=dict)
    # The recipes the panel fields, one bot each (`hatbot.game.recipes`).
    panel: tuple[str, ...] = tuple(RECIPES)

    _panel_known = field_validator("panel")(_known_recipes)


class PromoteParams(_Section):
    # The evaluation metric that decides promotion, and the margin it must keep.
    metric: str = "score_vs_panel"
    min_delta: float = 0.0
    # Sanity floor: a model whose metric is not above this is never promoted.
    min_score: float = 0.0


class Params(_Section):
    """Every parameter of a pipeline run."""

    data: DataParams = DataParams()
    preprocess: PreprocessParams = PreprocessParams()
    train: TrainParams = TrainParams()
    strategy: StrategyParams = StrategyParams()
    evaluate: EvaluateParams = EvaluateParams()
    promote: PromoteParams = PromoteParams()

    @model_validator(mode="after")
    def _hints_fit_the_modes(self) -> Params:
        if self.strategy.hint_rules == "soft" and "hard" in self.evaluate.criteria:
            raise ValueError(
                "strategy.hint_rules=soft gives hints the hard host deletes (stems, words "
                "WordNet lacks), so such a model is for soft tournaments only: evaluate it "
                "with evaluate.criteria=[soft]"
            )
        return self

    @classmethod
    def load(cls, path: Path | None, overrides: list[str] | None = None) -> Params:
        """Read `path` (if given) and apply `section.key=value` overrides (values are YAML;
        a deeper key such as `evaluate.panel_args.bucket=20000` sets one entry of a mapping)."""
        raw: dict[str, Any] = {}
        if path is not None:
            try:
                raw = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ValueError(f"{path} is not valid YAML: {exc}") from exc
            if not isinstance(raw, dict):
                raise ValueError(f"{path} does not hold a mapping of sections")
        for item in overrides or []:
            key, sep, value = item.partition("=")
            names = key.strip().split(".")
            if not sep or len(names) < 2 or not all(names):
                raise ValueError(f"override {item!r} is not of the form section.key=value")
            target = raw
            for name in names[:-1]:
                target = target.setdefault(name, {})
                if not isinstance(target, dict):
                    raise ValueError(f"override {item!r}: {name} is not a section")
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ValueError(f"override {item!r}: the value is not valid YAML") from exc
            if _expects_text(cls, names) and parsed is not None and not isinstance(parsed, str):
                parsed = value.strip()  # a checksum of digits, a path named 2024: text
            target[names[-1]] = parsed
        return cls.model_validate(raw)


def _expects_text(model: type[BaseModel], names: list[str]) -> bool:
    """Whether the parameter at `names` is a text field (`str` or `str | None`)."""
    field = None
    for name in names:
        field = model.model_fields.get(name)
        if field is None:
            return False
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    return field is not None and field.annotation in (str, str | None)
