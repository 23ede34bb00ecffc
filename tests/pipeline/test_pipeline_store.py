"""The model store: versioned folders, atomic pointers, scratch space that never lingers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from store_helpers import stored_versions

from hatbot.store import ModelStore


def _artifact(folder: Path, text: str = "x") -> Path:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"version": text}))
    return folder


def test_pointers_name_complete_versions_only(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    assert store.read("production") is None and store.resolve("staging") is None
    with pytest.raises(FileNotFoundError, match="no model v1"):
        store.point("production", "v1")
    store.add(_artifact(tmp_path / "built"), "v1")
    store.point("production", "v1")
    assert store.read("production") == "v1"
    assert store.resolve("production") == tmp_path / "models" / "v1"
    assert stored_versions(store) == ["v1"]
    # Only the pointer file itself remains: the temporary file was renamed over it.
    assert sorted(p.name for p in store.root.iterdir()) == ["production", "v1"]


@pytest.mark.parametrize("name", ["../escape", "", ".hidden", "a/b", "x" * 200])
def test_version_names_cannot_leave_the_store(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a model version name"):
        ModelStore(tmp_path).path(name)


def test_add_keeps_an_existing_version_and_drops_the_copy(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    store.add(_artifact(tmp_path / "a", "first"), "v1")
    staged = _artifact(tmp_path / "b", "second")
    assert store.add(staged, "v1") == store.path("v1")
    assert not staged.exists()
    assert "first" in (store.path("v1") / "manifest.json").read_text()


def test_scratch_is_removed_on_success_and_on_failure(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    with store.scratch() as scratch:
        assert scratch.parent == store.root / ".incoming"
        assert scratch.name.startswith(f"{os.getpid()}-")
        (scratch / "half.npy").write_bytes(b"partial")
    assert not (store.root / ".incoming").exists()
    with pytest.raises(RuntimeError, match="boom"), store.scratch() as scratch:
        (scratch / "half.npy").write_bytes(b"partial")
        raise RuntimeError("boom")
    assert sorted(p.name for p in store.root.iterdir()) == []


def test_scratch_removes_orphans_of_dead_processes_only(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    incoming = store.root / ".incoming"
    orphan = incoming / f"{dead.stdout.strip()}-abc"
    (orphan / "artifact").mkdir(parents=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = incoming / f"{alive.pid}-def"
        busy.mkdir()
        with store.scratch():
            assert not orphan.exists()
            assert busy.exists()
        assert busy.exists()  # another run is at work: `.incoming` stays
    finally:
        alive.kill()
        alive.wait()
