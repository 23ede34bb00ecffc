"""The word index: one model artifact loaded into memory, answering vector queries.

An artifact is a folder written by the pipeline (`hatbot.pipeline.artifact`):

    manifest.json          version, parameters, data checksums, metrics, file checksums
    vocab.txt              the vocabulary, most frequent first
    counts.npy             corpus count of each word
    vectors.npy            hatbot's own L2-normalised vectors (float32)
    neighbours.npy         each word's 10 nearest neighbours, best first (int32) ...
    density.npy            ... and its mean cosine with them (float32)
    stems.txt              NLTK's Snowball stem of each word
    flags.npy              bit 0: WordNet knows the word; bit 1: eligible for a hat
    proxy-<name>/vectors.npy      an opponent recipe's vectors of the same vocabulary
    proxy-<name>/neighbours.npy   ... with nearest neighbours and densities in them
    proxy-<name>/density.npy
    proxy-<name>/candidates.npy   hat-eligible word ids ...
    proxy-<name>/hints.npy        ... and the hint ids that recipe's explainer gives for each
    proxy-<name>/extra_words.txt  hints outside the vocabulary, numbered after it
    proxy-<name>/twins/<seed>/    the same recipe trained on its corpus shuffled by each of
                                  the manifest's `twin_seeds`: vectors, neighbours and
                                  densities (the explainer's other models of the recipe)
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import Stemmer
from numpy.typing import NDArray

# The format the export writes. 2: explained.npy and explanations.npy are required;
# 3: neighbours.npy and density.npy in every space; 4: every proxy has its twin (`twin/`);
# 5: every proxy has a twin per seed of the manifest's `twin_seeds` (`twins/<seed>/`).
FORMAT = 5
# Formats the loader reads: an older artifact is served with what it lacks computed at
# load (nearest neighbours: seconds) or done live (explanations), so new code serves,
# and the pipeline re-evaluates, models exported before.
READABLE_FORMATS = (1, 2, 3, 4, 5)
# Nearest neighbours stored per word and space (their mean similarity is its density).
NEIGHBOURS = 10
# Hints precomputed per explained word: the host asks for 5 (10 in earlier tournaments).
EXPLANATION_DEPTH = 10
# Principal axes the guesser's first pass ranks every word on (of 300 in three 100-d
# spaces); docs/BENCHMARKS.md measures how its shortlist agrees with a full pass.
PROJECTION_DIMS = 64
IS_WORD = 1
ELIGIBLE = 2
Vector = NDArray[np.float32]


class ArtifactError(RuntimeError):
    """The artifact folder is missing, incomplete or inconsistent."""


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


def principal_projection(stacked: Vector, dims: int = PROJECTION_DIMS) -> tuple[Vector, Vector]:
    """Every word's vectors in all spaces (`stacked`, side by side) projected on their
    `dims` principal axes (uncentred: the axes that keep dot products best). Returns the
    axes (one column per axis) and the projected words.

    A query's dot product with every word in every space costs a pass over all the
    matrices; its projection costs a pass over one matrix of `dims` columns, and ranks
    the words almost the same way.
    """
    gram = (stacked.T @ stacked).astype(np.float64)
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


def space_facts(folder: Path, vectors: Vector) -> tuple[NDArray[np.int32], Vector]:
    """A space's stored nearest neighbours and densities; computed for an artifact older
    than format 3, which lacks them."""
    if (folder / "neighbours.npy").is_file() or (folder / "density.npy").is_file():
        return np.load(folder / "neighbours.npy"), np.load(folder / "density.npy")
    return nearest_neighbours(np.asarray(vectors))


@dataclass(frozen=True)
class Twin:
    """Another model of an opponent recipe (trained on its corpus shuffled): its vectors of
    our vocabulary and their nearest neighbours. Only the explainer reads it, and the
    service explains from the precomputed table: the vectors are memory-mapped, so their
    pages are read (and resident) only when an explanation is computed live."""

    vectors: Vector
    neighbours: NDArray[np.int32]

    @classmethod
    def load(cls, folder: Path) -> Twin:
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        return cls(vectors=vectors, neighbours=space_facts(folder, vectors)[0])

    def release(self) -> None:
        """Drop the vectors' pages from this process (they stay in the page cache, and a
        live explanation maps them back): after the service's checks at load, which
        explain a few words live."""
        buffer = getattr(self.vectors, "base", None)
        if isinstance(buffer, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            buffer.madvise(mmap.MADV_DONTNEED)


@dataclass(frozen=True)
class Proxy:
    """An opponent recipe: its vectors of our vocabulary and its explainer's hint lists."""

    name: str
    vectors: Vector
    neighbours: NDArray[np.int32]
    density: Vector
    # The recipe's other models (one from artifact format 4, one per twin seed from format
    # 5); none in older artifacts.
    twins: tuple[Twin, ...]
    # Hint strings the vocabulary lacks, numbered after it.
    extra: dict[str, int]
    # Inverted hint lists: for hint id h, `targets[starts[h]:starts[h+1]]` are the
    # candidates whose explanation holds h, at `positions[...]`.
    starts: NDArray[np.int64]
    targets: NDArray[np.int32]
    positions: NDArray[np.int32]

    @classmethod
    def load(cls, folder: Path, size: int, vectors: Vector, twins: list[Path]) -> Proxy:
        """The proxy in `folder`, with the twins in the folders `twins`."""
        neighbours, density = space_facts(folder, vectors)
        candidates = np.load(folder / "candidates.npy")
        hints = np.load(folder / "hints.npy")
        extra_file = folder / "extra_words.txt"
        extra_words = extra_file.read_text().split("\n")[:-1] if extra_file.exists() else []
        rows, cols = np.nonzero(hints >= 0)
        hint_ids = hints[rows, cols]
        order = np.argsort(hint_ids, kind="stable")
        total = size + len(extra_words)
        starts = np.searchsorted(hint_ids[order], np.arange(total + 1)).astype(np.int64)
        return cls(
            name=folder.name.removeprefix("proxy-"),
            vectors=vectors,
            neighbours=neighbours,
            density=density,
            twins=tuple(Twin.load(twin) for twin in twins),
            extra={w: size + i for i, w in enumerate(extra_words)},
            starts=starts,
            targets=candidates[rows[order]].astype(np.int32),
            positions=cols[order].astype(np.int32),
        )

    def explained_by(self, hint: int) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Candidates whose explanation by this recipe holds hint id `hint`, and where."""
        lo, hi = self.starts[hint], self.starts[hint + 1]
        return self.targets[lo:hi], self.positions[lo:hi]


@dataclass(frozen=True)
class Explanations:
    """Precomputed explanations: `hints[rows[i]]` holds word i's hint ids when `rows[i] >= 0`."""

    rows: NDArray[np.int32]
    hints: NDArray[np.int32]

    @classmethod
    def load(cls, folder: Path, size: int) -> Explanations:
        explained = np.load(folder / "explained.npy")
        hints = np.load(folder / "explanations.npy")
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


