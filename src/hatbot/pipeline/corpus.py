"""The data store and preprocessing: fetch the corpus, add texts, clean them for the game.

Layout of the data store (default `data/`), never modified once written:

    raw/corpus/<sha>/<file>  the fetched corpus (an archive, or a folder copied as is),
                             in a folder named by its checksum
    raw/corpus.json          which one is current: where it came from and its checksum
    raw/extra/<sha>.json     texts added during a tournament (`hatbot data add`)
    work/<key>/              derived files (cleaned corpora), keyed by inputs and parameters
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from hatbot.index import file_sha256 as sha256_file
from hatbot.pipeline.params import PreprocessParams

# NLTK's English stop-word list (a stop-word list is allowed by the rules of fair play).
STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his
    himself she her hers herself it its itself they them their theirs themselves what
    which who whom this that these those am is are was were be been being have has had
    having do does did doing a an the and but if or because as until while of at by for
    with about against between into through during before after above below to from up
    down in out on off over under again further then once here there when where why how
    all any both each few more most other some such no nor not only own same so than too
    very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn
    hadn hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn
    """.split()
)
# A cleaned corpus must hold at least this many tokens, with this share of English stop words
# among its words of two letters or more (the 20 Newsgroups: 42%; random bytes: 3%), to be
# worth training on.
MIN_TOKENS = 1_000
MIN_STOP_WORD_SHARE = 0.15
# The counts `hat_vocabulary` reads, beside the cleaned corpus.
HAT_TOKENS = "hat-tokens.json"
# Cleaned corpora are cached by their inputs, this file's code among them.
_CODE_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


class CorpusError(RuntimeError):
    """The corpus cannot be fetched, read or used; the message says why."""


def sha256_tree(path: Path) -> str:
    """Checksum of a file, or of a folder's relative paths and contents."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(item.relative_to(path)).encode() + b"\0" + sha256_file(item).encode())
    return digest.hexdigest()


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _download(url: str, target: Path) -> None:
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            with (
                target.open("wb") as f,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=f"download {url.rsplit('/', 1)[-1]}",
                ) as bar,
            ):
                for chunk in response.iter_bytes():
                    f.write(chunk)
                    bar.update(len(chunk))
    except httpx.HTTPError as exc:
        raise CorpusError(f"cannot download {url}: {exc}") from exc


@dataclass(frozen=True)
class Snapshot:
    """The exact data a run trains on: the corpus and every added text, by checksum."""

    corpus: dict[str, str]
    extra: tuple[dict[str, str], ...]

    @property
    def id(self) -> str:
        payload = json.dumps({"corpus": self.corpus, "extra": list(self.extra)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "corpus": self.corpus, "extra": list(self.extra)}


class DataStore:
    """The raw data a pipeline trains on, and the files derived from it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.raw = root / "raw"
        self.work = root / "work"

    def fetch(self, source: str, sha256: str | None = None) -> dict[str, str]:
        """Bring the corpus into the store (download or copy), check it, record it.

        The corpus lands in a folder named by its checksum and the record
        (`raw/corpus.json`) is rewritten last, atomically: an interrupted fetch
        leaves the previous corpus current and nothing else changed.
        """
        record_path = self.raw / "corpus.json"
        if record_path.exists():
            record: dict[str, str] = json.loads(record_path.read_text())
            if record["source"] == source and sha256 in (None, record["sha256"]):
                return record
        self.raw.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.raw, prefix=".fetch-") as tmp:
            name = source.rstrip("/").rsplit("/", 1)[-1] or "corpus"
            staged = Path(tmp) / name
            if _is_url(source):
                _download(source, staged)
            else:
                path = Path(source).expanduser()
                if not path.exists():
                    raise CorpusError(f"corpus source {source} does not exist")
                if path.is_dir():
                    shutil.copytree(path, staged)
                else:
                    shutil.copyfile(path, staged)
            digest = sha256_tree(staged)
            if sha256 is not None and digest != sha256.lower():
                raise CorpusError(
                    f"checksum mismatch for {source}: expected {sha256}, got {digest}"
                )
            count = sum(1 for _ in iter_documents(staged))
            if count == 0:
                raise CorpusError(f"{source} holds no documents")
            folder = self.raw / "corpus" / digest[:16]
            if not (folder / name).exists():
                folder.mkdir(parents=True, exist_ok=True)
                staged.rename(folder / name)
        record = {
            "source": source,
            "file": f"{digest[:16]}/{name}",
            "sha256": digest,
            "documents": str(count),
        }
        _write_atomic(record_path, json.dumps(record, indent=2))
        return record

    def add(self, source: str) -> dict[str, str]:
        """Add a JSON file of extra texts (objects with a "text" key) to the store."""
        extra = self.raw / "extra"
        extra.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.raw, prefix=".add-") as tmp:
            staged = Path(tmp) / "extra.json"
            if _is_url(source):
                _download(source, staged)
            else:
                path = Path(source).expanduser()
                if not path.is_file():
                    raise CorpusError(f"extra texts file {source} does not exist")
                shutil.copyfile(path, staged)
            texts = read_json_texts(staged)
            if not texts:
                raise CorpusError(f"{source} holds no texts under a 'text' key")
            digest = sha256_file(staged)
            target = extra / f"{digest[:16]}.json"
            if not target.exists():
                staged.rename(target)
        return {"file": target.name, "sha256": digest, "documents": str(len(texts))}

    def snapshot(self) -> Snapshot:
        record_path = self.raw / "corpus.json"
        if not record_path.exists():
            raise CorpusError(f"no corpus in {self.root}: run `hatbot data fetch` first")
        record = json.loads(record_path.read_text())
        extra = tuple(
            {"file": p.name, "sha256": sha256_file(p)}
            for p in sorted((self.raw / "extra").glob("*.json"))
        )
        corpus = {"source": record["source"], "file": record["file"], "sha256": record["sha256"]}
        return Snapshot(corpus=corpus, extra=extra)

    def documents(self) -> Iterator[str]:
        """Every raw document of the snapshot, in a fixed order."""
        snapshot = self.snapshot()
        yield from iter_documents(self.raw / "corpus" / snapshot.corpus["file"])
        for item in snapshot.extra:
            yield from read_json_texts(self.raw / "extra" / item["file"])


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json_texts(path: Path) -> list[str]:
    """Texts of a JSON array (or JSON-lines file) of objects with a "text" key."""
    raw = path.read_text(encoding="utf-8", errors="replace").strip()
    try:
        data = json.loads(raw) if raw else []
        items = data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        try:
            items = [json.loads(line) for line in raw.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path.name} is neither JSON nor JSON lines: {exc}") from exc
    return [str(item["text"]) for item in items if isinstance(item, dict) and "text" in item]


