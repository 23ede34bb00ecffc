"""The word index: one model artifact loaded into memory, answering vector queries.

An artifact is a folder written by the pipeline (`hatbot.pipeline.artifact`) in the one
format this module reads, `FORMAT`; an artifact of any other format is refused at load
(`ArtifactFormatError`: re-export it with `hatbot train`). Its files:

Required

    manifest.json          format, version, twin_seeds, strategy, data checksums, metrics,
                           file checksums (`twin_seeds`: each recipe's twin seeds, a list
                           of integers; a recipe without twins is not named)
    vocab.txt              the vocabulary, most frequent first
    counts.npy             corpus count of each word
    vectors.npy            hatbot's own L2-normalised vectors (float32)
    neighbours.npy         each word's 10 nearest neighbours, best first (int32) ...
    density.npy            ... and its mean cosine with them (float32)
    stems.txt              NLTK's Snowball stem of each word
    flags.npy              bit 0: WordNet knows the word; bit 1: eligible for a hat

Optional: any number of opponent recipes (a quick model has none), each folder complete

    proxy-<name>/vectors.npy      an opponent recipe's vectors of the same vocabulary
    proxy-<name>/neighbours.npy   ... with nearest neighbours and densities in them
    proxy-<name>/density.npy
    proxy-<name>/candidates.npy   hat-eligible word ids ...
    proxy-<name>/hints.npy        ... and the hint ids that recipe's explainer gives for each
    proxy-<name>/extra_words.txt  hints outside the vocabulary, numbered after it
    proxy-<name>/joined.npy       optional, for a recipe whose bots guess from their hints
                                  joined into one string, trained with subwords: each
                                  word's character n-gram rows summed (float32)
    proxy-<name>/twins/<seed>/    for each of the recipe's `twin_seeds` in the manifest (a
                                  recipe it does not name has none): the same recipe
                                  trained on its corpus shuffled by that seed (vectors.npy,
                                  neighbours.npy: the explainer's other models of the recipe;
                                  hints.npy, optional: its hint lists, for the guesser;
                                  joined.npy when the proxy has one)

Optional: the explanation table, both files or neither (a quick model has none, and
is explained live)

    explained.npy          ids of the words whose explanation is precomputed (int32, ascending)
    explanations.npy       their explanations: hint ids (int32), one row each, -1 padded

At load every space's vectors are copied side by side into one matrix (`stacked`): a
word's vectors in all spaces are one contiguous row.

The explanations are `Strategy.explain(word, EXPLANATION_DEPTH)` at export time (the
strategy explains greedily, so the first n hints are its answer for n_words = n); the
service answers from them and computes only the words and lengths they lack.
"""

from __future__ import annotations

import hashlib
import json
import mmap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import Stemmer
from numpy.typing import NDArray

# The format the export writes and the only one the loader reads (the module docstring
# lists its files): an artifact of another format is re-exported, never patched at load.
FORMAT = 7
# Nearest neighbours stored per word and space (their mean similarity is its density).
NEIGHBOURS = 10
# Hints precomputed per explained word: the host asks for 5 (10 in earlier tournaments).
EXPLANATION_DEPTH = 10
# Principal axes the guesser's first pass ranks every word on (of 300 in three 100-d
# spaces); docs/BENCHMARKS.md measures how its shortlist agrees with a full pass.
PROJECTION_DIMS = 64
IS_WORD = 1
ELIGIBLE = 2
# The most frequent words WordNet knows are the "common" ones (`common_words_mask`): an
# everyday hat's words are among them more often than not (hatbot.hat_kind).
COMMON_WORDS = 2000
Vector = NDArray[np.float32]


class ArtifactError(RuntimeError):
    """The artifact folder is missing, incomplete or inconsistent."""


