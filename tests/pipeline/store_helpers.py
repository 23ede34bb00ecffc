"""Helpers the pipeline tests share about the model store."""

from __future__ import annotations

from hatbot.store import ModelStore


def stored_versions(store: ModelStore) -> list[str]:
    """The versions `store` holds (folders with a manifest), sorted: what a test expects
    after a run; the service and the pipeline only ever follow pointers."""
    if not store.root.is_dir():
        return []
    return sorted(
        p.name for p in store.root.iterdir() if p.is_dir() and (p / "manifest.json").exists()
    )