def iter_documents(path: Path) -> Iterator[str]:
    """Documents of an archive (any layout of one file per post) or a folder of text files."""
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            if item.suffix == ".json":
                yield from read_json_texts(item)
            else:
                yield item.read_bytes().decode("latin-1")
        return
    try:
        with tarfile.open(path, "r:*") as archive:
            members = sorted((m for m in archive if m.isfile()), key=lambda m: m.name)
            _check_complete(archive)
            for member in members:
                f = archive.extractfile(member)
                if f is not None:
                    yield f.read().decode("latin-1")
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise CorpusError(f"{path.name} is not a readable corpus archive: {exc}") from exc


def _check_complete(archive: tarfile.TarFile) -> None:
    """Fail unless the archive ended where its members did.

    `tarfile` silently stops at the first unreadable header after the first member, so
    a corrupt archive would read as a shorter corpus: past the last member only the
    end-of-archive zero blocks may follow, and reading to the end checks the
    compression's own checksum (gzip's CRC) too.
    """
    fileobj = archive.fileobj
    assert fileobj is not None
    fileobj.seek(archive.offset)
    for block in iter(lambda: fileobj.read(1 << 20), b""):
        if block.strip(b"\0"):
            raise tarfile.ReadError(f"unreadable data after byte {archive.offset} of the archive")


_EMAIL = re.compile(r"\S+@\S+")
_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+", re.IGNORECASE)
_NON_LETTERS = re.compile(r"[^a-z]+")
_ATTRIBUTION = re.compile(r"(writes|wrote|says)\s*:\s*$", re.IGNORECASE)
# A mail/news header line ("Message-ID: <...>", "Article-I.D.: ..."), or its continuation.
_HEADER = re.compile(r"^[^\s:]+:(\s|$)")


def _is_header_block(lines: list[str]) -> bool:
    """Whether a text's first paragraph is a header block, not prose (tournament texts
    and plain text files have no headers; their first paragraph is kept)."""
    return (
        bool(lines)
        and bool(_HEADER.match(lines[0]))
        and all(_HEADER.match(line) or line[:1] in (" ", "\t") for line in lines)
    )


def clean_text(text: str, params: PreprocessParams) -> str:
    """One post as the game sees it: the prose of the author, lowercase letters only."""
    text = text.replace("\r\n", "\n")
    if params.strip_headers:
        head, sep, body = text.partition("\n\n")
        lines = head.splitlines()
        if sep and _is_header_block(lines):
            subject = next((line[8:] for line in lines if line.lower().startswith("subject:")), "")
            text = f"{subject}\n{body}"
    lines = text.splitlines()
    if params.strip_signatures and "-- " in lines:
        lines = lines[: lines.index("-- ")]
    if params.strip_quotes:
        lines = [
            line
            for line in lines
            if not line.lstrip().startswith((">", "|")) and not _ATTRIBUTION.search(line)
        ]
    text = "\n".join(lines)
    if params.strip_addresses:
        text = _URL.sub(" ", _EMAIL.sub(" ", text))
    return _NON_LETTERS.sub(" ", text.lower()).strip()


