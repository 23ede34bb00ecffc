"""The data stage: fetching every supported source, adding texts, snapshots, preprocessing."""

from __future__ import annotations

import gzip
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hatbot.pipeline.corpus import (
    STOP_WORDS,
    CorpusError,
    DataStore,
    clean_text,
    hat_vocabulary,
    iter_documents,
    prepare,
    read_json_texts,
    sha256_file,
)
from hatbot.pipeline.params import PreprocessParams

POST = """\
Xref: cantaloupe.srv.cs.cmu.edu sci.space:61234
Path: cantaloupe.srv.cs.cmu.edu!news.sei.cmu.edu!fs7.ece.cmu.edu!europa.eng.gtefsd.com
From: jdoe@moon.example.edu (John Doe)
Newsgroups: sci.space
Subject: Re: Shuttle launch Delayed
Message-ID: <1993Apr5.123456.1@moon.example.edu>
Article-I.D.: moon.1993Apr5.123456.1
Organization: Example University
Lines: 12

In article <abc@xyz.example.com> someone@xyz.example.com (Some One) writes:
> The orbiter was QUOTED on the pad.
| Another QUOTED line.

The launch slipped 3 days because of a valve; see http://www.example.com/news or
ftp://ftp.example.com/pub and mail LAUNCH@example.org for details.
Countdown restarts Tuesday.

--
dashes alone are not a separator, kept
SEPARATOR
John Doe  SIGNATURE line  jdoe@moon.example.edu
""".replace("SEPARATOR", "-- ")  # the signature separator: two dashes and a space


def test_clean_text_keeps_only_the_authors_prose_in_lowercase_letters() -> None:
    words = clean_text(POST, PreprocessParams()).split()
    assert words[:4] == ["re", "shuttle", "launch", "delayed"]  # the subject line is kept
    text = " ".join(words)
    for gone in (
        "xref",
        "cantaloupe",
        "newsgroups",
        "organization",
        "quoted",
        "article",
        "writes",
        "signature",
        "example",
        "http",
        "www",
        "ftp",
        "jdoe",
        "mail launch",
    ):
        assert gone not in text.split() and f" {gone} " not in f" {text} ", gone
    assert "the launch slipped days because of a valve see or and mail for details" in text
    assert "countdown restarts tuesday" in text and "kept" in words
    assert all(w.isalpha() and w.islower() for w in words)


@pytest.mark.parametrize(
    ("option", "kept"),
    [
        ("strip_headers", "cantaloupe"),
        ("strip_quotes", "quoted"),
        ("strip_signatures", "signature"),
        ("strip_addresses", "ftp"),
    ],
)
def test_clean_text_options_each_turn_one_filter_off(option: str, kept: str) -> None:
    assert kept not in clean_text(POST, PreprocessParams()).split()
    assert kept in clean_text(POST, PreprocessParams(**{option: False})).split()


def test_clean_text_keeps_the_first_paragraph_of_a_text_without_headers() -> None:
    text = "Tournament text: the first paragraph matters.\n\nThe second one too.\n"
    assert clean_text(text, PreprocessParams()).split()[:3] == ["tournament", "text", "the"]
    crlf = POST.replace("\n", "\r\n")
    assert clean_text(crlf, PreprocessParams()) == clean_text(POST, PreprocessParams())


def _write_posts(root: Path, docs: list[str], groups: int = 3) -> None:
    for i, text in enumerate(docs):
        path = root / f"group{i % groups}" / f"{50000 + i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="latin-1")


