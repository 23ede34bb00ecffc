"""Precomputed explanations: the artifact's table answers exactly what the strategy would.

The export stores `Strategy.explain(word, 10)` for every word a hat of either kind can hold
(the tournament's eligible words and the common words of everyday hats); the service
answers `/explain` and `/v1/explain` from it for n_words <= 10 and computes everything else
live. A table file that is missing, corrupt or malformed makes the artifact unloadable, like
any other file; a table that disagrees with the running strategy (an older export) is not
used.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from hatbot.api import explain_words
from hatbot.config import Settings
from hatbot.index import EXPLANATION_DEPTH, ArtifactError, WordIndex, file_sha256
from hatbot.metrics import Metrics
from hatbot.serving import ServedModel
from hatbot.store import ModelStore
from hatbot.strategy import Strategy

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def strategy(tiny_index: WordIndex) -> Strategy:
    return Strategy(tiny_index)


@pytest.fixture(scope="module")
def table_words(tiny_index: WordIndex) -> list[str]:
    table = tiny_index.explanations
    assert table is not None
    return [tiny_index.words[i] for i in np.flatnonzero(table.rows >= 0)]


@pytest.fixture(scope="module")
def other_word(tiny_index: WordIndex, table_words: list[str]) -> str:
    """A vocabulary word the table does not hold (explained live)."""
    held = set(table_words)
    return next(w for w in tiny_index.words if w not in held)


@pytest.fixture
def artifact(tiny_store: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny production artifact."""
    folder = ModelStore(tiny_store).resolve("production")
    assert folder is not None
    return Path(shutil.copytree(folder, tmp_path / "artifact"))


def rewrite(folder: Path, name: str, array: np.ndarray[Any, Any]) -> None:
    """Replace a table file and record its new checksum, so only the content is wrong."""
    np.save(folder / name, array)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = file_sha256(folder / name)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_table_holds_every_word_a_hat_of_either_kind_can_hold(
    tiny_index: WordIndex, table_words: list[str]
) -> None:
    expected = np.flatnonzero(tiny_index.eligible | tiny_index.common)
    assert [tiny_index.ids[w] for w in table_words] == expected.tolist()
    assert tiny_index.manifest["vocabulary"]["explained"] == len(expected) > 100
    assert tiny_index.manifest["files"].keys() >= {"explained.npy", "explanations.npy"}


def test_table_answers_equal_the_live_strategy(
    tiny_index: WordIndex, strategy: Strategy, table_words: list[str]
) -> None:
    for word in table_words:
        live = strategy.explain(word, EXPLANATION_DEPTH)
        for n_words in range(1, EXPLANATION_DEPTH + 1):
            assert tiny_index.explanation(word, n_words) == live[:n_words], (word, n_words)


def test_table_lacks_other_words_and_longer_answers(
    tiny_index: WordIndex, table_words: list[str], other_word: str
) -> None:
    assert tiny_index.explanation(other_word, 5) is None
    assert tiny_index.explanation("qwzxvbnm", 5) is None
    assert tiny_index.explanation(table_words[0], EXPLANATION_DEPTH + 1) is None


