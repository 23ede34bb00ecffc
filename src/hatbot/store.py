"""The model store: versioned artifact folders and the pointers that name which one serves.

    <store>/<version>/        an artifact (see `hatbot.index`), never changed once written
    <store>/production        a text file holding the version in production
    <store>/staging           the version waiting for promotion
    <store>/.incoming/        scratch folders of trainings in progress (removed after)

A pointer is rewritten atomically (write a temporary file, then rename), so a
reader sees either the old version or the new one, never half a name. A new
version is written in a scratch folder on the same file system and renamed into
place complete, so a reader never sees half an artifact either.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
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
        with tmp.open("w") as f:
            f.write(version + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / pointer)

    def add(self, staged: Path, version: str) -> Path:
        """Move a complete artifact folder into the store under `version` (atomic rename)."""
        target = self.path(version)
        if target.exists():
            shutil.rmtree(staged)
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staged, target)
        except OSError:
            # Another run stored the same version (same content) in the meantime.
            if not (target / "manifest.json").exists():
                raise
            shutil.rmtree(staged)
        return target

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Path]:
        """A scratch folder on the store's file system, so `add` can rename into place.

        It is removed on exit, whatever happens; so is `.incoming` once empty. Scratch
        left by a process that died without cleaning up (SIGKILL) is removed too.
        """
        incoming = self.root / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        _remove_orphans(incoming)
        try:
            with tempfile.TemporaryDirectory(dir=incoming, prefix=f"{os.getpid()}-") as tmp:
                yield Path(tmp)
        finally:
            with contextlib.suppress(OSError):
                incoming.rmdir()  # only when empty: other runs may be at work


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(incoming: Path) -> None:
    """Remove scratch folders whose process is gone (named `<pid>-...` by `scratch`)."""
    for item in incoming.iterdir():
        pid, sep, _ = item.name.partition("-")
        if sep and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(item, ignore_errors=True)
