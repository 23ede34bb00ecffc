"""fastText training in fresh processes: byte-identical single-threaded runs, clear failures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hatbot.pipeline.train import (
    Job,
    Trained,
    TrainingError,
    fasttext_args,
    run_jobs,
    shuffle_lines,
)

TINY_ARGS = {
    "model": "skipgram",
    "dim": 24,
    "epoch": 2,
    "ws": 5,
    "minCount": 3,
    "minn": 0,
    "maxn": 0,
    "lr": 0.05,
    "neg": 5,
    "thread": 1,
}


@pytest.fixture(scope="module")
def clean_corpus(tiny_paths: Any, tiny_params: Any) -> Path:
    from hatbot.pipeline.corpus import DataStore, prepare

    return prepare(DataStore(tiny_paths.data), tiny_params.preprocess).clean


def test_single_threaded_training_is_byte_identical(clean_corpus: Path, tmp_path: Path) -> None:
    jobs = [Job(clean_corpus, TINY_ARGS, tmp_path / name, ("space", "nosuchword")) for name in "ab"]
    run_jobs(jobs, parallel=2)
    a, b = (Trained.load(job.out) for job in jobs)
    assert a.words == b.words and len(a.words) > 1000
    assert a.vectors.tobytes() == b.vectors.tobytes()
    assert a.queries is not None and b.queries is not None
    assert a.queries.tobytes() == b.queries.tobytes() and a.queries.shape == (2, 24)
    assert np.isfinite(a.vectors).all()
    for name in ("vectors.npy", "counts.npy", "words.txt"):
        assert (jobs[0].out / name).read_bytes() == (jobs[1].out / name).read_bytes()


def test_fasttext_args_map_every_training_parameter() -> None:
    from hatbot.pipeline.params import TrainParams

    args = fasttext_args(
        TrainParams(
            model="cbow",
            dim=7,
            epoch=3,
            ws=2,
            min_count=4,
            minn=2,
            maxn=4,
            lr=0.1,
            neg=3,
            threads=2,
        )
    )
    assert args == {
        "model": "cbow",
        "dim": 7,
        "epoch": 3,
        "ws": 2,
        "minCount": 4,
        "minn": 2,
        "maxn": 4,
        "lr": 0.1,
        "neg": 3,
        "thread": 2,
    }


def test_a_diverging_training_fails_with_fasttexts_error_and_stops_the_others(
    clean_corpus: Path, tmp_path: Path
) -> None:
    slow = Job(clean_corpus, {**TINY_ARGS, "epoch": 200, "dim": 100}, tmp_path / "slow")
    bad = Job(clean_corpus, {**TINY_ARGS, "lr": 1.0}, tmp_path / "diverging")
    start = time.monotonic()
    with pytest.raises(TrainingError, match=r"diverging failed \(exit 1\).*Encountered NaN"):
        run_jobs([slow, bad], parallel=2)
    assert time.monotonic() - start < 60  # the slow one was stopped, not waited for
    assert not (slow.out / "done.json").exists() and not (bad.out / "done.json").exists()


def test_training_ignores_what_the_heap_held_before(
    clean_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fastText 0.9.3 leaves most of its input matrix uninitialised (docs/PIPELINE.md,
    "Failure is safe"). With garbage there (glibc's MALLOC_PERTURB_=1 hands out 0xfe
    bytes) a small one-thread model ends in NaN; the pipeline's workers train it anyway."""
    import json
    import os
    import subprocess
    import sys

    args = {**TINY_ARGS, "dim": 5, "minn": 3, "maxn": 6, "bucket": 20_000}
    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    spec = {"corpus": str(clean_corpus), "args": args, "out": str(by_hand), "queries": None}
    (by_hand / "job.json").write_text(json.dumps(spec))
    worker = [sys.executable, "-m", "hatbot.pipeline.fasttext_worker", str(by_hand / "job.json")]
    garbage = {**os.environ, "MALLOC_PERTURB_": "1"}
    assert subprocess.run(worker, env=garbage).returncode == 1
    assert "Encountered NaN" in (by_hand / "error.txt").read_text()

    monkeypatch.setenv("MALLOC_PERTURB_", "1")
    job = Job(clean_corpus, args, tmp_path / "worker")
    run_jobs([job], parallel=1)
    vectors = Trained.load(job.out).vectors
    assert vectors.size > 0 and np.isfinite(vectors).all()


