"""Model updates without downtime: the service follows the store's `production` pointer.

A copy of the tiny store gets a second valid version (the same files under a new
name; the manifest is outside the checksummed file list) and broken ones. A real
bot polls the pointer every 0.2 s while request loops run; the pointer is swapped
atomically (temporary file, then rename) to the new version, then to a broken one.
In-process tests check the manager's rules one by one: a request keeps the model it
started with, and a broken artifact is refused with a log line while the old model
keeps serving.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry

from hatbot.config import Settings
from hatbot.index import WordIndex
from hatbot.metrics import Metrics
from hatbot.serving import ModelManager

pytestmark = pytest.mark.anyio
WORD = re.compile(r"[a-z]+")
FAILURES = re.compile(r"^hatbot_model_load_failures_total (\S+)$", re.MULTILINE)


def point(store: Path, version: str) -> None:
    """Move the production pointer as promotion does: a temporary file renamed over it."""
    tmp = store / ".production.test.tmp"
    tmp.write_text(version + "\n")
    os.replace(tmp, store / "production")


def add_version(store: Path, source: str, version: str) -> Path:
    """A copy of an artifact under a new version name (its manifest says the new name)."""
    folder = store / version
    shutil.copytree(store / source, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = version
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def corrupt_vectors(folder: Path) -> None:
    vectors = folder / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    vectors.write_bytes(bytes(data))


def truncate_vectors_unchecked(folder: Path) -> None:
    """A broken file the checksums cannot catch: the manifest lists no files."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    vectors = folder / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:100])


def break_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text("{not json")


def drop_vocabulary(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "vocab.txt").unlink()


