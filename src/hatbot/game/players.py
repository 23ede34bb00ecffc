"""Players of the game engine: hatbot in process, any bot over HTTP, and the two baselines.

Every player answers the host's two questions asynchronously and reports what it
said, how long it took and, when the host would have seen an empty list, why.
The HTTP player follows docs/GAME.md to the letter: a reply that is late, not 200, or
not a JSON list of strings is an empty list.

The baselines play as the other teams of the course do (`hatbot.game.recipes`):

- `StarterKitPlayer`: fastText's own nearest neighbours for both questions (for a
  guess, of the hints joined by spaces, as one "word" made of subwords): the starter
  kit and the demo notebook's players, whatever model they are given.
- `CleanNaivePlayer`: nearest neighbours to explain, nearest neighbours of the mean
  hint vector to guess.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx
import numpy as np
from numpy.typing import NDArray

from hatbot.game.recipes import Recipe

# The host's limits (docs/GAME.md): 1 s for a question, 60 s for the ping before a game.
ANSWER_TIMEOUT = 1.0
PING_TIMEOUT = 60.0

TIMEOUT = "timeout"
CONNECTION_ERROR = "connection error"
NOT_A_LIST = "not a JSON list of strings"


@dataclass(frozen=True)
class Answer:
    """One reply of a player: the words the host reads, the time taken, and why it failed."""

    words: list[str]
    seconds: float
    # Why the host saw an empty list ("timeout", "http 500", ...); None for a valid reply.
    failure: str | None = None


class Player(Protocol):
    """A bot as the game engine sees it."""

    name: str

    async def explain(self, word: str, n_words: int) -> Answer:
        """Words that explain `word` (the host asks for `n_words`)."""
        ...

    async def guess(self, hints: list[str], n_words: int) -> Answer:
        """Guesses for the word the hints explain (the host asks for `n_words`)."""
        ...


class SyncStrategy(Protocol):
    """What `StrategyPlayer` needs: `hatbot.strategy.Strategy` or anything shaped like it."""

    def explain(self, word: str, n_words: int) -> list[str]: ...

    def guess(self, hints: Sequence[str], n_words: int) -> list[str]: ...


def _is_word_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(w, str) for w in value)


class StrategyPlayer:
    """hatbot's strategy in process: the sync call runs directly, timed with a monotonic clock.

    The strategy answers in milliseconds, so the call runs on the event loop
    rather than in a thread. An exception counts as the empty list the host would
    get from the service's HTTP 500. With `timeout` set, a slower answer is
    empty too, as over HTTP; it is off by default so results stay reproducible.
    """

    def __init__(self, name: str, strategy: SyncStrategy, timeout: float | None = None) -> None:
        self.name = name
        self.strategy = strategy
        self.timeout = timeout

    def _answer(self, call: Any, *args: Any) -> Answer:
        start = time.perf_counter()
        try:
            words = call(*args)
        except Exception as exc:  # the host sees an empty list, whatever went wrong
            return Answer([], time.perf_counter() - start, f"error {type(exc).__name__}")
        seconds = time.perf_counter() - start
        if not _is_word_list(words):
            return Answer([], seconds, NOT_A_LIST)
        if self.timeout is not None and seconds > self.timeout:
            return Answer([], seconds, TIMEOUT)
        return Answer(list(words), seconds)

    async def explain(self, word: str, n_words: int) -> Answer:
        return self._answer(self.strategy.explain, word, n_words)

    async def guess(self, hints: list[str], n_words: int) -> Answer:
        return self._answer(self.strategy.guess, list(hints), n_words)


class HttpPlayer:
    """A bot behind a URL, asked exactly as the host asks (docs/GAME.md, "HTTP protocol").

    The timeout bounds the whole call (connect, send, wait, read), so a bot that
    trickles its reply is late too. Use it as an async context manager, or call
    `aclose()`, unless you passed your own client.
    """

    def __init__(
        self,
        name: str,
        url: str,
        timeout: float = ANSWER_TIMEOUT,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(timeout=httpx.Timeout(max(timeout, PING_TIMEOUT)))

    async def __aenter__(self) -> HttpPlayer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def ping(self) -> bool:
        """`GET /` as the host does before a game: True for a 200 within 60 s."""
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                response = await self.client.get(self.url + "/")
        except (TimeoutError, httpx.HTTPError):
            return False
        return response.status_code == 200

    async def _ask(self, path: str, params: tuple[tuple[str, str | int], ...]) -> Answer:
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.client.get(
                    self.url + path, params=params, timeout=self.timeout
                )
        except (TimeoutError, httpx.TimeoutException):
            return Answer([], time.perf_counter() - start, TIMEOUT)
        except httpx.HTTPError:
            return Answer([], time.perf_counter() - start, CONNECTION_ERROR)
        seconds = time.perf_counter() - start
        if seconds > self.timeout:
            return Answer([], seconds, TIMEOUT)
        if response.status_code != 200:
            return Answer([], seconds, f"http {response.status_code}")
        try:
            words = json.loads(response.content)
        except ValueError:  # not JSON at all, or not UTF-8
            return Answer([], seconds, NOT_A_LIST)
        if not _is_word_list(words):
            return Answer([], seconds, NOT_A_LIST)
        return Answer(words, seconds)

    async def explain(self, word: str, n_words: int) -> Answer:
        """`GET /explain?word=W&n_words=N`."""
        return await self._ask("/explain", (("word", word), ("n_words", n_words)))

    async def guess(self, hints: list[str], n_words: int) -> Answer:
        """`GET /guess?words=h1&words=h2&...&n_words=N` (hints in order)."""
        words = tuple(("words", h) for h in hints)
        return await self._ask("/guess", (*words, ("n_words", n_words)))


def _load_fasttext(model_bin: Path) -> Any:
    import fasttext

    if not model_bin.is_file():
        raise FileNotFoundError(f"no fastText model at {model_bin}")
    return fasttext.load_model(str(model_bin))


def _timed(call: Any, *args: Any) -> Answer:
    start = time.perf_counter()
    words = call(*args)
    return Answer(words, time.perf_counter() - start)


class StarterKitPlayer:
    """The course's starter kit: fastText's nearest neighbours, nothing filtered."""

    def __init__(self, name: str, model_bin: Path) -> None:
        self.name = name
        self.model = _load_fasttext(model_bin)

    def _neighbours(self, text: str, n_words: int) -> list[str]:
        return [w for _, w in self.model.get_nearest_neighbors(text, k=n_words)]

    async def explain(self, word: str, n_words: int) -> Answer:
        return _timed(self._neighbours, word, n_words)

    async def guess(self, hints: list[str], n_words: int) -> Answer:
        # The starter kit asks fastText about the joined hints as if they were one word.
        return _timed(self._neighbours, " ".join(hints), n_words)


class CleanNaivePlayer:
    """A team that cleaned the corpus: neighbours to explain, mean of the hints to guess."""

    def __init__(self, name: str, model_bin: Path) -> None:
        self.name = name
        self.model = _load_fasttext(model_bin)
        self.words: list[str] = list(self.model.get_words())
        vectors = np.stack([self.model.get_word_vector(w) for w in self.words]).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.unit: NDArray[np.float32] = vectors / np.maximum(norms, 1e-12)

    def _explain(self, word: str, n_words: int) -> list[str]:
        return [w for _, w in self.model.get_nearest_neighbors(word, k=n_words)]

    def _guess(self, hints: list[str], n_words: int) -> list[str]:
        if not hints or n_words <= 0:
            return []
        query = np.mean([self.model.get_word_vector(h) for h in hints], axis=0)
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        scores = self.unit @ query.astype(np.float32)
        banned = set(hints)
        order = np.argsort(-scores, kind="stable")
        guesses: list[str] = []
        for i in order:
            word = self.words[int(i)]
            if word not in banned:
                guesses.append(word)
                if len(guesses) == n_words:
                    break
        return guesses

    async def explain(self, word: str, n_words: int) -> Answer:
        return _timed(self._explain, word, n_words)

    async def guess(self, hints: list[str], n_words: int) -> Answer:
        return _timed(self._guess, list(hints), n_words)


def recipe_player(name: str, recipe: Recipe, model_bin: Path) -> Player:
    """The baseline player that plays as `recipe` does, with the model `model_bin`."""
    if recipe.plays == "mean":
        return CleanNaivePlayer(name, model_bin)
    return StarterKitPlayer(name, model_bin)
