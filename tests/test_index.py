"""The artifact format: the current one loads (a quick model's too), any other is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hatbot.game.lexicon import NltkLexicon
from hatbot.game.rules import clean_explanation
from hatbot.index import FORMAT, ArtifactError, ArtifactFormatError, WordIndex, file_sha256
from hatbot.store import ModelStore
from hatbot.strategy import Strategy, StrategyParams

# What a quick model holds: hatbot's own space and the vocabulary's facts, nothing else.
QUICK_FILES = [
    "vocab.txt",
    "counts.npy",
    "vectors.npy",
    "neighbours.npy",
    "density.npy",
    "stems.txt",
    "flags.npy",
]


@pytest.fixture
def artifact(tiny_store: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny production artifact."""
    folder = ModelStore(tiny_store).resolve("production")
    assert folder is not None
    return Path(shutil.copytree(folder, tmp_path / "artifact"))


@pytest.fixture
def quick(tiny_index: WordIndex, tmp_path: Path) -> Path:
    """A quick model made of the tiny model's own files: no proxies, no twins, no table."""
    folder = tmp_path / "quick"
    folder.mkdir()
    for name in QUICK_FILES:
        shutil.copyfile(tiny_index.folder / name, folder / name)
    manifest = {
        "format": FORMAT,
        "version": "quick",
        "twin_seeds": {},
        "strategy": tiny_index.manifest["strategy"],
        "files": {name: file_sha256(folder / name) for name in QUICK_FILES},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def set_manifest(folder: Path, key: str, value: object) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest[key] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("value", [0, 1, 2, 3, 4, 5, 6, 8, "7", 7.5, True, None])
def test_an_artifact_of_another_format_is_refused(artifact: Path, value: object) -> None:
    set_manifest(artifact, "format", value)
    with pytest.raises(ArtifactFormatError, match="format") as refused:
        WordIndex(artifact)
    assert f"this service reads {FORMAT}" in str(refused.value)
    assert "hatbot train" in str(refused.value)
    assert isinstance(refused.value, ArtifactError)


def test_a_quick_model_loads_and_is_explained_live(quick: Path, tiny_index: WordIndex) -> None:
    """No proxies, no twin seeds, no explanation table: it loads (checksums verified), and
    its strategy explains live and guesses within the host's rules."""
    index = WordIndex(quick)
    assert index.proxies == [] and index.explanations is None
    assert index.stacked.shape == tiny_index.vectors.shape
    np.testing.assert_array_equal(index.vectors, tiny_index.vectors)
    strategy = Strategy(index)
    assert len(strategy.explainer.spaces) == len(strategy.guesser.spaces) == 1
    lexicon = NltkLexicon()
    words = [index.words[int(i)] for i in np.flatnonzero(index.eligible)[:10]]
    for word in words:
        assert index.explanation(word, 5) is None
        hints = strategy.explain(word, 5)
        assert len(hints) == 5
        for criteria in ("soft", "hard"):
            assert clean_explanation(word, hints, 5, criteria, lexicon) == hints
        guesses = strategy.guess(hints[:2], 5)
        assert len(guesses) == 5 and not set(guesses) & set(hints[:2])


def test_a_quick_model_still_needs_integer_twin_seeds(quick: Path) -> None:
    for seeds in (None, "2", [2], {"starter_kit": [True]}, {"starter_kit": ["../x"]}):
        set_manifest(quick, "twin_seeds", seeds)
        with pytest.raises(ArtifactError, match="twin_seeds"):
            WordIndex(quick)


def test_a_quick_model_without_a_required_file_is_refused(quick: Path) -> None:
    set_manifest(quick, "files", {})
    (quick / "neighbours.npy").unlink()
    with pytest.raises(ArtifactError, match="neighbours"):
        WordIndex(quick)


def test_a_manifest_without_every_strategy_parameter_is_refused(artifact: Path) -> None:
    """A model made before a parameter existed was explained without it: refused, rather
    than served with today's default, which its table does not follow."""
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["strategy"].keys() == StrategyParams.model_fields.keys()
    del manifest["strategy"]["soft_share"]
    set_manifest(artifact, "strategy", manifest["strategy"])
    with pytest.raises(ArtifactError, match="soft_share"):
        Strategy(WordIndex(artifact))
