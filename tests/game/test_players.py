"""Players: the host's HTTP protocol, hatbot in process, and the two baseline recipes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Query, Request, Response

from hatbot.game.players import (
    Answer,
    CleanNaivePlayer,
    HttpPlayer,
    StarterKitPlayer,
    StrategyPlayer,
)
from hatbot.game.recipes import RECIPES
from hatbot.pipeline.panel import train_baseline_models


def _bot(behaviour: str, seen: list[str] | None = None) -> FastAPI:
    """A bot that answers every question the same way (`behaviour`), recording the URLs."""
    app = FastAPI()

    @app.get("/")
    def ping() -> Response:
        return Response("{}", status_code=503 if behaviour == "down" else 200)

    async def answer(request: Request) -> Any:
        if seen is not None:
            seen.append(str(request.url))
        if behaviour == "slow":
            await asyncio.sleep(0.5)
        replies: dict[str, Response] = {
            "good": Response(json.dumps(["orbit", "star"]), media_type="application/json"),
            "slow": Response(json.dumps(["orbit"]), media_type="application/json"),
            "http500": Response("boom", status_code=500),
            "not json": Response("orbit, star", media_type="text/plain"),
            "truncated": Response('["orbit", ', media_type="application/json"),
            "object": Response(json.dumps({"words": ["orbit"]}), media_type="application/json"),
            "numbers": Response(json.dumps(["orbit", 7]), media_type="application/json"),
            "string": Response(json.dumps("orbit"), media_type="application/json"),
            "not utf8": Response(b'["\xff"]', media_type="application/json"),
        }
        return replies[behaviour]

    @app.get("/explain")
    async def explain(request: Request, word: str, n_words: int) -> Any:
        return await answer(request)

    @app.get("/guess")
    async def guess(request: Request, words: Annotated[list[str], Query()], n_words: int) -> Any:
        return await answer(request)

    return app


def _player(behaviour: str, timeout: float = 1.0, seen: list[str] | None = None) -> HttpPlayer:
    transport = httpx.ASGITransport(app=_bot(behaviour, seen))
    client = httpx.AsyncClient(transport=transport)
    return HttpPlayer("bot", "http://bot.test/", timeout=timeout, client=client)


@pytest.mark.anyio
async def test_http_player_speaks_the_host_protocol() -> None:
    seen: list[str] = []
    player = _player("good", seen=seen)
    async with player.client:
        explained = await player.explain("planet", 5)
        guessed = await player.guess(["orbit", "star", "moon"], 5)
    assert explained == Answer(["orbit", "star"], explained.seconds, None)
    assert guessed.words == ["orbit", "star"] and guessed.failure is None
    assert seen == [
        "http://bot.test/explain?word=planet&n_words=5",
        "http://bot.test/guess?words=orbit&words=star&words=moon&n_words=5",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("behaviour", "failure"),
    [
        ("http500", "http 500"),
        ("not json", "not a JSON list of strings"),
        ("truncated", "not a JSON list of strings"),
        ("object", "not a JSON list of strings"),
        ("numbers", "not a JSON list of strings"),
        ("string", "not a JSON list of strings"),
        ("not utf8", "not a JSON list of strings"),
    ],
)
async def test_http_player_counts_a_bad_reply_as_empty(behaviour: str, failure: str) -> None:
    player = _player(behaviour)
    async with player.client:
        for answer in (await player.explain("planet", 5), await player.guess(["orbit"], 5)):
            assert answer.words == []
            assert answer.failure == failure


@pytest.mark.anyio
async def test_http_player_counts_a_late_reply_as_empty() -> None:
    player = _player("slow", timeout=0.2)
    async with player.client:
        answer = await player.guess(["orbit"], 5)
    assert answer.words == [] and answer.failure == "timeout"
    assert 0.2 <= answer.seconds < 0.45


@pytest.mark.anyio
async def test_http_player_reports_a_refused_connection() -> None:
    # Port 9 (discard) on the loopback interface has no listener here.
    async with HttpPlayer("gone", "http://127.0.0.1:9") as player:
        answer = await player.explain("planet", 5)
        assert answer.words == [] and answer.failure == "connection error"
        assert await player.ping() is False


@pytest.mark.anyio
async def test_http_player_pings_with_get_root() -> None:
    player = _player("good")
    async with player.client:
        assert await player.ping() is True
    down = _player("down")
    async with down.client:
        assert await down.ping() is False


class _Strategy:
    """A stand-in for `hatbot.strategy.Strategy`: fixed answers, or a failure."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[Any, ...]] = []

    def explain(self, word: str, n_words: int) -> list[str]:
        self.calls.append(("explain", word, n_words))
        if self.fail:
            raise KeyError(word)
        return ["orbit", "star"][:n_words]

    def guess(self, hints: Sequence[str], n_words: int) -> list[str]:
        self.calls.append(("guess", tuple(hints), n_words))
        return ("planet",) if self.fail else ["planet", "moon"][:n_words]  # type: ignore[return-value]


@pytest.mark.anyio
async def test_strategy_player_times_the_sync_strategy() -> None:
    strategy = _Strategy()
    player = StrategyPlayer("hatbot", strategy)
    explained = await player.explain("planet", 1)
    guessed = await player.guess(["orbit", "star"], 2)
    assert explained.words == ["orbit"] and explained.failure is None
    assert guessed.words == ["planet", "moon"]
    assert 0 <= explained.seconds < 0.1
    assert strategy.calls == [("explain", "planet", 1), ("guess", ("orbit", "star"), 2)]


