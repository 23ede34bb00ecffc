"""The host's rules, exactly as `docs/GAME.md` states them.

One module serves both the game engine (which judges) and the bot's strategy
(which must never produce what the host rejects). The two word-level facts that
need NLTK, the Snowball stem and WordNet existence, are passed in as a
`Lexicon`: the game engine builds one from NLTK, the service one from tables
precomputed into the model artifact, so serving needs neither NLTK nor WordNet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from rapidfuzz.distance import Levenshtein

Criteria = Literal["soft", "hard"]
CRITERIA: tuple[Criteria, ...] = ("soft", "hard")


class Lexicon(Protocol):
    """The two NLTK facts the hard criterion needs."""

    def stem(self, word: str) -> str:
        """English Snowball stem, as NLTK's `SnowballStemmer("english")` gives it."""
        ...

    def is_word(self, word: str) -> bool:
        """True when WordNet 3.0 knows the word (`wordnet.synsets(word)` not empty)."""
        ...


def normalise(word: str) -> str:
    """Lowercase and delete every non-letter character (digits included)."""
    return "".join(ch for ch in word.lower() if ch.isalpha())


def edit_distance(a: str, b: str) -> int:
    """Plain Levenshtein distance (substitution 1, no transpositions), like NLTK's."""
    return int(Levenshtein.distance(a, b))


def too_close(word: str, hint: str) -> bool:
    """True when the host deletes `hint` as a clue for `word` (steps 3 and 4)."""
    return word in hint or edit_distance(word, hint) <= 2


def soft_match(word: str, guess: str) -> bool:
    """The soft check of a single guess: `word` inside it and fewer than 3 edits away."""
    return word in guess and edit_distance(word, guess) < 3


def is_guessed(word: str, guesses: Iterable[str], criteria: Criteria) -> bool:
    """Whether a list of guesses wins the round for `word` under `criteria`."""
    if criteria == "hard":
        return word in guesses
    return any(soft_match(word, g) for g in guesses)


def hint_survives(word: str, hint: str, criteria: Criteria, lexicon: Lexicon | None) -> bool:
    """Whether the host keeps `hint` (normalised) as a clue for `word` under `criteria`:
    docs/GAME.md's checks of one word (not empty, not too close; in hard mode also not of the
    word's stem and known to WordNet), the same for every hint of an explanation."""
    if not hint or too_close(word, hint):
        return False
    if criteria == "soft":
        return True
    if lexicon is None:
        raise ValueError("the hard criterion needs a lexicon (stems and WordNet)")
    return lexicon.stem(hint) != lexicon.stem(word) and lexicon.is_word(hint)


@dataclass(frozen=True)
class Cleaning:
    """What the host did to an explanation: the raw answer and the hints it kept."""

    reported: list[str]
    hints: list[str]
    # Words among the first n_explain of the answer that did not become hints; words
    # beyond them (which soft mode may promote) are neither counted nor blamed.
    rejected: int


def clean_explanation(
    word: str,
    reported: Sequence[str],
    n_explain: int,
    criteria: Criteria,
    lexicon: Lexicon | None = None,
) -> list[str]:
    """The hints the host plays from an explanation, in docs/GAME.md's order of steps."""
    words = list(reported)
    if criteria == "hard":
        words = words[:n_explain]
    if criteria == "hard" and lexicon is None:
        raise ValueError("the hard criterion needs a lexicon (stems and WordNet)")
    words = [normalise(w) for w in words]
    words = [w for w in dict.fromkeys(words) if hint_survives(word, w, criteria, lexicon)]
    if criteria == "soft":
        words = words[:n_explain]
    return words


def clean(
    word: str,
    reported: Sequence[str],
    n_explain: int,
    criteria: Criteria,
    lexicon: Lexicon | None = None,
) -> Cleaning:
    """`clean_explanation` with its bookkeeping: the hints and how many words were rejected."""
    hints = clean_explanation(word, reported, n_explain, criteria, lexicon)
    head = list(reported[:n_explain])
    kept = clean_explanation(word, head, n_explain, criteria, lexicon)
    return Cleaning(reported=list(reported), hints=hints, rejected=len(head) - len(kept))