class ArtifactFormatError(ArtifactError):
    """The artifact was written in a format this code does not read (older or newer)."""

    def __init__(self, folder: Path, found: object) -> None:
        super().__init__(
            f"{folder}: artifact format {found!r}, this service reads {FORMAT}: "
            "re-export it with `hatbot train`"
        )
        self.found = found


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def nearest_neighbours(
    unit: NDArray[np.float32], k: int = NEIGHBOURS
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Each word's `k` nearest neighbours (itself left out), best first, and its density:
    the mean cosine with them.

    A word in a crowded region is close to many words; the guesser subtracts the density
    from a candidate's similarity to the hints (CSLS, Conneau et al. 2018), so a hint
    counts as evidence for a candidate when it stands out among the candidate's
    neighbours. The explainer counts a hint's neighbours among the words a guesser
    may answer before the target.
    """
    k = min(k, len(unit) - 1)
    neighbours = np.zeros((len(unit), max(k, 0)), dtype=np.int32)
    density = np.zeros(len(unit), dtype=np.float32)
    if k < 1:
        return neighbours, density
    for start in range(0, len(unit), 1024):
        rows = np.arange(start, min(start + 1024, len(unit)))
        block = unit[rows] @ unit.T
        block[np.arange(len(rows)), rows] = -np.inf
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-sims, axis=1, kind="stable")
        neighbours[rows] = np.take_along_axis(top, order, axis=1)
        density[rows] = sims.mean(axis=1)
    return neighbours, density


def principal_projection(
    stacked: Vector, dims: int = PROJECTION_DIMS, columns: NDArray[np.bool_] | None = None
) -> tuple[Vector, Vector]:
    """Every word's vectors in all spaces (`stacked`, side by side) projected on their
    `dims` principal axes (uncentred: the axes that keep dot products best). Returns the
    axes (one column per axis) and the projected words. `columns`: the columns a query
    uses (the others, of spaces it gives no weight, get no axis).

    A query's dot product with every word in every space costs a pass over all the
    matrices; its projection costs a pass over one matrix of `dims` columns, and ranks
    the words almost the same way.
    """
    gram = (stacked.T @ stacked).astype(np.float64)
    if columns is not None:
        gram[~columns] = 0.0
        gram[:, ~columns] = 0.0
    _, eigenvectors = np.linalg.eigh(gram)
    axes = np.ascontiguousarray(eigenvectors[:, ::-1][:, : min(dims, gram.shape[0])], np.float32)
    projected = huge_pages_array(len(stacked), axes.shape[1])
    np.matmul(stacked, axes, out=projected)
    return axes, projected


def huge_pages_array(rows: int, columns: int) -> Vector:
    """A zeroed float32 matrix in memory that asks the kernel for transparent huge pages
    (`madvise`): a matrix read row by row at random, or streamed per query, then costs
    a TLB entry per 2 MB instead of per 4 KB."""
    buffer = mmap.mmap(-1, max(1, rows * columns * 4))
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buffer.madvise(mmap.MADV_HUGEPAGE)
    return np.frombuffer(buffer, dtype=np.float32, count=rows * columns).reshape(rows, columns)


def side_by_side(folders: list[Path]) -> tuple[Vector, list[Vector]]:
    """The `vectors.npy` of each folder, copied side by side into one row-major matrix, and
    each space as a view of its columns. A word's vectors in every space are then one
    contiguous row: the guesser gathers a thousand rows per answer, and a row is then one
    memory page (or none: the matrix asks for transparent huge pages) instead of three."""
    files = [np.load(f / "vectors.npy", mmap_mode="r") for f in folders]
    if any(v.ndim != 2 or len(v) != len(files[0]) for v in files):
        raise ValueError(f"vector tables of shapes {[v.shape for v in files]}")
    widths = [v.shape[1] for v in files]
    stacked = huge_pages_array(len(files[0]), sum(widths))
    spaces = []
    start = 0
    for vectors, width in zip(files, widths, strict=True):
        stacked[:, start : start + width] = vectors
        spaces.append(stacked[:, start : start + width])
        start += width
    return stacked, spaces


@dataclass(frozen=True)
class Twin:
    """Another model of an opponent recipe (trained on its corpus shuffled): its vectors of
    our vocabulary and their nearest neighbours. Only the explainer reads it, and the
    service explains from the precomputed table: the vectors are memory-mapped, so their
    pages are read (and resident) only when an explanation is computed live."""

    vectors: Vector
    neighbours: NDArray[np.int32]
    # What each word adds to the query of a bot that joins its hints into one string
    # (None: the model has no subwords, or the artifact lacks them).
    joined: Vector | None = None

    @classmethod
    def load(cls, folder: Path) -> Twin:
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        return cls(
            vectors=vectors,
            neighbours=np.load(folder / "neighbours.npy"),
            joined=load_joined(folder),
        )

    def release(self) -> None:
        """Drop the vectors' and joined rows' pages from this process (they stay in the
        page cache, and a live explanation maps them back): after the service's checks at
        load, which explain a few words live."""
        for matrix in (self.vectors, self.joined):
            buffer = getattr(matrix, "base", None)
            if isinstance(buffer, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
                buffer.madvise(mmap.MADV_DONTNEED)


def load_joined(folder: Path) -> Vector | None:
    """A model's `joined.npy`, memory-mapped as its twins' vectors are, or None."""
    path = folder / "joined.npy"
    return np.load(path, mmap_mode="r") if path.is_file() else None


@dataclass(frozen=True)
class HintLists:
    """One model's hint lists inverted: for hint id h, `targets[starts[h]:starts[h+1]]` are
    the candidates whose explanation holds h, at `positions[...]`."""

    starts: NDArray[np.int64]
    targets: NDArray[np.int32]
    positions: NDArray[np.int32]

    @classmethod
    def invert(
        cls, hints: NDArray[np.int32], candidates: NDArray[np.int32], total: int
    ) -> HintLists:
        """Invert `hints` (one row per candidate, -1 padded) over hint ids below `total`."""
        if hints.ndim != 2 or len(hints) != len(candidates):
            raise ValueError(f"hint lists of shape {hints.shape} for {len(candidates)} candidates")
        if hints.size and hints.max() >= total:
            raise ValueError(f"hint ids up to {hints.max()}, but only {total} words")
        rows, cols = np.nonzero(hints >= 0)
        hint_ids = hints[rows, cols]
        order = np.argsort(hint_ids, kind="stable")
        return cls(
            starts=np.searchsorted(hint_ids[order], np.arange(total + 1)).astype(np.int64),
            targets=candidates[rows[order]].astype(np.int32),
            positions=cols[order].astype(np.int32),
        )

    def explained_by(self, hint: int) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Candidates whose explanation holds hint id `hint`, and where."""
        lo, hi = self.starts[hint], self.starts[hint + 1]
        return self.targets[lo:hi], self.positions[lo:hi]


@dataclass(frozen=True)
class Proxy:
    """An opponent recipe: its vectors of our vocabulary and its explainers' hint lists."""

    name: str
    vectors: Vector
    neighbours: NDArray[np.int32]
    density: Vector
    # The recipe's other models, one per seed of the manifest's `twin_seeds` (or none).
    twins: tuple[Twin, ...]
    # Hint strings the vocabulary lacks, numbered after it (alike in all its models).
    extra: dict[str, int]
    # The hint lists of the proxy, then of each twin that has them.
    lists: tuple[HintLists, ...]
    # What each word adds to a joined-hints query (as `Twin.joined`).
    joined: Vector | None = None

    @classmethod
    def load(cls, folder: Path, size: int, vectors: Vector, twins: list[Path]) -> Proxy:
        """The proxy in `folder`, with the twins in the folders `twins`."""
        candidates = np.load(folder / "candidates.npy")
        extra_words = (folder / "extra_words.txt").read_text().split("\n")[:-1]
        total = size + len(extra_words)
        files = [folder / "hints.npy"] + [t / "hints.npy" for t in twins]
        lists = [HintLists.invert(np.load(f), candidates, total) for f in files if f.is_file()]
        return cls(
            name=folder.name.removeprefix("proxy-"),
            vectors=vectors,
            neighbours=np.load(folder / "neighbours.npy"),
            density=np.load(folder / "density.npy"),
            twins=tuple(Twin.load(twin) for twin in twins),
            extra={w: size + i for i, w in enumerate(extra_words)},
            lists=tuple(lists),
            joined=load_joined(folder),
        )

    def explained_by(self, hint: int) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Candidates whose explanation by the proxy itself holds hint id `hint`, and where."""
        return self.lists[0].explained_by(hint)


# The explanation table's files: both or neither.
TABLE_FILES = ("explained.npy", "explanations.npy")


def _check_table(
    folder: Path, size: int, explained: NDArray[np.int32], hints: NDArray[np.int32]
) -> None:
    """Refuse a table whose shapes, types, order or ids do not fit a vocabulary of `size`."""
    if (
        explained.dtype != np.int32
        or hints.dtype != np.int32
        or explained.ndim != 1
        or hints.shape != (len(explained), EXPLANATION_DEPTH)
    ):
        raise ArtifactError(
            f"{folder} holds explanations of shape {hints.shape} ({hints.dtype}) "
            f"for {explained.shape} ({explained.dtype}) words"
        )
    if explained.size and (
        explained[0] < 0 or explained[-1] >= size or np.any(np.diff(explained) <= 0)
    ):
        raise ArtifactError(f"{folder}/explained.npy is not ascending vocabulary ids")
    if hints.size and (hints.min() < -1 or hints.max() >= size):
        raise ArtifactError(f"{folder}/explanations.npy holds ids outside the vocabulary")


@dataclass(frozen=True)
class Explanations:
    """Precomputed explanations: `hints[rows[i]]` holds word i's hint ids when `rows[i] >= 0`."""

    rows: NDArray[np.int32]
    hints: NDArray[np.int32]

    @classmethod
    def load(cls, folder: Path, size: int) -> Explanations | None:
        """The table in `folder`, or None when it has neither file (a quick model)."""
        present = [(folder / name).is_file() for name in TABLE_FILES]
        if not any(present):
            return None
        if not all(present):
            raise ArtifactError(f"{folder} holds one of {TABLE_FILES} without the other")
        explained = np.load(folder / "explained.npy")
        hints = np.load(folder / "explanations.npy")
        _check_table(folder, size, explained, hints)
        rows = np.full(size, -1, dtype=np.int32)
        rows[explained] = np.arange(len(explained), dtype=np.int32)
        return cls(rows=rows, hints=hints)

    def __len__(self) -> int:
        return len(self.hints)

    def hint_ids(self, word_id: int, n_words: int) -> list[int] | None:
        """The first `n_words` precomputed hints of word `word_id`, or None if not stored."""
        row = int(self.rows[word_id])
        if row < 0 or n_words > self.hints.shape[1]:
            return None
        return [h for h in self.hints[row, :n_words].tolist() if h >= 0]


def read_manifest(folder: Path) -> dict[str, Any]:
    """The artifact's manifest, refused unless it is of this code's `FORMAT`."""
    path = folder / "manifest.json"
    if not path.is_file():
        raise ArtifactError(f"{folder} has no manifest.json")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    found = manifest.get("format")
    # `type(...) is int`: JSON's `true` and `5.0` are not format 5.
    if type(found) is not int or found != FORMAT:
        raise ArtifactFormatError(folder, found)
    return manifest


def verify_checksums(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Refuse the artifact when a file the manifest lists is missing or altered."""
    for name, expected in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file() or file_sha256(path) != expected:
            raise ArtifactError(f"{path} is missing or does not match its checksum")


def twin_seeds(
    folder: Path, manifest: Mapping[str, Any], proxies: list[Path]
) -> dict[str, list[int]]:
    """Each proxy's twin seeds (`twins/<seed>/`): integers (a seed names a folder), exactly
    the twin folders the proxy holds (a recipe the manifest does not name holds none)."""
    seeds = manifest.get("twin_seeds")
    # `type(...) is int`: a bool is no seed, and a string could name any folder.
    if not isinstance(seeds, dict) or not all(
        isinstance(v, list) and all(type(s) is int for s in v) for v in seeds.values()
    ):
        raise ArtifactError(f"{folder}: twin_seeds {seeds!r} are not lists of integers by recipe")
    for proxy in proxies:
        name = proxy.name.removeprefix("proxy-")
        named = sorted(str(seed) for seed in seeds.get(name, []))
        twins = proxy / "twins"
        held = sorted(d.name for d in twins.iterdir()) if twins.is_dir() else []
        if held != named:
            raise ArtifactError(f"{proxy} holds twins {held}, the manifest names {named}")
    return seeds


def common_words_mask(in_wordnet: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The common words: the COMMON_WORDS most frequent vocabulary words WordNet knows (the
    vocabulary is ordered most frequent first). An everyday hat draws from them."""
    common = in_wordnet.copy()
    common[COMMON_WORDS:] = False
    return common


class WordIndex:
    """A loaded artifact: vocabulary, vectors, per-word facts and opponent proxies.

    It is also the host's `Lexicon` (`hatbot.game.rules`: `stem`, `is_word`) for its
    vocabulary, from the stems and WordNet flags the export stored: serving needs no NLTK.

    `explanations=False` skips the precomputed explanations (the export builds an index
    of the unfinished artifact to compute them); `explanation()` then always answers None,
    as for an artifact without a table.
    """

    def __init__(self, folder: Path, verify: bool = True, explanations: bool = True) -> None:
        self.folder = folder
        self.manifest = read_manifest(folder)
        if verify:
            verify_checksums(folder, self.manifest)
        try:
            self._load_tables(explanations)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{folder} cannot be read: {exc}") from exc
        self._check_lengths()
        self.ids = {w: i for i, w in enumerate(self.words)}
        self.in_wordnet = (self.flags & IS_WORD).astype(bool)
        self.eligible = (self.flags & ELIGIBLE).astype(bool)
        self.common = common_words_mask(self.in_wordnet)
        self._stemmer = Stemmer.Stemmer("english")

    def _load_tables(self, explanations: bool) -> None:
        """Read every file: the vocabulary's facts, the spaces side by side, the proxies
        and their twins, and the explanation table unless `explanations` is False."""
        folder = self.folder
        self.words = (folder / "vocab.txt").read_text().split("\n")[:-1]
        self.stems = (folder / "stems.txt").read_text().split("\n")[:-1]
        self.counts: NDArray[np.int64] = np.load(folder / "counts.npy")
        self.flags: NDArray[np.uint8] = np.load(folder / "flags.npy")
        proxies = sorted(folder.glob("proxy-*"))
        seeds = twin_seeds(folder, self.manifest, proxies)
        self.stacked, spaces = side_by_side([folder, *proxies])
        self.vectors: Vector = spaces[0]
        self.neighbours: NDArray[np.int32] = np.load(folder / "neighbours.npy")
        self.density: Vector = np.load(folder / "density.npy")
        self.proxies = [
            Proxy.load(
                p,
                len(self.words),
                v,
                [p / "twins" / str(seed) for seed in seeds.get(p.name.removeprefix("proxy-"), [])],
            )
            for p, v in zip(proxies, spaces[1:], strict=True)
        ]
        self.explanations = Explanations.load(folder, len(self.words)) if explanations else None

    def _check_lengths(self) -> None:
        """Refuse the artifact unless every per-word table has one row per vocabulary word."""
        lengths = {
            "stems.txt": len(self.stems),
            "counts.npy": len(self.counts),
            "flags.npy": len(self.flags),
            "vectors.npy": len(self.vectors),
            "neighbours.npy": len(self.neighbours),
            "density.npy": len(self.density),
        }
        for p in self.proxies:
            lengths[f"proxy-{p.name}/vectors.npy"] = len(p.vectors)
            lengths[f"proxy-{p.name}/neighbours.npy"] = len(p.neighbours)
            lengths[f"proxy-{p.name}/density.npy"] = len(p.density)
            if p.joined is not None:
                lengths[f"proxy-{p.name}/joined.npy"] = len(p.joined)
            for k, twin in enumerate(p.twins):
                lengths[f"proxy-{p.name} twin {k}: vectors.npy"] = len(twin.vectors)
                lengths[f"proxy-{p.name} twin {k}: neighbours.npy"] = len(twin.neighbours)
                if twin.joined is not None:
                    lengths[f"proxy-{p.name} twin {k}: joined.npy"] = len(twin.joined)
        size = len(self.words)
        wrong = {name: n for name, n in lengths.items() if n != size}
        if size == 0 or wrong:
            raise ArtifactError(f"{self.folder}: {size} words, but tables of lengths {wrong}")

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def __len__(self) -> int:
        return len(self.words)

    def explanation(self, word: str, n_words: int) -> list[str] | None:
        """The precomputed explanation of `word` cut to `n_words`, or None when the table
        lacks the word (or is not loaded) or `n_words` exceeds its depth."""
        i = self.ids.get(word)
        if i is None or self.explanations is None:
            return None
        ids = self.explanations.hint_ids(i, n_words)
        return None if ids is None else [self.words[h] for h in ids]

    def stem(self, word: str) -> str:
        """The host's Snowball stem: the artifact's table, else PyStemmer's (same algorithm)."""
        i = self.ids.get(word)
        return self.stems[i] if i is not None else str(self._stemmer.stemWord(word))

    def is_word(self, word: str) -> bool:
        """Whether WordNet knows `word`, as the export found it (False outside the
        vocabulary: the strategy never gives such a hint)."""
        i = self.ids.get(word)
        return i is not None and bool(self.in_wordnet[i])

    def top(self, scores: NDArray[np.float32], k: int) -> NDArray[np.int64]:
        """Ids of the `k` highest scores, best first."""
        k = min(k, len(scores))
        part = np.argpartition(-scores, k - 1)[:k]
        return part[np.argsort(-scores[part], kind="stable")]
