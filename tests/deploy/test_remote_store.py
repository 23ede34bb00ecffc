"""hatbot.remote (`hatbot model ...`): publish to and fetch from a model store over HTTP or files.

The HTTP store is a small in-memory server on 127.0.0.1 that answers GET and PUT
like an object store (or GitLab's generic package registry) does.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import hatbot.remote as ms

TOKEN_HEADER = ("JOB-TOKEN", "secret-token")


class ObjectStore(ThreadingHTTPServer):
    """GET/PUT of objects in a dict; every request must carry the token header."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_next: list[int] = []
        self.redirect_to: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/store"


class _Handler(BaseHTTPRequestHandler):
    server: ObjectStore

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _key(self) -> str | None:
        prefix = "/store/"
        return self.path[len(prefix) :] if self.path.startswith(prefix) else None

    def _reply(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _check(self) -> str | None:
        self.server.requests.append((self.command, self.path, dict(self.headers)))
        if self.server.fail_next:
            self._reply(self.server.fail_next.pop(0))
            return None
        if self.headers.get(TOKEN_HEADER[0]) != TOKEN_HEADER[1]:
            self._reply(401)
            return None
        key = self._key()
        if key is None:
            self._reply(404)
        return key

    def do_GET(self) -> None:
        if self.path.startswith("/elsewhere/"):  # the redirect target: no token expected
            self.server.requests.append((self.command, self.path, dict(self.headers)))
            body = self.server.objects.get(self.path[len("/elsewhere/") :])
            self._reply(200, body) if body is not None else self._reply(404)
            return
        key = self._check()
        if key is None:
            return
        if key not in self.server.objects:
            self._reply(404)
        elif self.server.redirect_to and key.endswith(".tar.gz"):
            self.send_response(302)
            self.send_header("Location", f"{self.server.redirect_to}/elsewhere/{key}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._reply(200, self.server.objects[key])

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        key = self._check()
        if key is None:
            return
        self.server.objects[key] = body
        self._reply(201)


@pytest.fixture
def server() -> Iterator[ObjectStore]:
    srv = ObjectStore()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def store(server: ObjectStore) -> Any:
    return ms.Store(server.url, f"{TOKEN_HEADER[0]}: {TOKEN_HEADER[1]}")


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ms.time, "sleep", lambda _: None)


def make_version(root: Path, version: str = "abc123def456") -> Path:
    folder = root / version
    (folder / "proxy-x").mkdir(parents=True)
    manifest = {"version": version, "metrics": {"score": 1.5}}
    (folder / "manifest.json").write_text(json.dumps(manifest) + "\n")
    (folder / "vocab.txt").write_text("space\nshuttle\n")
    (folder / "proxy-x" / "vectors.npy").write_bytes(bytes(range(256)) * 40)
    return folder


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_publish_then_fetch_by_version_roundtrip(tmp_path: Path, store: Any) -> None:
    src = make_version(tmp_path / "src")
    digest = ms.publish(store, tmp_path / "src", src.name)

    got = ms.fetch(store, tmp_path / "dest", src.name, "staging")

    assert got == src.name
    assert tree(tmp_path / "dest" / src.name) == tree(src)
    assert (tmp_path / "dest" / "staging").read_text() == f"{src.name}\n"
    assert digest == hashlib.sha256(store.get(f"{src.name}.tar.gz")).hexdigest()


def test_fetch_pointer_resolves_published_version(tmp_path: Path, store: Any) -> None:
    src = make_version(tmp_path / "src")
    ms.publish(store, tmp_path / "src", src.name)
    ms.set_pointer(store, "production", src.name)

    assert ms.fetch(store, tmp_path / "dest", None, "production") == src.name
    assert (tmp_path / "dest" / "production").read_text().strip() == src.name
    assert (tmp_path / "dest" / src.name / "manifest.json").exists()


def test_set_pointer_keeps_previous_for_rollback(tmp_path: Path, store: Any) -> None:
    for v in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
        make_version(tmp_path / "src", v)
        ms.publish(store, tmp_path / "src", v)
    ms.set_pointer(store, "production", "aaaaaaaaaaaa")
    ms.set_pointer(store, "production", "bbbbbbbbbbbb")

    assert store.get_text("production") == "bbbbbbbbbbbb"
    assert store.get_text("production.previous") == "aaaaaaaaaaaa"

    ms.set_pointer(store, "production", store.get_text("production.previous"))  # the rollback
    assert store.get_text("production") == "aaaaaaaaaaaa"
    assert store.get_text("production.previous") == "bbbbbbbbbbbb"


def test_set_pointer_unpublished_version_refused(store: Any) -> None:
    with pytest.raises(ms.StoreError, match="not published"):
        ms.set_pointer(store, "production", "cccccccccccc")


def test_fetch_missing_pointer_optional_returns_none(tmp_path: Path, store: Any) -> None:
    assert ms.fetch(store, tmp_path / "dest", None, "production", optional=True) is None
    assert not (tmp_path / "dest" / "production").exists()
    with pytest.raises(ms.NotFound):
        ms.fetch(store, tmp_path / "dest", None, "production")


def test_fetch_checksum_mismatch_refused(tmp_path: Path, server: ObjectStore, store: Any) -> None:
    src = make_version(tmp_path / "src")
    ms.publish(store, tmp_path / "src", src.name)
    server.objects[f"{src.name}.tar.gz.sha256"] = b"0" * 64 + b"\n"

    with pytest.raises(ms.StoreError, match="does not match"):
        ms.fetch(store, tmp_path / "dest", src.name, "staging")
    assert not (tmp_path / "dest" / src.name).exists()


def test_fetch_transient_errors_retried(tmp_path: Path, server: ObjectStore, store: Any) -> None:
    src = make_version(tmp_path / "src")
    ms.publish(store, tmp_path / "src", src.name)
    server.fail_next = [503, 502]

    assert ms.fetch(store, tmp_path / "dest", src.name, "staging") == src.name


def test_fetch_client_error_not_retried(tmp_path: Path, server: ObjectStore) -> None:
    bad = ms.Store(server.url, "JOB-TOKEN: wrong")
    with pytest.raises(ms.StoreError, match="401"):
        ms.fetch(bad, tmp_path / "dest", "abc123def456", "staging")
    assert len(server.requests) == 1


def test_fetch_redirect_drops_credentials(tmp_path: Path, server: ObjectStore, store: Any) -> None:
    src = make_version(tmp_path / "src")
    ms.publish(store, tmp_path / "src", src.name)
    server.redirect_to = f"http://localhost:{server.server_address[1]}"  # another host name

    ms.fetch(store, tmp_path / "dest", src.name, "staging")

    redirected = [headers for _, path, headers in server.requests if path.startswith("/elsewhere/")]
    assert redirected, "the archive download was not redirected"
    assert all(TOKEN_HEADER[0] not in headers for headers in redirected)


def test_publish_twice_keeps_published_copy(
    tmp_path: Path, server: ObjectStore, store: Any
) -> None:
    src = make_version(tmp_path / "src")
    first = ms.publish(store, tmp_path / "src", src.name)
    (src / "vocab.txt").write_text("changed\n")
    puts_before = sum(1 for method, *_ in server.requests if method == "PUT")

    assert ms.publish(store, tmp_path / "src", src.name) == first
    assert sum(1 for method, *_ in server.requests if method == "PUT") == puts_before


def test_pack_same_files_same_bytes(tmp_path: Path) -> None:
    a = make_version(tmp_path / "a")
    b = make_version(tmp_path / "b")
    (b / "vocab.txt").touch()  # another mtime, same content

    assert ms.pack(a, a.name) == ms.pack(b, b.name)


@pytest.mark.parametrize(
    "member", ["../escape", "/abs/path", "otherversion/file", "abc123def456/../../x"]
)
def test_unpack_foreign_member_refused(tmp_path: Path, member: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))

    with pytest.raises(ms.StoreError, match="unexpected member"):
        ms.unpack(buf.getvalue(), "abc123def456", tmp_path / "dest")
    assert not (tmp_path / "escape").exists()