class WordIndex:
    """A loaded artifact: vocabulary, vectors, per-word facts and opponent proxies.

    `explanations=False` skips the precomputed explanations (the export builds an index
    of the unfinished artifact to compute them); `explanation()` then always answers None,
    as for a format-1 artifact, which has none.
    """

    def __init__(self, folder: Path, verify: bool = True, explanations: bool = True) -> None:
        self.folder = folder
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise ArtifactError(f"{folder} has no manifest.json")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{manifest_path} is not valid JSON: {exc}") from exc
        if self.manifest.get("format") not in READABLE_FORMATS:
            raise ArtifactError(f"{folder} has artifact format {self.manifest.get('format')}")
        if verify:
            for name, expected in self.manifest.get("files", {}).items():
                path = folder / name
                if not path.is_file() or file_sha256(path) != expected:
                    raise ArtifactError(f"{path} is missing or does not match its checksum")
        try:
            self.words = (folder / "vocab.txt").read_text().split("\n")[:-1]
            self.stems = (folder / "stems.txt").read_text().split("\n")[:-1]
            self.counts: NDArray[np.int64] = np.load(folder / "counts.npy")
            self.flags: NDArray[np.uint8] = np.load(folder / "flags.npy")
            proxies = sorted(folder.glob("proxy-*"))
            self.stacked, spaces = side_by_side([folder, *proxies])
            self.vectors: Vector = spaces[0]
            self.neighbours, self.density = space_facts(folder, self.vectors)
            self.proxies = [
                Proxy.load(p, len(self.words), v, self._twin_folders(p))
                for p, v in zip(proxies, spaces[1:], strict=True)
            ]
            tabled = explanations and (folder / "explained.npy").is_file()
            self.explanations = Explanations.load(folder, len(self.words)) if tabled else None
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{folder} cannot be read: {exc}") from exc
        size = len(self.words)
        shapes = [len(self.stems), len(self.counts), len(self.flags), self.vectors.shape[0]]
        facts = [(self.neighbours, self.density)] + [
            (p.neighbours, p.density) for p in self.proxies
        ]
        shapes += [n for neighbours, density in facts for n in (len(neighbours), len(density))]
        shapes += [p.vectors.shape[0] for p in self.proxies]
        shapes += [
            n for p in self.proxies for t in p.twins for n in (len(t.vectors), len(t.neighbours))
        ]
        if size == 0 or any(n != size for n in shapes):
            raise ArtifactError(f"{folder} holds tables of different lengths: {size}, {shapes}")
        self.ids = {w: i for i, w in enumerate(self.words)}
        self.is_word = (self.flags & IS_WORD).astype(bool)
        self.eligible = (self.flags & ELIGIBLE).astype(bool)
        self._stemmer = Stemmer.Stemmer("english")

    def _twin_folders(self, proxy: Path) -> list[Path]:
        """A proxy's twins: one per seed the manifest names (format 5), `twin/` (format 4,
        optional before), and a missing one is an error (the loader fails reading it)."""
        if self.manifest["format"] >= 5:
            seeds = self.manifest.get("twin_seeds")
            if not isinstance(seeds, list) or not all(type(s) is int for s in seeds):
                raise ArtifactError(f"{self.folder}: twin_seeds {seeds!r} are not integers")
            return [proxy / "twins" / str(seed) for seed in seeds]
        if self.manifest["format"] == 4 or (proxy / "twin").is_dir():
            return [proxy / "twin"]
        return []

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

    def top(self, scores: NDArray[np.float32], k: int) -> NDArray[np.int64]:
        """Ids of the `k` highest scores, best first."""
        k = min(k, len(scores))
        part = np.argpartition(-scores, k - 1)[:k]
        return part[np.argsort(-scores[part], kind="stable")]