@pytest.fixture
def store(tiny_store: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny store (artifacts and pointer)."""
    copy = tmp_path / "store"
    shutil.copytree(tiny_store, copy, ignore=shutil.ignore_patterns(".*"))
    return copy


def production(store: Path) -> str:
    return (store / "production").read_text().strip()


# ---- the real service under traffic ----


async def test_swap_under_traffic_never_fails_a_request(
    store: Path, bots: ModuleType, known_words: list[str]
) -> None:
    old = production(store)
    new = add_version(store, old, "swap-new").name
    corrupt_vectors(add_version(store, old, "swap-broken"))
    url, process = bots.start_bot(store, HATBOT_RELOAD_INTERVAL="0.2")
    errors: list[str] = []
    answered: Counter[str] = Counter()  # answers per model version (typed API)
    count = 0
    done = anyio.Event()
    try:
        # New connections per call, as the host makes them (see test_e2e.py).
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=120.0, limits=limits) as http:

            async def traffic(worker: int) -> None:
                nonlocal count
                for i in range(5000):  # bounded even if the test never sets `done`
                    if done.is_set():
                        return
                    word = known_words[(worker * 7 + i) % len(known_words)]
                    try:
                        host = await http.get(
                            "/guess", params={"words": [word, *known_words[:2]], "n_words": 5}
                        )
                        typed = await http.post("/v1/guess", json={"words": [word], "n_words": 5})
                    except httpx.HTTPError as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    body = host.json() if host.status_code == 200 else None
                    if not isinstance(body, list) or not all(
                        isinstance(w, str) and WORD.fullmatch(w) for w in body
                    ):
                        errors.append(f"guess {host.status_code}: {host.text}")
                    if typed.status_code != 200:
                        errors.append(f"typed guess {typed.status_code}: {typed.text}")
                    else:
                        answered[typed.json()["model_version"]] += 1
                    count += 1

            async def wait_for(condition: Callable[[], bool]) -> None:
                with anyio.fail_after(60):  # a bound against hangs, not a timing claim
                    while not condition():
                        await anyio.sleep(0.05)

            async def serving() -> str:
                return str((await http.get("/v1/model")).json()["version"])

            async def load_failures() -> float:
                found = FAILURES.search((await http.get("/metrics")).text)
                assert found, "no hatbot_model_load_failures_total"
                return float(found.group(1))

            async with anyio.create_task_group() as group:
                for worker in range(4):
                    group.start_soon(traffic, worker)

                mark = count
                await wait_for(lambda: count >= mark + 10)
                assert await serving() == old
                point(store, new)
                with anyio.fail_after(60):
                    while await serving() != new:
                        await anyio.sleep(0.05)
                mark = count
                await wait_for(lambda: count >= mark + 10)

                point(store, "swap-broken")
                with anyio.fail_after(60):
                    while await load_failures() < 1:
                        await anyio.sleep(0.05)
                mark = count
                await wait_for(lambda: count >= mark + 10)
                done.set()

            assert errors == []
            assert await serving() == new
            assert await load_failures() >= 1
            assert (await http.get("/readyz")).json() == {"status": "ready", "model_version": new}
            assert answered[old] > 0 and answered[new] > 0
            assert set(answered) == {old, new}
    finally:
        bots.stop_bot(process)


@pytest.fixture
def known_words(tiny_index: WordIndex) -> list[str]:
    words = [w for w, ok in zip(tiny_index.words, tiny_index.eligible, strict=True) if ok]
    return words[:30]


# ---- the manager's rules, in-process ----


def manager(store: Path) -> tuple[ModelManager, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = Settings(model_store=store, reload_interval=0)
    return ModelManager(settings, Metrics.create(registry)), registry


async def test_refresh_swaps_and_a_held_model_keeps_answering(store: Path) -> None:
    old = production(store)
    new = add_version(store, old, "held-new").name
    models, registry = manager(store)
    await models.refresh()
    held = models.current  # what a request in flight holds
    assert held is not None and held.version == old
    point(store, new)
    await models.refresh()
    assert models.current is not None and models.current.version == new
    assert held.version == old
    word = held.index.words[50]
    assert held.strategy.explain(word, 5) == models.current.strategy.explain(word, 5)
    assert registry.get_sample_value("hatbot_model_loads_total") == 2
    assert registry.get_sample_value("hatbot_model_info", {"version": new}) == 1


async def test_refresh_same_pointer_keeps_the_loaded_model(store: Path) -> None:
    models, registry = manager(store)
    await models.refresh()
    first = models.current
    await models.refresh()
    assert models.current is first
    assert registry.get_sample_value("hatbot_model_loads_total") == 1


@pytest.mark.parametrize(
    "damage",
    [corrupt_vectors, truncate_vectors_unchecked, break_manifest, drop_vocabulary, None],
    ids=[
        "corrupted vectors",
        "truncated unchecked vectors",
        "manifest not json",
        "no vocabulary",
        "missing folder",
    ],
)
async def test_refresh_broken_artifact_is_refused_and_old_keeps_serving(
    store: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None] | None,
) -> None:
    old = production(store)
    models, registry = manager(store)
    await models.refresh()
    if damage is None:
        broken = "no-such-version"
    else:
        broken = add_version(store, old, "broken").name
        damage(store / broken)
    point(store, broken)
    with caplog.at_level(logging.ERROR, logger="hatbot"):
        await models.refresh()
        await models.refresh()  # a refused version is not retried at every poll
    assert models.current is not None and models.current.version == old
    assert registry.get_sample_value("hatbot_model_load_failures_total") == 1
    refusals = [r for r in caplog.records if r.name == "hatbot" and r.levelno == logging.ERROR]
    assert len(refusals) == 1
    assert f"refused model {broken}, still serving {old}" in refusals[0].getMessage()
    # A good version promoted afterwards is loaded as usual.
    point(store, add_version(store, old, "fixed").name)
    await models.refresh()
    assert models.current is not None and models.current.version == "fixed"


@pytest.mark.parametrize("pointer", ["../../etc", "bad name!", "a" * 200])
async def test_refresh_invalid_pointer_is_refused(store: Path, pointer: str) -> None:
    old = production(store)
    models, registry = manager(store)
    await models.refresh()
    (store / "production").write_text(pointer)
    await models.refresh()
    assert models.current is not None and models.current.version == old
    assert registry.get_sample_value("hatbot_model_load_failures_total") == 1


async def test_refresh_missing_pointer_keeps_serving(store: Path) -> None:
    models, _ = manager(store)
    await models.refresh()
    served = models.current
    (store / "production").unlink()
    await models.refresh()
    assert models.current is served


async def test_watch_survives_a_failing_refresh(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in one poll must not stop all later updates."""
    registry = CollectorRegistry()
    models = ModelManager(
        Settings(model_store=store, reload_interval=0.01), Metrics.create(registry)
    )
    calls = 0
    original = models.store.read

    def flaky(pointer):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk hiccup")
        return original(pointer)

    monkeypatch.setattr(models.store, "read", flaky)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(models.watch)
            while models.current is None:
                await anyio.sleep(0.01)
            group.cancel_scope.cancel()
    assert calls >= 2


# ---- refusals that must not loop, and what the metrics and logs say ----


async def test_a_folder_not_named_by_its_version_is_refused_until_it_changes(
    store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`cp -r <version> rollback` and a pointer at `rollback`: refused once, not reloaded at
    every poll; renaming the manifest's version (the folder changes) makes it loadable."""
    old = production(store)
    models, registry = manager(store)
    await models.refresh()
    shutil.copytree(store / old, store / "rollback")
    point(store, "rollback")
    with caplog.at_level(logging.ERROR, logger="hatbot"):
        for _ in range(3):
            await models.refresh()
    assert models.current is not None and models.current.version == old
    assert registry.get_sample_value("hatbot_model_load_failures_total") == 1
    assert registry.get_sample_value("hatbot_model_loads_total") == 1
    assert registry.get_sample_value("hatbot_model_refused") == 1
    assert registry.get_sample_value("hatbot_model_pointer_mismatch") == 1
    (refusal,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert refusal.startswith(f"refused model rollback, still serving {old}: ")
    assert f"its manifest says version {old}" in refusal
    # The operator fixes the folder: it is tried again at the next poll, and served.
    manifest = json.loads((store / "rollback" / "manifest.json").read_text())
    manifest["version"] = "rollback"
    (store / "rollback" / "manifest.json").write_text(json.dumps(manifest))
    await models.refresh()
    assert models.current is not None and models.current.version == "rollback"
    assert registry.get_sample_value("hatbot_model_refused") == 0
    assert registry.get_sample_value("hatbot_model_pointer_mismatch") == 0
    assert registry.get_sample_value("hatbot_model_loads_total") == 2


async def test_a_refused_version_is_retried_when_its_folder_changes(store: Path) -> None:
    old = production(store)
    models, registry = manager(store)
    await models.refresh()
    folder = add_version(store, old, "repaired")
    good = (folder / "vectors.npy").read_bytes()
    corrupt_vectors(folder)
    point(store, "repaired")
    await models.refresh()
    await models.refresh()
    assert registry.get_sample_value("hatbot_model_load_failures_total") == 1
    assert registry.get_sample_value("hatbot_model_refused") == 1
    # Pointing back at the serving version clears the refusal signal...
    point(store, old)
    await models.refresh()
    assert registry.get_sample_value("hatbot_model_refused") == 0
    # ...and back at the unchanged refused one sets it again, without a new attempt.
    point(store, "repaired")
    await models.refresh()
    assert registry.get_sample_value("hatbot_model_refused") == 1
    assert registry.get_sample_value("hatbot_model_load_failures_total") == 1
    # The file is put right (a new file renamed over the old, as a copy does).
    tmp = folder / "vectors.npy.tmp"
    tmp.write_bytes(good)
    os.replace(tmp, folder / "vectors.npy")
    await models.refresh()
    assert models.current is not None and models.current.version == "repaired"
    assert registry.get_sample_value("hatbot_model_load_failures_total") == 1


@pytest.mark.parametrize(
    "pointer", ["evil\nlevel=ERROR forged line", "nul\x00byte", "x" * 5000, "é" * 10]
)
async def test_pointer_contents_are_logged_safely(
    store: Path, caplog: pytest.LogCaptureFixture, pointer: str
) -> None:
    models, registry = manager(store)
    await models.refresh()
    (store / "production").write_text(pointer)
    with caplog.at_level(logging.WARNING, logger="hatbot"):
        await models.refresh()
    (message,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "\n" not in message and "\x00" not in message
    assert len(message) < 400
    assert repr(pointer.strip()[:80]) in message
    assert registry.get_sample_value("hatbot_model_pointer_mismatch") == 1


async def test_the_serving_model_s_training_time_is_exported(
    store: Path, tiny_index: WordIndex
) -> None:
    models, registry = manager(store)
    assert registry.get_sample_value("hatbot_model_trained_timestamp_seconds") == 0
    await models.refresh()
    assert models.current is not None
    stamp = registry.get_sample_value("hatbot_model_trained_timestamp_seconds")
    trained = tiny_index.manifest["trained_at"]
    assert stamp == models.current.trained_at and abs(stamp - trained) < 1e-3
    assert registry.get_sample_value("hatbot_model_pointer_mismatch") == 0
