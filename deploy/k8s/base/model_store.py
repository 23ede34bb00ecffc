#!/usr/bin/env python3
"""Model store client: publish model versions to an HTTP object store and fetch them back.

Standard library only, so that it runs unchanged in the hatbot runtime image (as the
Deployment's initContainer, mounted from a ConfigMap) and in CI jobs (the promote and
deploy stages). See docs/LIFECYCLE.md.

Remote layout under MODEL_STORE_URL (an http(s):// base URL, a file:// URL or a path):

    <version>.tar.gz          `<store>/<version>/` as a gzipped tar, members under `<version>/`
    <version>.tar.gz.sha256   the archive's sha256, hex
    production, staging       pointer files, each holding one version name
    <pointer>.previous        what the pointer named before its last move (for rollbacks)

Versions are immutable: publishing a version that is already there keeps the stored copy.
The local layout is hatbot's model store: `<store>/<version>/...` plus pointer files.

Commands (exit 0 on success, 1 on an error, 3 when the pointer or version is not in the store):

    fetch --dest DIR [--version V] [--pointer NAME] [--optional]
    publish --store DIR --version V
    get-pointer NAME
    set-pointer NAME VERSION

Environment: MODEL_STORE_URL (the base URL) and MODEL_STORE_HEADER (optional, one
`Name: value` header sent with every request, e.g. `Authorization: Bearer ...`).
In a GitLab job without MODEL_STORE_HEADER, a store under this GitLab's API (its
generic package registry) gets the job token; no other store ever does.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
POINTER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TIMEOUT = 60.0  # seconds per request; a model archive is tens of MB
ATTEMPTS = 4  # transient errors (5xx, connection) are retried with backoff
EXIT_NO_POINTER = 3


class StoreError(RuntimeError):
    """The store cannot be read or written; the message says why."""


class NotFound(StoreError):
    """The object does not exist in the store."""


def check_version(version: str) -> str:
    if not VERSION_RE.match(version) or version.endswith((".tar.gz", ".sha256", ".previous")):
        raise StoreError(f"not a model version name: {version!r}")
    return version


def check_pointer(name: str) -> str:
    if not POINTER_RE.match(name):
        raise StoreError(f"not a pointer name: {name!r}")
    return name


class _StripAuthOnRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never send the store's credentials to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if (
            new is not None
            and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            for name in list(new.headers):
                if name.lower() not in {"user-agent", "accept"}:
                    del new.headers[name]
            new.unredirected_hdrs.clear()
        return new


class Store:
    """One remote store: GET and PUT of named objects below a base URL (or a folder)."""

    def __init__(self, url: str, header: str | None = None) -> None:
        if not url:
            raise StoreError("MODEL_STORE_URL is empty: set it to the model store's base URL")
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        self.path: Path | None = None
        if parts.scheme == "file":
            self.path = Path(urllib.parse.unquote(parts.path))
        elif parts.scheme == "":
            self.path = Path(self.url)
        elif parts.scheme not in {"http", "https"}:
            raise StoreError(f"unsupported model store URL scheme: {parts.scheme!r}")
        self.headers: dict[str, str] = {"User-Agent": "hatbot-model-store/1"}
        if header:
            name, sep, value = header.partition(":")
            if not sep or not name.strip():
                raise StoreError("MODEL_STORE_HEADER must look like 'Name: value'")
            self.headers[name.strip()] = value.strip()
        self._opener = urllib.request.build_opener(_StripAuthOnRedirect)

    def describe(self, name: str) -> str:
        return f"{self.url}/{name}"

    def _request(self, name: str, method: str, data: bytes | None = None) -> bytes:
        req = urllib.request.Request(
            self.describe(name), data=data, method=method, headers=dict(self.headers)
        )
        if data is not None:
            req.add_header("Content-Type", "application/octet-stream")
        delay = 1.0
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._opener.open(req, timeout=TIMEOUT) as resp:
                    return bytes(resp.read())
            except urllib.error.HTTPError as err:
                if err.code == 404:
                    raise NotFound(f"{self.describe(name)} does not exist") from None
                if err.code < 500 or attempt == ATTEMPTS:
                    raise StoreError(
                        f"{method} {self.describe(name)}: HTTP {err.code} {err.reason}"
                    ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == ATTEMPTS:
                    raise StoreError(f"{method} {self.describe(name)}: {err}") from None
            print(f"retrying {method} {self.describe(name)} in {delay:.0f} s", file=sys.stderr)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def get(self, name: str) -> bytes:
        if self.path is not None:
            try:
                return (self.path / name).read_bytes()
            except FileNotFoundError:
                raise NotFound(f"{self.path / name} does not exist") from None
        return self._request(name, "GET")

    def put(self, name: str, data: bytes) -> None:
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.path / name, data)
            return
        self._request(name, "PUT", data)

    def get_text(self, name: str) -> str:
        return self.get(name).decode("utf-8").strip()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pack(folder: Path, version: str) -> bytes:
    """A reproducible gzipped tar of `folder`, members under `version/` (same files, same bytes)."""
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in [folder, *sorted(folder.rglob("*"))]:
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise StoreError(f"only plain files and folders can be published: {path}")
            rel = path.relative_to(folder)
            info = tarfile.TarInfo(version if rel == Path(".") else f"{version}/{rel.as_posix()}")
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = path.stat().st_size
                with path.open("rb") as f:
                    tar.addfile(info, f)
    return buf.getvalue()


def unpack(archive: bytes, version: str, dest: Path) -> Path:
    """Extract an archive made by `pack` into `dest/version`, refusing anything else."""
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=dest))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                name = Path(m.name)
                if (
                    name.is_absolute()
                    or ".." in name.parts
                    or name.parts[:1] != (version,)
                    or not (m.isfile() or m.isdir())
                ):
                    raise StoreError(f"unexpected member in the archive of {version}: {m.name!r}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, members=members, filter="data")
            else:  # Python < 3.11.4: the checks above are the filter
                tar.extractall(staging, members=members)
        target = dest / version
        if target.exists():
            return target
        os.replace(staging / version, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(
    store: Store, dest: Path, version: str | None, pointer: str, optional: bool = False
) -> str | None:
    """Make `dest/<version>/` and the pointer file `dest/<pointer>` match the store."""
    check_pointer(pointer)
    if not version:
        try:
            version = store.get_text(pointer)
        except NotFound:
            if optional:
                print(f"no {pointer!r} pointer in {store.url}: nothing to fetch")
                return None
            raise
        print(f"{pointer} -> {version} (from {store.describe(pointer)})")
    check_version(version)
    if (dest / version).is_dir():
        print(f"{dest / version} is already here")
    else:
        expected = store.get_text(f"{version}.tar.gz.sha256").split()[0]
        archive = store.get(f"{version}.tar.gz")
        actual = hashlib.sha256(archive).hexdigest()
        if actual != expected:
            raise StoreError(
                f"{version}.tar.gz: sha256 {actual} does not match the published {expected}"
            )
        unpack(archive, version, dest)
        print(f"fetched {version} ({len(archive)} bytes, sha256 {actual}) into {dest / version}")
    _write_atomic(dest / pointer, f"{version}\n".encode())
    print(f"{dest / pointer} -> {version}")
    return version


def publish(store: Store, local: Path, version: str) -> str:
    """Upload `local/<version>/` unless that version is already published; return its sha256."""
    check_version(version)
    folder = local / version
    if not folder.is_dir():
        raise StoreError(f"{folder} is not a model version folder")
    try:
        published = store.get_text(f"{version}.tar.gz.sha256").split()[0]
    except NotFound:
        published = None
    archive = pack(folder, version)
    digest = hashlib.sha256(archive).hexdigest()
    if published is not None:
        if published != digest:
            print(
                f"warning: {version} is already published with sha256 {published} (this build:"
                f" {digest}); versions are immutable, keeping the published one",
                file=sys.stderr,
            )
        else:
            print(f"{version} is already published (sha256 {digest})")
        return published
    store.put(f"{version}.tar.gz", archive)
    # The checksum goes last: a version whose checksum exists is complete.
    store.put(f"{version}.tar.gz.sha256", f"{digest}  {version}.tar.gz\n".encode())
    print(f"published {version} ({len(archive)} bytes, sha256 {digest}) to {store.url}")
    return digest


def set_pointer(store: Store, pointer: str, version: str) -> str | None:
    """Move a pointer to a published version; keep the old value in `<pointer>.previous`."""
    check_pointer(pointer)
    check_version(version)
    try:
        store.get_text(f"{version}.tar.gz.sha256")
    except NotFound:
        raise StoreError(f"{version} is not published in {store.url}; publish it first") from None
    try:
        old: str | None = store.get_text(pointer)
    except NotFound:
        old = None
    if old == version:
        print(f"{pointer} already -> {version}")
        return old
    if old:
        store.put(f"{pointer}.previous", f"{old}\n".encode())
    store.put(pointer, f"{version}\n".encode())
    print(f"{pointer}: {old or '(none)'} -> {version}")
    return old


def store_header(url: str, env: Mapping[str, str]) -> str | None:
    """MODEL_STORE_HEADER; in a GitLab job, the job token for this GitLab's own API only."""
    if env.get("MODEL_STORE_HEADER"):
        return env["MODEL_STORE_HEADER"]
    api, token = env.get("CI_API_V4_URL", ""), env.get("CI_JOB_TOKEN", "")
    if api and token and url.startswith(api.rstrip("/") + "/"):
        return f"JOB-TOKEN: {token}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model_store.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("MODEL_STORE_URL", ""))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fetch", help="download a version (or the one a pointer names)")
    p.add_argument("--dest", type=Path, required=True, help="the local model store")
    # No defaults from the environment: CI jobs carry a MODEL_VERSION of their own.
    p.add_argument("--version", default="", help="this version (empty: the pointer's)")
    p.add_argument("--pointer", default="production", help="the pointer to write (and follow)")
    p.add_argument("--optional", action="store_true", help="a missing pointer is not an error")
    p = sub.add_parser("publish", help="upload a local version folder")
    p.add_argument("--store", type=Path, required=True, help="the local model store")
    p.add_argument("--version", required=True)
    p = sub.add_parser("get-pointer", help="print the version a pointer (or NAME.previous) names")
    p.add_argument("pointer")
    p = sub.add_parser("set-pointer", help="move a pointer to a published version")
    p.add_argument("pointer")
    p.add_argument("version")
    args = parser.parse_args(argv)
    try:
        store = Store(args.url, store_header(args.url, os.environ))
        if args.command == "fetch":
            fetch(store, args.dest, args.version or None, args.pointer, args.optional)
        elif args.command == "publish":
            publish(store, args.store, args.version)
        elif args.command == "get-pointer":
            # `production.previous` is readable too: it is what a rollback goes back to.
            check_pointer(args.pointer.removesuffix(".previous"))
            print(store.get_text(args.pointer))
        elif args.command == "set-pointer":
            set_pointer(store, args.pointer, args.version)
    except NotFound as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_NO_POINTER if args.command in {"fetch", "get-pointer"} else 1
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
