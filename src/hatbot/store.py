"""The model store: versioned artifact folders and the pointers that name which one serves.

    <store>/<version>/        an artifact (see `hatbot.index`), never changed once written
    <store>/production        a text file holding the version in production
    <store>/staging           the version waiting for promotion

A pointer is rewritten atomically (write a temporary file, then rename), so a
reader sees either the old version or the new one, never half a name.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Literal

Pointer = Literal["production", "staging"]
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelStore:
    """Versioned artifacts plus `production` and `staging` pointers in one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, version: str) -> Path:
        if not _VERSION.match(version):
            raise ValueError(f"{version!r} is not a model version name")
        return self.root / version

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and (p / "manifest.json").exists()
        )

    def read(self, pointer: Pointer) -> str | None:
        """The version a pointer names, or None when it is not set."""
        try:
            version = (self.root / pointer).read_text().strip()
        except FileNotFoundError:
            return None
        return version or None

    def resolve(self, pointer: Pointer) -> Path | None:
        version = self.read(pointer)
        return self.path(version) if version else None

    def point(self, pointer: Pointer, version: str) -> None:
        """Make `pointer` name `version`, atomically."""
        if not (self.path(version) / "manifest.json").exists():
            raise FileNotFoundError(f"no model {version} in {self.root}")
        tmp = self.root / f".{pointer}.{os.getpid()}.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.root / pointer)

    def add(self, staged: Path, version: str) -> Path:
        """Move a complete artifact folder into the store under `version` (atomic rename)."""
        target = self.path(version)
        if target.exists():
            shutil.rmtree(staged)
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        return target

    def staging_dir(self) -> Path:
        """A scratch folder on the store's file system, so `add` can rename into place."""
        scratch = self.root / ".incoming"
        scratch.mkdir(parents=True, exist_ok=True)
        return scratch
