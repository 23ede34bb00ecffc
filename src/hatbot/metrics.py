"""The service's Prometheus metrics, never labelled by a user's word.

hatbot's own are prefixed `hatbot_`. The HTTP ones keep the names, labels, types and
buckets of prometheus-fastapi-instrumentator's defaults (what the dashboard and the
alerts query), but `hatbot.app.RequestMetricsMiddleware` records them, in the same pass as
the access log. A model trainer's progress (`hatbot_training_*`) is read from its progress
file at each scrape (`TrainingProgressCollector`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hatbot import progress

# Latency buckets from 1 ms to the host's 1 s timeout and beyond (per route).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5)
# The instrumentator's many-bucket histogram over all routes (its defaults).
LATENCY_HIGHR_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5),
    *(4, 4.5, 5, 7.5, 10, 30, 60),
)


@dataclass(frozen=True)
class Metrics:
    """The service's custom metrics, registered on one registry (a fresh one per test app)."""

    model_info: Info
    model_loaded: Gauge
    model_loads: Counter
    model_load_failures: Counter
    model_trained: Gauge
    model_pointer_mismatch: Gauge
    model_refused: Gauge
    host_soft: Gauge
    hat_everyday: Gauge
    unknown_words: Counter
    short_answers: Counter
    answers: Counter
    in_progress: Gauge
    requests: Counter
    request_size: Summary
    response_size: Summary
    latency_highr: Histogram
    latency: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            model_info=Info("hatbot_model", "The model version being served.", registry=registry),
            model_loaded=Gauge(
                "hatbot_model_loaded",
                "1 when a model is loaded and warmed up, else 0.",
                registry=registry,
                # Several workers: 1 only when every worker serves a model.
                multiprocess_mode="min",
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
            model_trained=Gauge(
                "hatbot_model_trained_timestamp_seconds",
                "When the serving model was trained (Unix time; 0 before a model loads).",
                registry=registry,
                multiprocess_mode="min",
            ),
            model_pointer_mismatch=Gauge(
                "hatbot_model_pointer_mismatch",
                "1 while the store's pointer names a version other than the one serving "
                "(loading it, or refused), else 0.",
                registry=registry,
                multiprocess_mode="max",
            ),
            model_refused=Gauge(
                "hatbot_model_refused",
                "1 while the version the pointer names was refused (unreadable, or its "
                "folder is not named by its version) and its folder has not changed since.",
                registry=registry,
                multiprocess_mode="max",
            ),
            # The process's running estimates of the host's ways (docs/STRATEGY.md, "The
            # host's mode"); each worker has its own, the newest set is shown.
            host_soft=Gauge(
                "hatbot_host_soft_probability",
                "Estimated probability that the host plays soft, from the hints of its guess "
                "calls (0.5 before any).",
                registry=registry,
                multiprocess_mode="livemostrecent",
            ),
            hat_everyday=Gauge(
                "hatbot_hat_everyday_probability",
                "Estimated probability that the host's hat holds everyday words rather than "
                "the corpus's mid-frequency ones, from the words it asks to explain.",
                registry=registry,
                multiprocess_mode="livemostrecent",
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
                multiprocess_mode="livesum",
            ),
            requests=Counter(
                "http_requests_total",
                "Total number of requests by method, status and handler.",
                ["method", "status", "handler"],
                registry=registry,
            ),
            request_size=Summary(
                "http_request_size_bytes",
                "Content length of incoming requests by handler. Only value of header is "
                "respected. Otherwise ignored. No percentile calculated. ",
                ["handler"],
                registry=registry,
            ),
            response_size=Summary(
                "http_response_size_bytes",
                "Content length of outgoing responses by handler. Only value of header is "
                "respected. Otherwise ignored. No percentile calculated. ",
                ["handler"],
                registry=registry,
            ),
            latency_highr=Histogram(
                "http_request_duration_highr_seconds",
                "Latency with many buckets but no API specific labels. Made for more "
                "accurate percentile calculations. ",
                buckets=LATENCY_HIGHR_BUCKETS,
                registry=registry,
            ),
            latency=Histogram(
                "http_request_duration_seconds",
                "Latency with only few buckets by handler. Made to be only used if "
                "aggregation by handler is important. ",
                ["method", "handler"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
        )


class TrainingProgressCollector(Collector):
    """What the store's trainer is doing, read (by `read`) from its progress file at each scrape:
    `hatbot_training_progress_ratio` (steps of the stage done / its steps), the stage and
    status as `hatbot_training_info{stage, status, model}` = 1, and the file's last update
    (`hatbot_training_updated_timestamp_seconds`). Nothing is exported without a file."""

    def __init__(self, read: Callable[[], progress.Progress | None]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        found = self.read()
        if found is None:
            return
        ratio = found.done / found.of if found.of > 0 else 0.0
        yield GaugeMetricFamily(
            "hatbot_training_progress_ratio",
            "Steps of the trainer's current stage done, as a share of its steps.",
            value=min(max(ratio, 0.0), 1.0),
        )
        info = GaugeMetricFamily(
            "hatbot_training_info",
            "The trainer's stage and status (training, done, failed) and the model it makes.",
            labels=["stage", "status", "model"],
        )
        # The values are the trainer's own names; cut so a broken file cannot blow up a label.
        info.add_metric([found.stage[:64], found.status, found.model[:32]], 1.0)
        yield info
        yield GaugeMetricFamily(
            "hatbot_training_updated_timestamp_seconds",
            "When the trainer last wrote its progress (Unix time).",
            value=found.updated,
        )