def stop_word_share(tokens: list[str]) -> float:
    """The share of English stop words among the tokens of two letters or more (random
    letters make many one-letter "words", and "a", "i", "s", "t" are stop words)."""
    words = [t for t in tokens if len(t) > 1]
    return sum(t in STOP_WORDS for t in words) / max(1, len(words))


@dataclass(frozen=True)
class Corpora:
    """The files training reads: the cleaned corpus, the raw one (for starter-kit proxies)
    and the counts of the words a hat is drawn from (`hat_vocabulary`)."""

    clean: Path
    raw: Path
    tokens: int
    documents: int
    hat_tokens: Path


def prepare(store: DataStore, params: PreprocessParams) -> Corpora:
    """Write the cleaned and raw corpora of the store's snapshot (cached by inputs)."""
    snapshot = store.snapshot()
    key = hashlib.sha256(
        (snapshot.id + params.model_dump_json() + _CODE_DIGEST).encode()
    ).hexdigest()[:16]
    folder = store.work / key
    info_path = folder / "corpora.json"
    files = folder / "clean.txt", folder / "raw.txt"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        return Corpora(*files, info["tokens"], info["documents"], folder / HAT_TOKENS)
    lemmatize = None
    if params.lemmatize:
        from hatbot.game.lexicon import NltkLexicon

        lemmatize = NltkLexicon().lemmatize
    folder.mkdir(parents=True, exist_ok=True)
    try:
        tokens, documents = _write_corpora(store, params, folder, lemmatize)
    except BaseException:
        if not any(folder.iterdir()):
            folder.rmdir()
        raise
    _write_atomic(info_path, json.dumps({"tokens": tokens, "documents": documents}))
    return Corpora(*files, tokens, documents, folder / HAT_TOKENS)


def _write_corpora(
    store: DataStore, params: PreprocessParams, folder: Path, lemmatize: Any
) -> tuple[int, int]:
    tokens = documents = stop_words = long_words = 0
    hat_tokens: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        clean_tmp, raw_tmp = Path(tmp) / "clean.txt", Path(tmp) / "raw.txt"
        with clean_tmp.open("w") as clean_f, raw_tmp.open("w") as raw_f:
            for doc in tqdm(store.documents(), desc="preprocess", unit="doc"):
                raw_f.write(" ".join(doc.split()) + "\n")
                words = clean_text(doc, params).split()
                long_words += sum(len(w) > 1 for w in words)
                stop_words += sum(len(w) > 1 and w in STOP_WORDS for w in words)
                # The host filters a hat's words before it lemmatizes them (docs/GAME.md):
                # `cars` counts towards `car`, whatever the corpus below keeps.
                hat_tokens.update(w for w in words if len(w) > 3 and w not in STOP_WORDS)
                if lemmatize is not None:
                    words = [lemmatize(w) for w in words]
                if words:
                    clean_f.write(" ".join(words) + "\n")
                    tokens += len(words)
                    documents += 1
        if tokens < MIN_TOKENS:
            raise CorpusError(f"the corpus holds {tokens} usable words: too few to train on")
        share = stop_words / max(1, long_words)
        if share < MIN_STOP_WORD_SHARE:
            raise CorpusError(
                f"only {share:.1%} of the corpus's words are English stop words "
                f"(English text has about 40%): it does not look like English text"
            )
        _write_atomic(folder / HAT_TOKENS, json.dumps(dict(sorted(hat_tokens.items()))))
        os.replace(clean_tmp, folder / "clean.txt")
        os.replace(raw_tmp, folder / "raw.txt")
    return tokens, documents


def hat_vocabulary(hat_tokens: Path, lemmatize: Any) -> dict[str, int]:
    """Hat-eligible words and their counts, by the tournament's method (docs/GAME.md).

    `hat_tokens` counts the corpus's lowercase letters-only tokens longer than 3 letters,
    stop words out (`Corpora.hat_tokens`); their WordNet lemmas are kept when
    max(10, M/100) < count <= M, M a tenth of the top count.
    """
    counts: dict[str, int] = json.loads(hat_tokens.read_text())
    lemma_counts: Counter[str] = Counter()
    for word, count in counts.items():
        lemma_counts[lemmatize(word)] += count
    if not lemma_counts:
        return {}
    top = max(lemma_counts.values()) / 10
    floor = max(10, top / 100)
    return {w: c for w, c in lemma_counts.items() if floor < c <= top}