def _tar(path: Path, folder: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for item in sorted(folder.iterdir()):
            archive.add(item, arcname=item.name)
    return path


@pytest.fixture(scope="module")
def posts(tiny_corpus: Path) -> list[str]:
    return [p.read_text(encoding="latin-1") for p in sorted(tiny_corpus.iterdir())[:60]]


@pytest.fixture
def archives(tmp_path: Path, posts: list[str]) -> dict[str, Path]:
    """The same 60 posts as a 20news-19997 archive, a 20news-bydate archive and a folder."""
    classic = tmp_path / "classic"
    _write_posts(classic / "20_newsgroups", posts)
    bydate = tmp_path / "bydate"
    _write_posts(bydate / "20news-bydate-train", posts[:40])
    _write_posts(bydate / "20news-bydate-test", posts[40:])
    folder = tmp_path / "plain"
    folder.mkdir()
    for i, text in enumerate(posts):
        (folder / f"doc{i:03d}.txt").write_text(text, encoding="latin-1")
    return {
        "classic": _tar(tmp_path / "20news-19997.tar.gz", classic),
        "bydate": _tar(tmp_path / "20news-bydate.tar.gz", bydate),
        "folder": folder,
    }


@pytest.mark.parametrize("kind", ["classic", "bydate", "folder"])
def test_fetch_reads_every_layout_and_records_its_checksum(
    tmp_path: Path,
    archives: dict[str, Path],
    posts: list[str],
    kind: str,
    state: Callable[[Path], dict[str, str]],
) -> None:
    source = archives[kind]
    before = state(source) if source.is_dir() else {"": sha256_file(source)}
    store = DataStore(tmp_path / "data")
    record = store.fetch(str(source))
    assert record["documents"] == "60" and record["source"] == str(source)
    assert sorted(store.documents()) == sorted(posts)
    snapshot = store.snapshot()
    assert snapshot.corpus["sha256"] == record["sha256"] and snapshot.extra == ()
    # The source is read, never changed; the store keeps an exact copy.
    assert (state(source) if source.is_dir() else {"": sha256_file(source)}) == before
    copy = store.raw / "corpus" / record["file"]
    if source.is_file():
        assert sha256_file(copy) == sha256_file(source) == record["sha256"]
    else:
        assert state(copy) == before


def test_fetch_downloads_a_url_and_verifies_a_known_checksum(
    tmp_path: Path, archives: dict[str, Path], http_folder: tuple[str, Path]
) -> None:
    url, served = http_folder
    archive = archives["classic"]
    (served / archive.name).write_bytes(archive.read_bytes())
    store = DataStore(tmp_path / "data")
    record = store.fetch(f"{url}/{archive.name}", sha256_file(archive))
    assert record["sha256"] == sha256_file(archive) and record["documents"] == "60"
    # The same source again: nothing to do (the server is no longer needed).
    (served / archive.name).unlink()
    assert store.fetch(f"{url}/{archive.name}") == record


def _assert_failed_fetch_left_no_trace(
    store: DataStore, before: dict[str, str], state: Callable[[Path], dict[str, str]]
) -> None:
    assert state(store.root) == before
    assert not list(store.raw.glob(".fetch-*"))


@pytest.mark.parametrize(
    "case",
    [
        "unreachable",
        "not found",
        "checksum",
        "truncated",
        "garbled",
        "not an archive",
        "empty folder",
        "missing path",
    ],
)
def test_fetch_fails_clearly_and_keeps_the_current_corpus(
    tmp_path: Path,
    archives: dict[str, Path],
    http_folder: tuple[str, Path],
    case: str,
    state: Callable[[Path], dict[str, str]],
) -> None:
    url, _ = http_folder
    store = DataStore(tmp_path / "data")
    store.fetch(str(archives["folder"]))
    before = state(store.root)
    data = archives["classic"].read_bytes()
    bad = tmp_path / "bad.tar.gz"
    source, sha256, message = str(bad), None, "not a readable corpus archive"
    if case == "unreachable":
        source, message = "http://127.0.0.1:1/x.tar.gz", "cannot download"
    elif case == "not found":
        source, message = f"{url}/nothing.tar.gz", "cannot download.*404"
    elif case == "checksum":
        source, sha256, message = str(archives["classic"]), "0" * 64, "checksum mismatch"
    elif case == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif case == "garbled":
        middle = len(data) // 2
        bad.write_bytes(
            data[:middle]
            + bytes(b ^ 0x5A for b in data[middle : middle + 2000])
            + data[middle + 2000 :]
        )
    elif case == "not an archive":
        bad.write_bytes(gzip.compress(b"\x00\x01 plainly not a tar file " * 100))
    elif case == "empty folder":
        source, message = str(tmp_path / "empty"), "holds no documents"
        (tmp_path / "empty").mkdir()
    elif case == "missing path":
        source, message = str(tmp_path / "nowhere.tar.gz"), "does not exist"
    with pytest.raises(CorpusError, match=message):
        store.fetch(source, sha256)
    _assert_failed_fetch_left_no_trace(store, before, state)
    assert store.snapshot().corpus["source"] == str(archives["folder"])


def test_fetch_of_another_source_switches_the_record_and_keeps_the_old_copy(
    tmp_path: Path, archives: dict[str, Path]
) -> None:
    store = DataStore(tmp_path / "data")
    first = store.fetch(str(archives["folder"]))
    kept = sha256_file(next((store.raw / "corpus" / first["file"]).iterdir()))
    second = store.fetch(str(archives["bydate"]))
    assert store.snapshot().corpus["sha256"] == second["sha256"] != first["sha256"]
    assert sha256_file(next((store.raw / "corpus" / first["file"]).iterdir())) == kept


def test_add_json_texts_changes_the_snapshot(
    tmp_path: Path, archives: dict[str, Path], http_folder: tuple[str, Path]
) -> None:
    url, served = http_folder
    store = DataStore(tmp_path / "data")
    store.fetch(str(archives["folder"]))
    first = store.snapshot()
    texts = tmp_path / "texts.json"
    texts.write_text(
        json.dumps([{"text": "Zyzzyva one."}, {"text": "Zyzzyva two."}, {"title": "no text key"}])
    )
    record = store.add(str(texts))
    assert record["documents"] == "2"
    second = store.snapshot()
    assert second.id != first.id and second.corpus == first.corpus
    assert second.extra == ({"file": record["file"], "sha256": sha256_file(texts)},)
    assert list(store.documents())[-2:] == ["Zyzzyva one.", "Zyzzyva two."]
    # Adding the same file again changes nothing; JSON lines over HTTP add one more.
    assert store.add(str(texts))["file"] == record["file"]
    assert store.snapshot() == second
    (served / "more.jsonl").write_text('{"text": "Third text."}\n{"text": "Fourth."}\n')
    assert store.add(f"{url}/more.jsonl")["documents"] == "2"
    assert len(store.snapshot().extra) == 2 and store.snapshot().id != second.id
    assert sha256_file(texts) == record["sha256"]  # the source untouched


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json at all {", "neither JSON nor JSON lines"),
        ('[{"title": "x"}]', "no texts"),
        (None, "does not exist"),
    ],
)
def test_add_rejects_a_file_without_texts(
    tmp_path: Path,
    archives: dict[str, Path],
    content: str | None,
    message: str,
    state: Callable[[Path], dict[str, str]],
) -> None:
    store = DataStore(tmp_path / "data")
    store.fetch(str(archives["folder"]))
    before = state(store.root)
    path = tmp_path / "texts.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CorpusError, match=message):
        store.add(str(path))
    assert state(store.root) == before


