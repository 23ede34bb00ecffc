"""The remote model store: publish model versions to an HTTP object store, fetch them back.

`hatbot model publish|fetch|pointer` (docs/LIFECYCLE.md, "The model store"): CI's
promote and deploy jobs publish and move pointers; the Deployment's initContainer
runs `hatbot model fetch` from the runtime image. Standard library HTTP only.

Remote layout under MODEL_STORE_URL (an http(s):// base URL, a file:// URL or a path):

    <version>.tar.gz          `<store>/<version>/` as a gzipped tar, members under `<version>/`
    <version>.tar.gz.sha256   the archive's sha256, hex
    production, staging       pointer files, each holding one version name
    <pointer>.previous        what the pointer named before its last move (for rollbacks)

Versions are immutable: publishing a version that is already there keeps the stored copy.
The local layout is `hatbot.store.ModelStore`'s, whose version names this module accepts.

Environment: MODEL_STORE_URL (the base URL) and MODEL_STORE_HEADER (optional, one
`Name: value` header sent with every request, e.g. `Authorization: Bearer ...`).
In a GitLab job without MODEL_STORE_HEADER, a store under this GitLab's API (its
generic package registry) gets the job token; no other store ever does.
Exit codes: 0 success, 1 an error, 3 the pointer or version is not in the store.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import typing
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from hatbot.store import ModelStore

POINTER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TIMEOUT = 60.0  # seconds per request; a model archive is tens of MB
ATTEMPTS = 4  # transient errors (5xx, connection) are retried with backoff
EXIT_NO_POINTER = 3


class StoreError(RuntimeError):
    """The store cannot be read or written; the message says why."""


class NotFound(StoreError):
    """The object does not exist in the store."""


def check_version(version: str) -> str:
    """`version`, if the local store accepts it and it cannot be taken for another object."""
    try:
        ModelStore(Path()).path(version)
    except ValueError:
        raise StoreError(f"not a model version name: {version!r}") from None
    if version.endswith((".tar.gz", ".sha256", ".previous")):
        raise StoreError(f"not a model version name: {version!r}")
    return version


def check_pointer(name: str) -> str:
    if not POINTER_RE.match(name):
        raise StoreError(f"not a pointer name: {name!r}")
    return name


class _StripAuthOnRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never send the store's credentials to another host."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: typing.IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
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


# --- the `hatbot model` commands -------------------------------------------------

model_app = typer.Typer(
    help="The remote model store: publish versions, fetch them, read and move pointers.",
    no_args_is_help=True,
)
pointer_app = typer.Typer(help="Read or move a pointer of the remote store.", no_args_is_help=True)
model_app.add_typer(pointer_app, name="pointer")

UrlOpt = Annotated[
    str,
    typer.Option(
        "--url", metavar="URL", envvar="MODEL_STORE_URL", help="Base URL of the remote store."
    ),
]


def _store(url: str) -> Store:
    return Store(url, store_header(url, os.environ))


def _run(command: str, action: typing.Callable[[], object]) -> None:
    """Run a store action, turning its errors into a message and the documented exit code."""
    try:
        action()
    except NotFound as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_NO_POINTER if command in {"fetch", "get"} else 1) from None
    except StoreError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None


@model_app.command("fetch")
def fetch_command(
    dest: Annotated[Path, typer.Option("--dest", metavar="DIR", help="The local model store.")],
    # No default from the environment: CI jobs carry a MODEL_VERSION of their own.
    version: Annotated[
        str, typer.Option(metavar="VERSION", help="This version (empty: the pointer's).")
    ] = "",
    pointer: Annotated[
        str, typer.Option(metavar="NAME", help="The pointer to write (and follow).")
    ] = ("production"),
    optional: Annotated[bool, typer.Option(help="A missing pointer is not an error.")] = False,
    url: UrlOpt = "",
) -> None:
    """Download a version (or the one a pointer names) into a local model store."""
    _run("fetch", lambda: fetch(_store(url), dest, version or None, pointer, optional))


@model_app.command("publish")
def publish_command(
    store: Annotated[Path, typer.Option("--store", metavar="DIR", help="The local model store.")],
    version: Annotated[str, typer.Option(metavar="VERSION", help="The version folder to upload.")],
    url: UrlOpt = "",
) -> None:
    """Upload a local version folder (kept as it is if already published)."""
    _run("publish", lambda: publish(_store(url), store, version))


@pointer_app.command("get")
def pointer_get(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A pointer, or NAME.previous.")],
    url: UrlOpt = "",
) -> None:
    """Print the version a pointer names."""

    def show() -> None:
        # `production.previous` is readable too: it is what a rollback goes back to.
        check_pointer(name.removesuffix(".previous"))
        typer.echo(_store(url).get_text(name))

    _run("get", show)


@pointer_app.command("set")
def pointer_set(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The pointer to move.")],
    version: Annotated[str, typer.Argument(metavar="VERSION", help="A published version.")],
    url: UrlOpt = "",
) -> None:
    """Move a pointer to a published version (its old value goes to NAME.previous)."""
    _run("set", lambda: set_pointer(_store(url), name, version))
