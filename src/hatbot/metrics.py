"""hatbot's own Prometheus metrics, all prefixed `hatbot_`, never labelled by a user's word."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Info


@dataclass(frozen=True)
class Metrics:
    """The service's custom metrics, registered on one registry (a fresh one per test app)."""

    model_info: Info
    model_loaded: Gauge
    model_loads: Counter
    model_load_failures: Counter
    unknown_words: Counter
    short_answers: Counter
    answers: Counter
    in_progress: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            model_info=Info("hatbot_model", "The model version being served.", registry=registry),
            model_loaded=Gauge(
                "hatbot_model_loaded",
                "1 when a model is loaded and warmed up, else 0.",
                registry=registry,
            ),
            model_loads=Counter(
                "hatbot_model_loads",
                "Models loaded, at start-up or after the pointer moved.",
                registry=registry,
            ),
            model_load_failures=Counter(
                "hatbot_model_load_failures",
                "Model loads refused because the artifact was missing or broken.",
                registry=registry,
            ),
            unknown_words=Counter(
                "hatbot_unknown_words",
                "Words asked about that the vocabulary does not hold.",
                ["endpoint"],
                registry=registry,
            ),
            short_answers=Counter(
                "hatbot_short_answers",
                "Answers with fewer words than asked for (empty ones included).",
                ["endpoint"],
                registry=registry,
            ),
            answers=Counter(
                "hatbot_answers",
                "Explanations and guesses given.",
                ["endpoint"],
                registry=registry,
            ),
            # The instrumentator's own in-progress gauge ignores a passed registry
            # (prometheus-fastapi-instrumentator 8.1), so hatbot keeps it here.
            in_progress=Gauge(
                "http_requests_inprogress",
                "Requests being answered, by route template.",
                ["method", "handler"],
                registry=registry,
            ),
        )
