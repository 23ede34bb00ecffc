"""NLTK's Snowball stemmer and WordNet 3.0, set up offline from Debian's WordNet files.

docs/GAME.md: NLTK's reader wants a `lexnames` file and only reads from its own data
folders, so the Debian files are copied into an `nltk_data/corpora/wordnet`
folder (once) and `nltk.data.path` points at it. Only the host's rules and the
hat builder use this; the service reads the same facts from the model artifact.
"""

from __future__ import annotations

import os
import shutil
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

DEBIAN_WORDNET = Path("/usr/share/wordnet")
# WordNet's 45 lexicographer files: number, name, syntactic category.
_LEXNAMES = """
    adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute
    noun.body noun.cognition noun.communication noun.event noun.feeling noun.food
    noun.group noun.location noun.motive noun.object noun.person noun.phenomenon
    noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape
    noun.state noun.substance noun.time verb.body verb.change verb.cognition
    verb.communication verb.competition verb.consumption verb.contact verb.creation
    verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative
    verb.weather adj.ppl
    """.split()
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
_WORDNET_FILES = (
    [f"{kind}.{pos}" for kind in ("data", "index") for pos in ("adj", "adv", "noun", "verb")]
    + [f"{pos}.exc" for pos in ("adj", "adv", "noun", "verb")]
    + ["index.sense"]
)


class WordNetMissingError(RuntimeError):
    """WordNet 3.0 is not installed where the host's rules need it."""


def nltk_data_dir() -> Path:
    """Where hatbot keeps its NLTK data folder (HATBOT_NLTK_DATA or ~/.cache/hatbot)."""
    default = Path.home() / ".cache" / "hatbot" / "nltk_data"
    return Path(os.environ.get("HATBOT_NLTK_DATA", default))


def ensure_wordnet(source: Path = DEBIAN_WORDNET) -> Path:
    """Lay WordNet out where NLTK reads it and return the nltk_data folder."""
    root = nltk_data_dir()
    target = root / "corpora" / "wordnet"
    if not (target / "lexnames").exists():
        missing = [name for name in _WORDNET_FILES if not (source / name).exists()]
        if missing:
            raise WordNetMissingError(
                f"WordNet 3.0 files {missing[:3]} are missing under {source}: install the "
                "Debian packages wordnet-base and wordnet-sense-index"
            )
        staging = target.with_name("wordnet.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in _WORDNET_FILES:
            shutil.copyfile(source / name, staging / name)
        lines = (
            f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}"
            for i, name in enumerate(_LEXNAMES)
        )
        (staging / "lexnames").write_text("\n".join(lines) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return root


@cache
def _wordnet() -> Any:
    import nltk
    from nltk.corpus import wordnet

    root = str(ensure_wordnet())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    wordnet.ensure_loaded()
    return wordnet


class NltkLexicon:
    """The host's own tools: NLTK's English Snowball stemmer and WordNet 3.0 reader."""

    def __init__(self) -> None:
        from nltk.stem import WordNetLemmatizer
        from nltk.stem.snowball import SnowballStemmer

        self._stemmer = SnowballStemmer("english")
        self._wordnet = _wordnet()
        self._lemmatizer = WordNetLemmatizer()
        self.stem = lru_cache(maxsize=200_000)(self._stemmer.stem)
        self.is_word = lru_cache(maxsize=200_000)(self._is_word)
        self.lemmatize = lru_cache(maxsize=200_000)(self._lemmatizer.lemmatize)

    def _is_word(self, word: str) -> bool:
        return len(self._wordnet.synsets(word)) > 0
