"""Export: trained fastText models into the compact artifact the service loads.

hatbot's own model and several models per opponent recipe (`hatbot.game.recipes`: its
proxy, on the recipe's corpus in order or shuffled (`train.shuffled_proxies`), and the
proxy's twins, on that corpus shuffled) train side by side (each single-threaded in its
own process, so reruns are byte-identical). Everything the
service needs per word (stems, WordNet existence, hat eligibility, each
recipe's explanation of each hat-eligible word, hatbot's own explanation of every
word the host may ask about) is computed here, once.

`python -m hatbot.pipeline.artifact FOLDER OUT PART PARTS PARENT` is the worker that
computes a share of hatbot's explanations (a fresh interpreter with one BLAS thread; it
dies with the process PARENT, like the fastText workers).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits
from tqdm import tqdm

import hatbot
from hatbot.game.recipes import RECIPES
from hatbot.game.rules import normalise, too_close
from hatbot.host_mode import HostMode
from hatbot.index import (
    ELIGIBLE,
    EXPLANATION_DEPTH,
    FORMAT,
    IS_WORD,
    WordIndex,
    common_words_mask,
    file_sha256,
    nearest_neighbours,
)
from hatbot.pipeline import steps
from hatbot.pipeline.corpus import Corpora, Snapshot, hat_vocabulary
from hatbot.pipeline.params import Params
from hatbot.pipeline.train import (
    Job,
    Trained,
    fasttext_args,
    normalise_rows,
    shuffle_lines,
)
from hatbot.strategy import Strategy

log = logging.getLogger("hatbot.pipeline")

# One BLAS thread per explanation worker: each call is a chain of small matrix products,
# and with OpenBLAS's default threads on a busy machine one explanation took 410 ms
# instead of 12 (docs/BENCHMARKS.md).
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# Each opponent recipe is also trained on copies of its corpus with the documents shuffled by the
# seeds from FIRST_TWIN_SEED on (its "shuffled twins", `train.twins` of them, then the
# proxy's if `train.shuffled_proxies` names the recipe): several models of one recipe
# predict another team's model of it better than one (docs/STRATEGY.md). Not 0 or 1, the
# seeds of the baseline panels that `scripts/strength.py` measures against, so hatbot
# never holds a copy of an opponent.
FIRST_TWIN_SEED = 2


def proxied(params: Params) -> tuple[str, ...]:
    """The recipes the model has proxies of (none without opponents)."""
    return params.train.recipes if params.train.opponents else ()


def twin_seeds(params: Params) -> dict[str, list[int]]:
    """The seeds of each opponent recipe's twins (`train.twins` of them; a recipe without
    twins, or a model without opponents, is not named)."""
    counts = {name: params.train.twins.get(name, 0) for name in proxied(params)}
    return {
        name: list(range(FIRST_TWIN_SEED, FIRST_TWIN_SEED + count))
        for name, count in counts.items()
        if count
    }


def proxy_seed(params: Params, recipe: str) -> int | None:
    """The seed of the order a recipe's proxy sees its corpus in (None: in order): the
    seed after its twins' for the recipes of `train.shuffled_proxies`."""
    if recipe not in params.train.shuffled_proxies:
        return None
    return FIRST_TWIN_SEED + params.train.twins.get(recipe, 0)


def vocabulary(corpus: Path, min_count: int) -> tuple[list[str], NDArray[np.int64]]:
    """Words seen at least `min_count` times, most frequent first (ties alphabetical)."""
    counts: Counter[str] = Counter()
    with corpus.open() as f:
        for line in f:
            counts.update(line.split())
    items = sorted(
        ((w, c) for w, c in counts.items() if c >= min_count), key=lambda x: (-x[1], x[0])
    )
    return [w for w, _ in items], np.array([c for _, c in items], dtype=np.int64)