def test_unpack_symlink_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("abc123def456/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)

    with pytest.raises(ms.StoreError, match="unexpected member"):
        ms.unpack(buf.getvalue(), "abc123def456", tmp_path / "dest")


@pytest.mark.parametrize("version", ["../x", "a/b", "", "x.tar.gz", "-rf"])
def test_check_version_bad_name_refused(version: str) -> None:
    with pytest.raises(ms.StoreError):
        ms.check_version(version)


def test_file_store_roundtrip(tmp_path: Path) -> None:
    store = ms.Store((tmp_path / "bucket").as_uri())
    src = make_version(tmp_path / "src")
    ms.publish(store, tmp_path / "src", src.name)
    ms.set_pointer(store, "staging", src.name)

    assert ms.fetch(store, tmp_path / "dest", None, "staging") == src.name
    assert tree(tmp_path / "dest" / src.name) == tree(src)


def test_empty_url_refused() -> None:
    with pytest.raises(ms.StoreError, match="MODEL_STORE_URL"):
        ms.Store("")


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hatbot.cli", "model", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **env},
    )


def test_script_publish_fetch_exit_codes(tmp_path: Path, server: ObjectStore) -> None:
    """The command line the initContainer and CI use, with settings from the environment."""
    src = make_version(tmp_path / "src")
    env = {"MODEL_STORE_URL": server.url, "MODEL_STORE_HEADER": "JOB-TOKEN: secret-token"}

    dest = str(tmp_path / "d")
    missing = run_script("fetch", "--dest", dest, env=env)
    assert missing.returncode == ms.EXIT_NO_POINTER, missing.stderr
    # CI jobs have a MODEL_VERSION of their own: it must not stand in for the pointer's.
    optional = run_script(
        "fetch", "--dest", dest, "--optional", env={**env, "MODEL_VERSION": "abc123def456"}
    )
    assert optional.returncode == 0, optional.stderr
    assert not (tmp_path / "d" / "production").exists()

    src_store = str(tmp_path / "src")
    published = run_script("publish", "--store", src_store, "--version", src.name, env=env)
    assert published.returncode == 0, published.stderr
    assert run_script("pointer", "set", "staging", src.name, env=env).returncode == 0
    pointer = run_script("pointer", "get", "staging", env=env)
    assert (pointer.returncode, pointer.stdout.strip()) == (0, src.name)

    # What the initContainer runs, after Kubernetes expanded $(MODEL_VERSION) to "".
    fetched = run_script("fetch", "--dest=" + dest, "--version=", "--pointer=staging", env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert tree(tmp_path / "d" / src.name) == tree(src)
    assert (tmp_path / "d" / "staging").read_text().strip() == src.name

    no_url = run_script("pointer", "get", "staging", env={})
    assert no_url.returncode == 1 and "MODEL_STORE_URL" in no_url.stderr


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        # GitLab's generic package registry of this instance: the job token.
        (
            "https://gl.example.org/api/v4/projects/1/packages/generic/m/1.0.0",
            {"CI_API_V4_URL": "https://gl.example.org/api/v4", "CI_JOB_TOKEN": "jt"},
            "JOB-TOKEN: jt",
        ),
        # Any other store never sees the job token.
        (
            "https://gl.example.org.evil.example/api/v4/x",
            {"CI_API_V4_URL": "https://gl.example.org/api/v4", "CI_JOB_TOKEN": "jt"},
            None,
        ),
        ("https://s3.example.org/b", {"CI_API_V4_URL": "https://gl.example.org/api/v4"}, None),
        # An explicit header wins.
        (
            "https://s3.example.org/b",
            {"MODEL_STORE_HEADER": "Authorization: Bearer x"},
            "Authorization: Bearer x",
        ),
        ("https://s3.example.org/b", {}, None),
    ],
)
def test_store_header_job_token_only_for_own_gitlab(
    url: str, env: dict[str, str], expected: str | None
) -> None:
    assert ms.store_header(url, env) == expected