def test_add_rejects_an_unreachable_url(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="cannot download"):
        DataStore(tmp_path / "data").add("http://127.0.0.1:1/texts.json")


def test_snapshot_needs_a_fetched_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="hatbot data fetch"):
        DataStore(tmp_path / "data").snapshot()


def test_read_json_texts_accepts_one_object(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text('{"text": "Only one."}')
    assert read_json_texts(path) == ["Only one."]


def test_iter_documents_reads_json_files_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("plain text")
    (tmp_path / "b.json").write_text('[{"text": "json text"}]')
    assert list(iter_documents(tmp_path)) == ["plain text", "json text"]


def test_prepare_writes_clean_and_raw_corpora_once(tmp_path: Path, tiny_corpus: Path) -> None:
    store = DataStore(tmp_path / "data")
    store.fetch(str(tiny_corpus))
    corpora = prepare(store, PreprocessParams())
    lines = corpora.clean.read_text().splitlines()
    assert corpora.documents == len(lines) and corpora.tokens == sum(len(x.split()) for x in lines)
    assert all(w.isalpha() and w.islower() for w in lines[0].split())
    assert len(corpora.raw.read_text().splitlines()) == 800
    mtime = corpora.clean.stat().st_mtime_ns
    assert prepare(store, PreprocessParams()) == corpora
    assert corpora.clean.stat().st_mtime_ns == mtime
    other = prepare(store, PreprocessParams(strip_quotes=False))
    assert other.clean != corpora.clean and other.tokens > corpora.tokens


def test_prepare_lemmatizes_when_asked(tmp_path: Path, lexicon_available: None) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    sentence = "the cars and the wheels of the buses are in the garages of the cities " * 100
    (folder / "a.txt").write_text(sentence)
    store = DataStore(tmp_path / "data")
    store.fetch(str(folder))
    plain = prepare(store, PreprocessParams()).clean.read_text().split()
    lemmas = prepare(store, PreprocessParams(lemmatize=True)).clean.read_text().split()
    assert {"cars", "buses", "cities"} <= set(plain)
    assert {"car", "bus", "city"} <= set(lemmas) and "cars" not in lemmas


def _host_hat(text: str, lemmatize: Callable[[str], str]) -> dict[str, int]:
    """The host's method as docs/GAME.md states it, on one text."""
    words = re.sub("[^a-z]+", " ", text.lower()).split()
    lemmas = [lemmatize(w) for w in words if w not in STOP_WORDS and len(w) > 3]
    counts = {w: lemmas.count(w) for w in set(lemmas)}
    top = max(counts.values()) / 10
    return {w: c for w, c in counts.items() if max(10, top / 100) < c <= top}


@pytest.mark.parametrize("lemmatized", [False, True], ids=["plain", "lemmatized"])
def test_hat_vocabulary_follows_the_host_method(
    tmp_path: Path, lexicon_available: None, lemmatized: bool
) -> None:
    """Words are filtered before they are lemmatized, also when the corpus is lemmatized:
    `cars` counts towards `car`, the token `car` itself (3 letters) does not."""
    from hatbot.game.lexicon import NltkLexicon

    text = (
        "The garage and the wheel of the house. " * 1000
        + "The cars of the cities, the car and the buses! " * 50
        + "Phils raytracers " * 20
        + "rarely " * 5
    )
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text(text)
    store = DataStore(tmp_path / "data")
    store.fetch(str(folder))
    lemmatize = NltkLexicon().lemmatize
    corpora = prepare(store, PreprocessParams(lemmatize=lemmatized))
    expected = {"car": 50, "city": 50, "bus": 50, "phils": 20, "raytracers": 20}
    assert _host_hat(text, lemmatize) == expected
    assert hat_vocabulary(corpora.hat_tokens, lemmatize) == expected


def _garbage(seed: int, n: int) -> str:
    import random

    rng = random.Random(seed)
    return " ".join(
        "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(rng.randint(3, 9)))
        for _ in range(n)
    )


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([_garbage(i, 400) for i in range(10)], "does not look like English"),
        (
            ["Der Hund und die Katze sind im Garten, und der Vogel singt. " * 50] * 5,
            "does not look like English",
        ),
        (["Hello there, how are you?"] * 5, "too few to train on"),
        (["1234 5678 !!! ??? ###"] * 200, "too few to train on"),
    ],
    ids=["garbage", "german", "tiny", "no-letters"],
)
def test_prepare_refuses_a_corpus_unfit_for_training(
    tmp_path: Path, texts: list[str], message: str
) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    for i, text in enumerate(texts):
        (folder / f"{i}.txt").write_text(text)
    store = DataStore(tmp_path / "data")
    store.fetch(str(folder))
    with pytest.raises(CorpusError, match=message):
        prepare(store, PreprocessParams())
    assert not store.work.exists() or not any(store.work.iterdir())


@pytest.fixture(scope="module")
def lexicon_available() -> None:
    from hatbot.game.lexicon import NltkLexicon, WordNetMissingError

    try:
        NltkLexicon().lemmatize("cars")
    except WordNetMissingError as exc:
        pytest.skip(str(exc))


def _members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return sorted(m.name for m in tar if m.isfile())


def test_archives_fixture_has_the_real_layouts(archives: dict[str, Path]) -> None:
    assert _members(archives["classic"])[0].startswith("20_newsgroups/group0/")
    assert {m.split("/")[0] for m in _members(archives["bydate"])} == {
        "20news-bydate-train",
        "20news-bydate-test",
    }


def test_iter_documents_reads_the_whole_real_archive(corpus_archive: Path) -> None:
    count = 0
    for text in iter_documents(corpus_archive):
        count += 1
        assert re.match(r"^[^\s:]+: ", text), text[:80]  # a post, header first
    assert count == 19997