def training_jobs(corpora: Corpora, params: Params, words: list[str]) -> dict[str, Job]:
    """hatbot's own model and the proxies, each exporting vectors of `words`.

    Each job's folder is named by its inputs (corpus, fastText arguments, vocabulary),
    beside the corpora it reads, so a finished training is reused by later runs.
    """
    recipes = {"own": (corpora.clean, fasttext_args(params.train))}
    for name in proxied(params):
        corpus = corpora.raw if RECIPES[name].corpus == "raw" else corpora.clean
        args = RECIPES[name].fasttext_args()
        order = proxy_seed(params, name)
        recipes[f"proxy-{name}"] = (corpus if order is None else shuffled(corpus, order), args)
        for seed in twin_seeds(params).get(name, ()):
            recipes[twin_role(name, seed)] = (shuffled(corpus, seed), args)
    vocabulary_digest = hashlib.sha256("\n".join(words).encode()).hexdigest()
    jobs = {}
    for role, (corpus, args) in recipes.items():
        key = json.dumps([corpus.name, args, vocabulary_digest], sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        out = corpora.clean.parent / "fasttext" / f"{role}-{digest}"
        jobs[role] = Job(corpus, args, out, tuple(words), name=f"train.fasttext.{role}")
    return jobs


def twin_role(recipe: str, seed: int) -> str:
    """The training job of a recipe's twin on its corpus shuffled by `seed`."""
    return f"twin-{seed}-{recipe}"


def shuffled(corpus: Path, seed: int) -> Path:
    """A copy of `corpus` beside it with its documents in a seeded order (made once)."""
    target = corpus.with_name(f"{corpus.stem}.shuffled-{seed}{corpus.suffix}")
    if not target.is_file():
        shuffle_lines(corpus, target, seed)
    return target


def proxy_hints(
    trained: Trained,
    words: list[str],
    candidates: NDArray[np.int64],
    depth: int,
    extra: list[str] | None = None,
) -> tuple[NDArray[np.int32], list[str]]:
    """For each candidate, the hints the recipe's explainer gives after the host's cleaning.

    Hints are ids into the vocabulary, extended by the returned list of hint strings the
    vocabulary lacks (a raw-corpus recipe says `nasas` where the cleaned corpus has `nasa`);
    `extra`, a list from an earlier call (another model of the recipe), is extended, so
    the models of one recipe number their hints alike.
    """
    return number_hints(hint_words(trained, words, candidates, depth), words, depth, extra)


def hint_words(
    trained: Trained, words: list[str], candidates: NDArray[np.int64], depth: int
) -> list[list[str]]:
    """For each candidate, up to `depth` distinct hints (normalised) of the model's explainer
    that the host keeps. Most of the time goes to NumPy, which lets other threads run."""
    assert trained.queries is not None
    own = normalise_rows(trained.vectors)
    queries = normalise_rows(trained.queries[candidates])
    cleaned = [normalise(w) for w in trained.words]
    lists: list[list[str]] = []
    fetch = min(len(own), depth * 4 + 1)
    for start in range(0, len(candidates), 512):
        block = queries[start : start + 512] @ own.T
        top = np.argpartition(-block, fetch - 1, axis=1)[:, :fetch]
        for row, cols in enumerate(top):
            cols = cols[np.argsort(-block[row, cols], kind="stable")]
            target = words[candidates[start + row]]
            found: dict[str, None] = {}
            for col in cols:
                hint = cleaned[col]
                if trained.words[col] == target or not hint or too_close(target, hint):
                    continue
                found[hint] = None
                if len(found) == depth:
                    break
            lists.append(list(found))
    return lists


def number_hints(
    lists: list[list[str]], words: list[str], depth: int, extra: list[str] | None = None
) -> tuple[NDArray[np.int32], list[str]]:
    """`hint_words`'s lists as ids into `words`, extended by `extra` (see `proxy_hints`)."""
    extra = [] if extra is None else extra
    ids = {w: i for i, w in enumerate(words)}
    ids |= {w: len(words) + i for i, w in enumerate(extra)}
    hints = np.full((len(lists), depth), -1, dtype=np.int32)
    for row, found in enumerate(lists):
        for hint in found:
            if hint not in ids:
                ids[hint] = len(words) + len(extra)
                extra.append(hint)
        hints[row, : len(found)] = [ids[hint] for hint in found]
    return hints, extra


@contextlib.contextmanager
def _two_threads() -> Iterator[ThreadPoolExecutor]:
    """Two worker threads, each NumPy product on one BLAS thread while they run."""
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(2) as pool:
        yield pool


def save_space(folder: Path, unit: NDArray[np.float32]) -> None:
    """A vector space's files: its unit vectors, their nearest neighbours and densities."""
    np.save(folder / "vectors.npy", unit)
    neighbours, density = nearest_neighbours(unit)
    np.save(folder / "neighbours.npy", neighbours)
    np.save(folder / "density.npy", density)


def save_joined(folder: Path, recipe: str, trained: Trained) -> None:
    """`joined.npy` for a recipe whose bots join their hints into one string to guess,
    when its model has subwords (the explainer simulates such a bot by it)."""
    if RECIPES[recipe].plays == "neighbours" and trained.joined is not None:
        np.save(folder / "joined.npy", trained.joined)


def explained_words(index: WordIndex) -> NDArray[np.int32]:
    """The words whose explanation the artifact stores: every word a hat can hold, of either
    kind (the tournament's eligible words and the common ones of everyday hats, as the
    proxies' hint lists cover). Any other word is explained live when asked, within the
    host's deadline (docs/PIPELINE.md)."""
    return np.flatnonzero(index.eligible | index.common).astype(np.int32)


def explain_share(folder: Path, out: Path, part: int, parts: int) -> None:
    """Worker: explain every `parts`-th word of the table, from the `part`-th on, into `out`."""
    index = WordIndex(folder, verify=False, explanations=False)
    # The table serves a host of either mode (hatbot.host_mode): no estimate of it.
    strategy = Strategy(index, mode=HostMode(memory=0))
    ids = explained_words(index)[part::parts]
    hints = np.full((len(ids), EXPLANATION_DEPTH), -1, dtype=np.int32)
    (out / f"of-{part}.txt").write_text(str(len(ids)))
    bar = tqdm(ids, desc="explanations", unit="word", disable=part != 0, mininterval=5)
    for row, i in enumerate(bar):
        words = strategy.explain(index.words[i], EXPLANATION_DEPTH)
        hints[row, : len(words)] = [index.ids[w] for w in words]
        if row % 100 == 99:  # the parent sums the workers' counts into the run's progress
            (out / f"done-{part}.txt").write_text(str(row + 1))
    np.save(out / f"explained-{part}.npy", ids)
    np.save(out / f"explanations-{part}.npy", hints)


def precompute_explanations(
    folder: Path, strategy: dict[str, Any], seeds: dict[str, list[int]], parts: int | None = None
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """hatbot's explanation of each word of `explained_words`, by `parts` worker processes.

    `folder` holds every other file of the artifact; a provisional manifest (no files, no
    version) lets the workers load it, and the real one replaces it at the end of the export.
    """
    parts = parts or max(1, min(2, os.cpu_count() or 1))
    write_manifest(
        folder,
        {
            "format": FORMAT,
            "version": "unfinished",
            "twin_seeds": seeds,
            "strategy": strategy,
        },
    )
    with tempfile.TemporaryDirectory(prefix="explanations-", dir=folder.parent) as tmp:
        out = Path(tmp)
        command = [sys.executable, "-m", "hatbot.pipeline.artifact", str(folder), str(out)]
        parent = str(os.getpid())
        workers = [
            subprocess.Popen(
                [*command, str(part), str(parts), parent], env={**os.environ, **ONE_THREAD}
            )
            for part in range(parts)
        ]
        try:
            codes = _wait_counting(workers, out)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        if any(codes):
            raise RuntimeError(f"explanation workers failed with exit codes {codes}")
        ids = np.concatenate([np.load(out / f"explained-{p}.npy") for p in range(parts)])
        hints = np.concatenate([np.load(out / f"explanations-{p}.npy") for p in range(parts)])
    order = np.argsort(ids, kind="stable")
    return ids[order].astype(np.int32), hints[order].astype(np.int32)


def _wait_counting(workers: list[subprocess.Popen[bytes]], out: Path) -> list[int]:
    """Wait for the explanation workers, noting in the run's progress how far they are (each
    worker writes its share's size, `of-<part>.txt`, and its count so far, `done-<part>.txt`)."""
    while any(worker.poll() is None for worker in workers):
        steps.progress(step="explanations", done=_sum(out, "done-*.txt"), of=_sum(out, "of-*.txt"))
        time.sleep(1.0)
    return [int(worker.returncode) for worker in workers]


def _sum(folder: Path, pattern: str) -> int:
    """The sum of the numbers in the files `pattern` names (one a file; unreadable: 0)."""
    total = 0
    for count in folder.glob(pattern):
        with contextlib.suppress(OSError, ValueError):
            total += int(count.read_text() or 0)
    return total


def file_digests(folder: Path) -> dict[str, str]:
    """The sha256 of every file of an artifact folder but its manifest, by relative path."""
    return {
        str(p.relative_to(folder)): file_sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def code_digest() -> str:
    """A digest of hatbot's own source: any change to the code that explains invalidates a
    cached table (the whole package, so no dependency is ever missed)."""
    package = Path(hatbot.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cached_explanations(
    folder: Path, strategy: dict[str, Any], seeds: dict[str, list[int]], cache: Path | None
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """`precompute_explanations`, reused from `cache` when the same artifact files, strategy,
    twin seeds and code made it before: the table is a pure function of them (the workers run
    one BLAS thread), and it is the export's longest step (docs/PIPELINE.md)."""
    if cache is None:
        return precompute_explanations(folder, strategy, seeds)
    inputs = {
        "files": file_digests(folder),
        "strategy": strategy,
        "twin_seeds": seeds,
        "depth": EXPLANATION_DEPTH,
        "code": code_digest(),
    }
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    entry = cache / key
    if (entry / "explanations.npy").is_file():
        log.info("explanation table reused from %s", entry)
        return np.load(entry / "explained.npy"), np.load(entry / "explanations.npy")
    explained, explanations = precompute_explanations(folder, strategy, seeds)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))  # complete, then one rename
    np.save(tmp / "explained.npy", explained)
    np.save(tmp / "explanations.npy", explanations)
    try:
        tmp.rename(entry)
    except OSError:  # another run stored the same table meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return explained, explanations


@dataclass(frozen=True)
class Built:
    """An artifact folder, complete but not yet in the store."""

    folder: Path
    version: str
    manifest: dict[str, Any]


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def write_artifact(
    folder: Path,
    words: list[str],
    counts: NDArray[np.int64],
    trained: dict[str, Trained],
    lexicon: Any,
    eligible: dict[str, int],
    params: Params,
    snapshot: Snapshot,
    cache: Path | None = None,
) -> Built:
    """Write every file of the artifact into `folder` and its manifest last; the explanation
    table is reused from `cache` when it holds one computed from the same inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    own = trained["own"]
    assert own.queries is not None
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    np.save(folder / "counts.npy", counts)
    seeds = twin_seeds(params)
    with steps.timed("train.export.lexicon"):
        steps.progress(step="stems and WordNet")
        stems = [lexicon.stem(w) for w in tqdm(words, desc="stems", unit="word")]
        (folder / "stems.txt").write_text("\n".join(stems) + "\n")
        flags = np.zeros(len(words), dtype=np.uint8)
        for i, w in enumerate(tqdm(words, desc="wordnet", unit="word")):
            flags[i] = (IS_WORD if lexicon.is_word(w) else 0) | (ELIGIBLE if w in eligible else 0)
        np.save(folder / "flags.npy", flags)
    # The words a hat may hold, of either kind: the tournament's eligible words and the
    # common ones an everyday hat draws (hatbot.hat_kind); the proxies' hint lists cover them.
    in_wordnet = (flags & IS_WORD).astype(bool)
    candidates = np.flatnonzero((flags & ELIGIBLE).astype(bool) | common_words_mask(in_wordnet))
    # Each recipe's proxy and twins: (recipe, folder, model). The spaces' neighbours, then
    # the models' hint lists, are computed two at a time on threads: NumPy's products and
    # partial sorts let the other thread run, and one thread left a core idle
    # (docs/PIPELINE.md, "The full-corpus run, measured").
    proxies: list[tuple[str, Path, Trained]] = []
    for name in proxied(params):
        proxies.append((name, folder / f"proxy-{name}", trained[f"proxy-{name}"]))
        for seed in seeds.get(name, ()):
            twin = folder / f"proxy-{name}" / "twins" / str(seed)
            proxies.append((name, twin, trained[twin_role(name, seed)]))
    with steps.timed("train.export.neighbours"), _two_threads() as pool:
        steps.progress(step="nearest neighbours")
        spaces = [(folder, own.queries)]
        for recipe, sub, model in proxies:
            sub.mkdir(parents=True, exist_ok=True)
            save_joined(sub, recipe, model)
            assert model.queries is not None
            spaces.append((sub, model.queries))
        done = pool.map(lambda space: save_space(space[0], normalise_rows(space[1])), spaces)
        list(tqdm(done, total=len(spaces), desc="spaces", unit="space"))
    with steps.timed("train.export.proxy_hints"), _two_threads() as pool:
        steps.progress(step="the proxies' hint lists")
        depth = params.strategy.proxy_depth
        lists = pool.map(lambda proxy: hint_words(proxy[2], words, candidates, depth), proxies)
        # Numbered in order, so that the models of one recipe number their hints alike: the
        # guesser reads every model of a recipe backwards.
        extras: dict[str, list[str]] = {}
        numbered = tqdm(zip(proxies, lists, strict=True), total=len(proxies), desc="hint lists")
        for (recipe, sub, _), found in numbered:
            hints, extras[recipe] = number_hints(found, words, depth, extras.get(recipe))
            np.save(sub / "hints.npy", hints)
        for recipe, extra in extras.items():
            np.save(folder / f"proxy-{recipe}" / "candidates.npy", candidates.astype(np.int32))
            (folder / f"proxy-{recipe}" / "extra_words.txt").write_text(
                "".join(f"{w}\n" for w in extra)
            )
    strategy = params.strategy.model_dump(mode="json")
    explained_count = 0
    if params.train.explanation_table:
        with steps.timed("train.export.explanations"):
            explained, explanations = cached_explanations(folder, strategy, seeds, cache)
            np.save(folder / "explained.npy", explained)
            np.save(folder / "explanations.npy", explanations)
            explained_count = len(explained)
    files = file_digests(folder)
    # The version names what the model is (files, and the parameters that made them or that
    # the service reads), not how it will be evaluated or promoted.
    made_by = params.model_dump(mode="json", include={"preprocess", "train", "strategy"})
    content = json.dumps({"files": files, "params": made_by}, sort_keys=True)
    version = hashlib.sha256(content.encode()).hexdigest()[:12]
    manifest = {
        "format": FORMAT,
        "version": version,
        "twin_seeds": seeds,
        "params": params.model_dump(mode="json"),
        "strategy": strategy,
        "data": snapshot.as_dict(),
        "code": {"hatbot": hatbot.__version__, "git_commit": git_commit()},
        "vocabulary": {
            "words": len(words),
            "hat_eligible": int((flags & ELIGIBLE).astype(bool).sum()),
            "dim": int(own.queries.shape[1]),
            "explained": explained_count,
        },
        "files": files,
        "metrics": {},
    }
    write_manifest(folder, manifest)
    return Built(folder=folder, version=version, manifest=manifest)


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(folder / "manifest.json")


def build(
    corpora: Corpora, params: Params, snapshot: Snapshot, scratch: Path, lexicon: Any
) -> Built:
    """Train hatbot's model and proxies on the corpora and export the artifact into `scratch`."""
    from hatbot.pipeline.train import run_jobs

    with steps.timed("train.vocabulary"):
        words, counts = vocabulary(corpora.clean, params.train.min_count)
    if len(words) < 10:
        raise ValueError(f"only {len(words)} words occur {params.train.min_count}+ times")
    jobs = training_jobs(corpora, params, words)
    with steps.timed("train.fasttext"):
        todo = [job for job in jobs.values() if not job.finished]
        run_jobs(todo, parallel=2)
        trained = {role: Trained.load(job.out) for role, job in jobs.items()}
    with steps.timed("train.hat_vocabulary"):
        steps.progress(step="hat vocabulary (WordNet lemmas)")
        eligible = hat_vocabulary(corpora.hat_tokens, lexicon.lemmatize)
    built = write_artifact(
        scratch / "artifact",
        words,
        counts,
        trained,
        lexicon,
        eligible,
        params,
        snapshot,
        cache=corpora.clean.parent / "explanations",
    )
    return built


if __name__ == "__main__":
    from hatbot.pipeline.fasttext_worker import _die_with

    if not _die_with(int(sys.argv[5])):
        sys.exit("the export process ended before the explanations started")
    explain_share(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