def test_service_answers_from_the_table_and_computes_the_rest(
    tiny_index: WordIndex, strategy: Strategy, table_words: list[str], other_word: str
) -> None:
    """`explain_words` asks the strategy only for what the table lacks."""
    asked: list[tuple[str, int]] = []

    class Counting(Strategy):
        def explain(self, word: str, n_words: int, observe: bool = True) -> list[str]:
            asked.append((word, n_words))
            return super().explain(word, n_words, observe)

    model = ServedModel(tiny_index, Counting(tiny_index), precomputed=True)
    metrics = Metrics.create(CollectorRegistry())
    for word in table_words[:: max(1, len(table_words) // 50)]:
        for n_words in (1, 5, 10):
            assert explain_words(model, word, n_words, metrics) == strategy.explain(word, n_words)
    assert asked == []
    for word, n_words in ((table_words[0], 11), (other_word, 5), ("qwzxvbnm", 5)):
        assert explain_words(model, word, n_words, metrics) == strategy.explain(word, n_words)
    assert asked == [(table_words[0], 11), (other_word, 5), ("qwzxvbnm", 5)]
    # A model whose table is not trusted never reads it.
    asked.clear()
    untrusted = ServedModel(tiny_index, Counting(tiny_index), precomputed=False)
    assert explain_words(untrusted, table_words[0], 5, metrics) == strategy.explain(
        table_words[0], 5
    )
    assert asked == [(table_words[0], 5)]


async def test_http_answers_equal_the_live_strategy(
    tiny_store: Path,
    in_process: Any,
    strategy: Strategy,
    table_words: list[str],
    other_word: str,
) -> None:
    words = [*table_words[:: max(1, len(table_words) // 20)], other_word, "qwzxvbnm"]
    async with in_process(Settings(model_store=tiny_store, reload_interval=0)) as client:
        assert isinstance(client, httpx.AsyncClient)
        for word in words:
            for n_words in (1, 5, 10, 12):
                host = await client.get("/explain", params={"word": word, "n_words": n_words})
                typed = await client.post("/v1/explain", json={"word": word, "n_words": n_words})
                expected = strategy.explain(word, n_words)
                assert host.json() == expected, (word, n_words)
                assert typed.json()["words"] == expected, (word, n_words)


def test_loaded_model_trusts_a_table_made_by_this_strategy(tiny_store: Path) -> None:
    folder = ModelStore(tiny_store).resolve("production")
    assert ServedModel.load(folder).precomputed


def _resident_kb(array: np.ndarray) -> int:
    """Resident kB of the mapping that holds `array`'s data (Linux /proc/self/smaps)."""
    address = array.__array_interface__["data"][0]
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            start, end = (int(x, 16) for x in head.split("-"))
            inside = start <= address < end
        elif inside and head == "Rss:":
            return int(line.split()[1])
    raise AssertionError("no mapping holds the array")


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
def test_twins_leave_memory_after_the_load_checks(tiny_store: Path) -> None:
    """The checks at load explain a few words live (reading the twins); then the twins'
    pages leave the process, and a live explanation still reads them right: the first
    `max_twins` twins of the recipes it simulates, and their joined rows (`joined_hints`);
    the other twins are never read."""
    model = ServedModel.load(ModelStore(tiny_store).resolve("production"))
    params = model.strategy.params
    twins = [twin for p in model.index.proxies for twin in p.twins]
    assert len(twins) == sum(len(s) for s in model.index.manifest["twin_seeds"].values()) >= 4
    simulated = [
        twin
        for p in model.index.proxies
        if params.explain_proxy_weights.get(p.name, 0) > 0
        for twin in p.twins[: params.max_twins]
    ]
    others = [twin for twin in twins if not any(twin is t for t in simulated)]
    assert simulated and others
    assert params.joined_hints
    joined = [twin.joined for twin in simulated if twin.joined is not None]
    assert joined
    word = model.index.words[int(np.flatnonzero(model.index.explanations.rows >= 0)[0])]
    before = model.index.explanation(word, EXPLANATION_DEPTH)
    assert all(_resident_kb(twin.vectors) == 0 for twin in twins)
    assert all(_resident_kb(rows) == 0 for rows in joined)
    assert model.strategy.explain(word, EXPLANATION_DEPTH) == before
    assert all(_resident_kb(twin.vectors) > 0 for twin in simulated)
    assert all(_resident_kb(rows) > 0 for rows in joined)
    assert all(_resident_kb(twin.vectors) == 0 for twin in others)


def test_a_table_from_another_strategy_is_not_used(
    artifact: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every row shifted by one hint: valid ids, checksums match, but not this strategy's."""
    hints = np.load(artifact / "explanations.npy")
    rewrite(artifact, "explanations.npy", np.roll(hints, 1, axis=1))
    with caplog.at_level(logging.WARNING, logger="hatbot"):
        model = ServedModel.load(artifact)
    assert not model.precomputed
    assert "differ from this code's strategy" in caplog.text
    metrics = Metrics.create(CollectorRegistry())
    word = model.index.words[int(np.load(artifact / "explained.npy")[0])]
    assert explain_words(model, word, 5, metrics) == model.strategy.explain(word, 5)


def corrupt(folder: Path, name: str) -> None:
    data = bytearray((folder / name).read_bytes())
    data[-8:] = b"\x7f" * 8
    (folder / name).write_bytes(bytes(data))


def unchecked(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {}
    (folder / "manifest.json").write_text(json.dumps(manifest))


BREAKAGES: dict[str, Callable[[Path], None]] = {
    "corrupt hints": lambda f: corrupt(f, "explanations.npy"),
    "corrupt word ids": lambda f: corrupt(f, "explained.npy"),
    "missing hints": lambda f: (f / "explanations.npy").unlink(),
    "missing word ids": lambda f: (f / "explained.npy").unlink(),
    "missing, unchecked": lambda f: (unchecked(f), (f / "explanations.npy").unlink()),
    "truncated, unchecked": lambda f: (
        unchecked(f),
        (f / "explanations.npy").write_bytes((f / "explanations.npy").read_bytes()[:200]),
    ),
    "hint ids outside the vocabulary": lambda f: rewrite(
        f, "explanations.npy", np.load(f / "explanations.npy") + 10**6
    ),
    "word ids out of order": lambda f: rewrite(
        f, "explained.npy", np.load(f / "explained.npy")[::-1].copy()
    ),
    "fewer rows than words": lambda f: rewrite(
        f, "explanations.npy", np.load(f / "explanations.npy")[:-1].copy()
    ),
    "other width": lambda f: rewrite(
        f, "explanations.npy", np.load(f / "explanations.npy")[:, :5].copy()
    ),
    "missing twin": lambda f: (
        unchecked(f),
        shutil.rmtree(f / "proxy-clean_naive" / "twins" / "3"),
    ),
    "twin of other length": lambda f: rewrite(
        f,
        "proxy-starter_kit/twins/3/vectors.npy",
        np.load(f / "proxy-starter_kit/twins/3/vectors.npy")[:-1].copy(),
    ),
    "no twin seeds": lambda f: set_manifest(f, "twin_seeds", {}),
    "twin seeds not by recipe": lambda f: set_manifest(f, "twin_seeds", [2, 3]),
    "twin seed not a number": lambda f: set_manifest(
        f, "twin_seeds", {"starter_kit": ["../../proxy-starter_kit"]}
    ),
    "float hints": lambda f: rewrite(
        f, "explanations.npy", np.load(f / "explanations.npy").astype(np.float32)
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_table_refuses_the_artifact(artifact: Path, breakage: str) -> None:
    BREAKAGES[breakage](artifact)
    with pytest.raises(ArtifactError):
        WordIndex(artifact)


def set_manifest(folder: Path, key: str, value: object) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest[key] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))


async def test_a_host_known_to_play_soft_gets_hints_for_its_rules(
    tiny_store: Path, in_process: Any, tiny_index: WordIndex, table_words: list[str]
) -> None:
    """The host's guess calls whose hints WordNet does not know show a soft host
    (hatbot.host_mode): `/explain` then answers by the soft host's rules, computed live
    rather than from the table's hints for either mode. A person's calls count for nothing."""
    params = Strategy(tiny_index).params.model_copy(update={"hint_rules": "soft"})
    soft = Strategy(tiny_index, params)
    unknown = [w for w, k in zip(tiny_index.words, tiny_index.in_wordnet, strict=True) if not k]
    words = table_words[:: max(1, len(table_words) // 20)]

    async def explanations(client: httpx.AsyncClient) -> list[list[str]]:
        return [
            (await client.get("/explain", params={"word": w, "n_words": 5})).json() for w in words
        ]

    async def guesses(client: httpx.AsyncClient, url: str) -> None:
        for k in range(1, 6):
            if url == "/guess":
                answer = await client.get(url, params={"words": unknown[:k], "n_words": 5})
            else:
                answer = await client.post(url, json={"words": unknown[:k], "n_words": 5})
            assert answer.status_code == 200, answer.text

    async with in_process(Settings(model_store=tiny_store, reload_interval=0)) as client:
        assert isinstance(client, httpx.AsyncClient)
        await guesses(client, "/v1/guess")
        either = await explanations(client)
        assert either == [tiny_index.explanation(w, 5) for w in words]
        await guesses(client, "/guess")
        answers = await explanations(client)
        assert answers == [soft.explain(w, 5) for w in words] != either
        typed = await client.post("/v1/explain", json={"word": words[0], "n_words": 5})
        assert typed.json()["criteria"] == ["soft"]


def metric(text: str, name: str) -> float:
    """The value of a sample with no labels on a Prometheus page."""
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


async def test_the_host_estimates_are_on_the_metrics_page(
    tiny_store: Path, in_process: Any, tiny_index: WordIndex
) -> None:
    """`/metrics` shows the process's estimates of the host's mode and hat kind as the
    host's own calls move them; a person's calls move neither."""
    unknown = [w for w, k in zip(tiny_index.words, tiny_index.in_wordnet, strict=True) if not k]
    everyday = [
        w
        for w, c, e in zip(tiny_index.words, tiny_index.common, tiny_index.eligible, strict=True)
        if c and not e
    ]
    assert len(unknown) >= 5 and len(everyday) >= 5

    async def estimates(client: httpx.AsyncClient) -> tuple[float, float]:
        text = (await client.get("/metrics")).text
        return (
            metric(text, "hatbot_host_soft_probability"),
            metric(text, "hatbot_hat_everyday_probability"),
        )

    async with in_process(Settings(model_store=tiny_store, reload_interval=0)) as client:
        assert isinstance(client, httpx.AsyncClient)
        assert await estimates(client) == (0.5, 0.0)
        for k in range(1, 6):
            await client.post("/v1/guess", json={"words": unknown[:k], "n_words": 5})
        for word in everyday[:5]:
            await client.post("/v1/explain", json={"word": word, "n_words": 5})
        assert await estimates(client) == (0.5, 0.0)
        for k in range(1, 6):
            answer = await client.get("/guess", params={"words": unknown[:k], "n_words": 5})
            assert answer.status_code == 200, answer.text
        for word in everyday[:5]:
            answer = await client.get("/explain", params={"word": word, "n_words": 5})
            assert answer.status_code == 200, answer.text
        soft, everyday_hat = await estimates(client)
        assert soft > 0.999 and everyday_hat > 0.99