@pytest.mark.anyio
async def test_strategy_player_counts_errors_as_empty() -> None:
    player = StrategyPlayer("hatbot", _Strategy(fail=True))
    explained = await player.explain("planet", 5)
    assert explained.words == [] and explained.failure == "error KeyError"
    guessed = await player.guess(["orbit"], 5)
    assert guessed.words == [] and guessed.failure == "not a JSON list of strings"


@pytest.mark.anyio
async def test_strategy_player_answers_from_tiny_index(request: pytest.FixtureRequest) -> None:
    try:
        index = request.getfixturevalue("tiny_index")
    except pytest.FixtureLookupError:
        pytest.skip("tests/conftest.py has no `tiny_index` fixture yet")
    from hatbot.strategy import Strategy

    player = StrategyPlayer("hatbot", Strategy(index))
    word = next(w for w, ok in zip(index.words, index.eligible, strict=True) if ok)
    explained = await player.explain(word, 5)
    assert explained.failure is None and 0 < len(explained.words) <= 5
    guessed = await player.guess(explained.words, 5)
    assert guessed.failure is None and 0 < len(guessed.words) <= 5


def test_train_baseline_models_caches_by_corpus_seed_and_args(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hatbot.pipeline import train

    trained: list[list[str]] = []

    def fake_run_jobs(jobs: list[train.Job], parallel: int = 2, **_: Any) -> None:
        trained.append([job.out.name for job in jobs])
        for job in jobs:
            assert job.keep_bin and job.args["thread"] == 1
            # Each model by its own recipe: the library defaults, or the notebook's dims.
            assert job.args == RECIPES[job.out.name].fasttext_args()
            # Training reads a shuffled copy, never the corpus itself.
            assert job.corpus.parent == tmp_path / "out" and job.corpus.is_file()
            (job.out / "model.bin").write_bytes(b"model")
            (job.out / "done.json").write_text("{}")

    monkeypatch.setattr(train, "run_jobs", fake_run_jobs)
    clean, raw = tmp_path / "clean.txt", tmp_path / "raw.txt"
    clean.write_text("a b\nc d\n")
    raw.write_text("A b\nC d\n")
    out = tmp_path / "out"
    models = train_baseline_models(clean, raw, out, seed=0)
    assert models == {n: out / n / "model.bin" for n in RECIPES}
    train_baseline_models(clean, raw, out, seed=0)
    train_baseline_models(clean, raw, out, seed=1)
    raw.write_text("A b\nC d\nE f\n")
    train_baseline_models(clean, raw, out, seed=1)
    raw_recipes = [n for n, r in RECIPES.items() if r.corpus == "raw"]
    assert "starter_kit" in raw_recipes and "clean_naive" not in raw_recipes
    assert trained == [list(RECIPES), [], list(RECIPES), raw_recipes]
    train_baseline_models(clean, raw, out, seed=2, recipes=("clean_naive",))
    assert trained[-1] == ["clean_naive"]
    assert not list(out.glob("*.shuffled.txt"))


def test_train_baseline_models_trains_real_tiny_models(baseline_models: dict[str, Path]) -> None:
    for name, path in baseline_models.items():
        assert path.is_file() and path.name == "model.bin", name
        done = json.loads((path.parent / "done.json").read_text())
        assert done["args"]["thread"] == 1 and done["args"]["minn"] == 3
        assert done["words"] > 500


def _query_word(model: Any) -> str:
    # The corpus slice is alt.atheism: "god" is frequent there.
    assert "god" in model.get_words()
    return "god"


@pytest.mark.anyio
async def test_starter_kit_player_answers_with_fasttext_neighbours(
    baseline_models: dict[str, Path],
) -> None:
    player = StarterKitPlayer("starter", baseline_models["starter_kit"])
    word = _query_word(player.model)
    explained = await player.explain(word, 5)
    assert explained.words == [w for _, w in player.model.get_nearest_neighbors(word, k=5)]
    assert explained.failure is None and len(explained.words) == 5
    hints = ["religion", "belief"]
    guessed = await player.guess(hints, 4)
    expected = [w for _, w in player.model.get_nearest_neighbors("religion belief", k=4)]
    assert guessed.words == expected and len(expected) == 4


@pytest.mark.anyio
async def test_clean_naive_player_guesses_by_the_mean_of_hints(
    baseline_models: dict[str, Path],
) -> None:
    player = CleanNaivePlayer("naive", baseline_models["clean_naive"])
    model = player.model
    word = _query_word(model)
    explained = await player.explain(word, 5)
    assert explained.words == [w for _, w in model.get_nearest_neighbors(word, k=5)]
    # One hint: the mean is the hint itself, so the guesses are fastText's neighbours.
    single = await player.guess([word], 5)
    assert single.words == explained.words
    # Several hints: cosine to the mean vector over the vocabulary, hints left out.
    hints = explained.words[:3]
    guessed = await player.guess(hints, 5)
    words = list(model.get_words())
    vectors = np.stack([model.get_word_vector(w) for w in words])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = np.mean([model.get_word_vector(h) for h in hints], axis=0)
    scores = vectors @ (query / np.linalg.norm(query))
    ranked = [words[i] for i in np.argsort(-scores, kind="stable") if words[i] not in hints]
    assert guessed.words == ranked[:5]
    assert not set(guessed.words) & set(hints)
    assert (await player.guess([], 5)).words == []