def test_a_subword_model_exports_each_words_rows_in_joined_hints(
    clean_corpus: Path, tmp_path: Path
) -> None:
    """`joined.npy`: per word, the rows of the n-grams fastText reads when the word stands
    between spaces in hints joined into one string (the library's own n-grams of "< w >"
    without the brackets). Their sum points where fastText's vector of the joined hints
    does, closer than the hints' word vectors do; a model without subwords writes none,
    and a folder trained before the worker wrote them is not finished."""
    import fasttext

    words = ("space", "orbit", "launch", "nosuchword")
    args = {**TINY_ARGS, "minn": 3, "maxn": 6, "bucket": 20_000}
    job = Job(clean_corpus, args, tmp_path / "subwords", words, keep_bin=True)
    plain = Job(clean_corpus, TINY_ARGS, tmp_path / "plain", words)
    run_jobs([job, plain], parallel=2)
    assert job.finished and plain.finished
    assert Trained.load(plain.out).joined is None
    joined = Trained.load(job.out).joined
    assert joined is not None and joined.shape == (len(words), 24)
    model = fasttext.load_model(str(job.out / "model.bin"))
    for word, row in zip(words, joined, strict=True):
        grams, ids = model.get_subwords(f" {word} ")
        inside = [i for g, i in zip(grams, ids, strict=True) if "<" not in g and ">" not in g]
        assert len(inside) > 10
        expected = np.sum([model.get_input_vector(int(i)) for i in inside], axis=0)
        np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)

    def cosine(a: Any, b: Any) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    query = model.get_word_vector("space orbit launch")
    by_rows = cosine(query, joined[:3].sum(axis=0))
    by_words = cosine(query, sum(model.get_word_vector(w) for w in words[:3]))
    assert by_rows > by_words and by_rows > 0.8
    (job.out / "joined.npy").unlink()
    assert not job.finished


def test_a_missing_corpus_fails_clearly(tmp_path: Path) -> None:
    job = Job(tmp_path / "nothing.txt", TINY_ARGS, tmp_path / "out")
    with pytest.raises(TrainingError, match="out failed"):
        run_jobs([job])


def test_no_jobs_is_nothing_to_do() -> None:
    run_jobs([])


def test_shuffle_lines_is_a_seeded_permutation(tmp_path: Path) -> None:
    source = tmp_path / "corpus.txt"
    lines = [f"document {i} text" for i in range(200)]
    source.write_text("\n".join(lines) + "\n")
    outputs = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        shuffle_lines(source, tmp_path / name, seed)
        outputs.append((tmp_path / name).read_text().splitlines())
    assert outputs[0] == outputs[1] != outputs[2]
    assert sorted(outputs[0]) == sorted(lines) and outputs[0] != lines
    assert source.read_text().splitlines() == lines


def test_each_recipe_trains_twins_on_its_corpus_shuffled(tiny_paths, tiny_params) -> None:  # type: ignore[no-untyped-def]
    """The twins of a proxy: the same recipe (arguments) on the same documents in other,
    seeded orders; a proxy sees its corpus in order, or (`train.shuffled_proxies`) in an
    order of the seed after its twins'; all were trained by the tiny pipeline run."""
    from hatbot.game.recipes import RECIPES
    from hatbot.pipeline.artifact import (
        proxy_seed,
        training_jobs,
        twin_role,
        twin_seeds,
        vocabulary,
    )
    from hatbot.pipeline.corpus import DataStore, prepare

    seeds = twin_seeds(tiny_params)

    corpora = prepare(DataStore(tiny_paths.data), tiny_params.preprocess)
    words, _ = vocabulary(corpora.clean, tiny_params.train.min_count)
    jobs = training_jobs(corpora, tiny_params, words)
    # Twins of the recipes `train.twins` names (seeds no panel uses); a proxy of every recipe.
    assert {n: len(s) for n, s in seeds.items()} == {
        n: c for n, c in tiny_params.train.twins.items() if c
    }
    assert all(len(s) >= 2 and not {0, 1} & set(s) for s in seeds.values())
    assert set(tiny_params.train.recipes) <= set(RECIPES) and set(seeds) < set(RECIPES)
    roles = [[f"proxy-{name}"] for name in tiny_params.train.recipes]
    roles += [[twin_role(name, s) for s in twin] for name, twin in seeds.items()]
    assert set(jobs) == {"own"} | {role for group in roles for role in group}
    # Both kinds of proxy are in the tiny model.
    assert set() < set(tiny_params.train.shuffled_proxies) < set(tiny_params.train.recipes)
    for name in tiny_params.train.recipes:
        source = corpora.raw if RECIPES[name].corpus == "raw" else corpora.clean
        order = proxy_seed(tiny_params, name)
        if name in tiny_params.train.shuffled_proxies:
            assert order is not None and order not in {0, 1, *seeds.get(name, [])}
            assert jobs[f"proxy-{name}"].corpus.name.endswith(f"shuffled-{order}.txt")
        else:
            assert order is None and jobs[f"proxy-{name}"].corpus == source
        assert (jobs[f"proxy-{name}"].out / "done.json").is_file()
    for name, twin_seeds_of_recipe in seeds.items():
        proxy = jobs[f"proxy-{name}"]
        source = corpora.raw if RECIPES[name].corpus == "raw" else corpora.clean
        original = proxy.corpus.read_text().splitlines()
        orders = [original, source.read_text().splitlines()]
        assert sorted(orders[0]) == sorted(orders[1])
        for seed in twin_seeds_of_recipe:
            twin = jobs[twin_role(name, seed)]
            assert twin.args == proxy.args and twin.queries == proxy.queries
            assert twin.corpus.name.endswith(f"shuffled-{seed}.txt")
            shuffled = twin.corpus.read_text().splitlines()
            assert sorted(shuffled) == sorted(original) and shuffled not in orders
            orders.append(shuffled)
            assert (twin.out / "done.json").is_file() and twin.out != proxy.out
