"""The strategy never breaks the host's rules, on a tiny real model and many words."""

from __future__ import annotations

import pytest

from hatbot.game.lexicon import NltkLexicon
from hatbot.game.rules import clean_explanation, soft_match, too_close
from hatbot.index import WordIndex
from hatbot.strategy import Strategy

N_WORDS = (1, 5, 10)


@pytest.fixture(scope="module")
def strategy(tiny_index: WordIndex) -> Strategy:
    return Strategy(tiny_index)


@pytest.fixture(scope="module")
def targets(tiny_index: WordIndex) -> list[str]:
    """Hat-eligible words spread over the vocabulary, plus words it lacks."""
    eligible = [w for w, ok in zip(tiny_index.words, tiny_index.eligible, strict=True) if ok]
    return [*eligible[:: max(1, len(eligible) // 60)][:60], "xyzzyplugh", "colour", "spaceships"]


@pytest.mark.parametrize("criteria", ["soft", "hard"])
def test_explain_never_gives_a_rejected_hint(
    strategy: Strategy, targets: list[str], criteria: str
) -> None:
    lexicon = NltkLexicon()
    for word in targets:
        hints = strategy.explain(word, 5)
        kept = clean_explanation(word, hints, 5, criteria, lexicon)  # type: ignore[arg-type]
        assert kept == hints, (word, hints, kept)


@pytest.mark.parametrize("n_words", N_WORDS)
def test_explain_respects_n_words(strategy: Strategy, targets: list[str], n_words: int) -> None:
    for word in targets:
        hints = strategy.explain(word, n_words)
        assert len(hints) == n_words, (word, hints)
        assert len({strategy.index.stem(h) for h in hints}) == len(hints), hints


@pytest.mark.parametrize("n_words", N_WORDS)
def test_guess_excludes_what_the_rules_make_impossible(
    strategy: Strategy, targets: list[str], n_words: int
) -> None:
    for word in targets[:30]:
        hints = strategy.explain(word, 5)
        for k in range(1, len(hints) + 1):
            guesses = strategy.guess(hints[:k], n_words)
            assert 0 < len(guesses) <= n_words
            for guess in guesses:
                assert guess not in hints[:k]
                assert not any(too_close(guess, h) for h in hints[:k]), (guess, hints[:k])


def test_guess_never_repeats_an_earlier_guess(strategy: Strategy, targets: list[str]) -> None:
    for word in targets[:30]:
        hints = strategy.explain(word, 5)
        earlier: list[str] = []
        for k in range(1, len(hints) + 1):
            guesses = strategy.guess(hints[:k], 5)
            assert not any(soft_match(g, e) for g in guesses for e in earlier), (
                hints[:k],
                guesses,
                earlier,
            )
            earlier.extend(guesses)


def test_guess_spreads_over_distinct_targets(strategy: Strategy, targets: list[str]) -> None:
    for word in targets[:30]:
        guesses = strategy.guess(strategy.explain(word, 3), 10)
        for i, a in enumerate(guesses):
            for b in guesses[i + 1 :]:
                assert not soft_match(a, b) and not soft_match(b, a), guesses


def test_guess_with_unknown_hints_still_answers(strategy: Strategy) -> None:
    guesses = strategy.guess(["qwxzv", "plugh"], 5)
    assert len(guesses) == 5
    assert all(g.isascii() and g.isalpha() and g.islower() for g in guesses)


def test_explain_is_deterministic(strategy: Strategy, targets: list[str]) -> None:
    for word in targets[:10]:
        assert strategy.explain(word, 5) == strategy.explain(word, 5)
