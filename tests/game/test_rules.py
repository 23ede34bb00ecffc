"""The host's cleaning and checking rules (docs/GAME.md), in both modes, with NLTK's own lexicon."""

from __future__ import annotations

from typing import Any

import pytest

from hatbot.game import rules

# (case, target word, reported words, n_explain, hints in soft mode, hints in hard mode)
CLEANING = [
    ("hint contains the word", "moon", ["moonlight", "crater"], 5, ["crater"], ["crater"]),
    (
        "hint contains the word once cleaned",
        "planet",
        ["P-l-a-n-e-t!", "orbit"],
        5,
        ["orbit"],
        ["orbit"],
    ),
    ("distance exactly 2 is dropped", "house", ["horses", "roof"], 5, ["roof"], ["roof"]),
    ("distance exactly 2 on a short word", "cat", ["cow", "mouse"], 5, ["mouse"], ["mouse"]),
    (
        "distance exactly 3 is kept",
        "house",
        ["hotel", "roof"],
        5,
        ["hotel", "roof"],
        ["hotel", "roof"],
    ),
    ("distance exactly 3 on a short word", "cat", ["dog"], 5, ["dog"], ["dog"]),
    ("same stem: hard only", "happy", ["happiness", "smile"], 5, ["happiness", "smile"], ["smile"]),
    (
        "same stem at distance 3: hard only",
        "house",
        ["housing", "roof"],
        5,
        ["housing", "roof"],
        ["roof"],
    ),
    (
        "not in WordNet: hard only",
        "planet",
        ["xylofonix", "orbit"],
        5,
        ["xylofonix", "orbit"],
        ["orbit"],
    ),
    (
        "WordNet lemmatizes plurals",
        "planet",
        ["cars", "stars"],
        5,
        ["cars", "stars"],
        ["cars", "stars"],
    ),
    (
        "repeats keep the first",
        "planet",
        ["star", "moon", "Star", "star!", "moon"],
        5,
        ["star", "moon"],
        ["star", "moon"],
    ),
    (
        "digits and punctuation are deleted",
        "planet",
        ["e-mail", "orbit42", "sun."],
        5,
        ["email", "orbit", "sun"],
        ["email", "orbit", "sun"],
    ),
    ("digits only leave nothing", "planet", ["42", "!!!", "", "orbit"], 5, ["orbit"], ["orbit"]),
    ("digits can leave a non-word", "planet", ["r2d2", "orbit"], 5, ["rd", "orbit"], ["orbit"]),
    (
        "upper case",
        "planet",
        ["TELESCOPE", "Orbit"],
        5,
        ["telescope", "orbit"],
        ["telescope", "orbit"],
    ),
    (
        "hard truncates before filtering, soft after",
        "planet",
        ["planets", "star", "star", "moon", "orbit"],
        3,
        ["star", "moon", "orbit"],
        ["star"],
    ),
    (
        "soft fills up to n_explain, no further",
        "planet",
        ["planets", "star", "moon", "orbit", "comet"],
        3,
        ["star", "moon", "orbit"],
        ["star", "moon"],
    ),
    (
        "a fair list passes untouched",
        "planet",
        ["orbit", "star", "moon"],
        3,
        ["orbit", "star", "moon"],
        ["orbit", "star", "moon"],
    ),
    ("empty answer", "planet", [], 5, [], []),
]


def _cases() -> list[Any]:
    return [
        pytest.param(
            word,
            reported,
            n,
            criteria,
            soft if criteria == "soft" else hard,
            id=f"{case} ({criteria})",
        )
        for case, word, reported, n, soft, hard in CLEANING
        for criteria in rules.CRITERIA
    ]


@pytest.mark.parametrize(("word", "reported", "n_explain", "criteria", "expected"), _cases())
def test_clean_explanation_follows_game_rules(
    lexicon: Any,
    word: str,
    reported: list[str],
    n_explain: int,
    criteria: rules.Criteria,
    expected: list[str],
) -> None:
    assert rules.clean_explanation(word, reported, n_explain, criteria, lexicon) == expected


@pytest.mark.parametrize(
    ("word", "hint", "distance"),
    [
        ("house", "horses", 2),
        ("cat", "cow", 2),
        ("house", "hotel", 3),
        ("cat", "dog", 3),
        ("house", "housing", 3),
    ],
)
def test_edit_distance_matches_the_table(word: str, hint: str, distance: int) -> None:
    # The cleaning table above relies on these distances being exact.
    assert rules.edit_distance(word, hint) == distance
    assert rules.too_close(word, hint) == (distance <= 2)


def test_stems_match_the_table(lexicon: Any) -> None:
    assert lexicon.stem("happiness") == lexicon.stem("happy")
    assert lexicon.stem("housing") == lexicon.stem("house")
    assert not lexicon.is_word("xylofonix") and not lexicon.is_word("rd")
    assert lexicon.is_word("cars")


def test_clean_explanation_refuses_hard_without_lexicon() -> None:
    with pytest.raises(ValueError, match="lexicon"):
        rules.clean_explanation("planet", ["orbit"], 5, "hard")


# (case, target word, guesses, guessed in soft mode, guessed in hard mode)
CHECKING = [
    ("exact word", "planet", ["orbit", "planet"], True, True),
    ("plural", "planet", ["planets"], True, False),
    ("inflection at distance 2", "walk", ["walked"], True, False),
    ("inflection at distance 3", "walk", ["walking"], False, False),
    ("derivation at distance 3", "planet", ["planetary"], False, False),
    ("contained at distance 2 on both sides", "planet", ["xplanetx"], True, False),
    ("close but not containing", "walk", ["talk", "wall"], False, False),
    ("upper case is not the word", "planet", ["Planet"], False, False),
    ("no guesses", "planet", [], False, False),
]


@pytest.mark.parametrize(
    ("word", "guesses", "criteria", "expected"),
    [
        pytest.param(
            word, guesses, criteria, soft if criteria == "soft" else hard, id=f"{case} ({criteria})"
        )
        for case, word, guesses, soft, hard in CHECKING
        for criteria in rules.CRITERIA
    ],
)
def test_is_guessed_follows_game_rules(
    word: str, guesses: list[str], criteria: rules.Criteria, expected: bool
) -> None:
    assert rules.is_guessed(word, guesses, criteria) is expected


@pytest.mark.parametrize(
    ("guess", "expected"),
    [
        ("planets", True),
        ("planetsx", True),
        ("planetsxy", False),
        ("xyplanet", True),
        ("xyzplanet", False),
    ],
)
def test_soft_match_stops_below_distance_3(guess: str, expected: bool) -> None:
    assert rules.soft_match("planet", guess) is expected


@pytest.mark.parametrize(
    ("reported", "n_explain", "criteria", "hints", "rejected"),
    [
        # Soft: "planets" (within the first 3) is rejected; "orbit" replaces it, uncounted.
        (["planets", "star", "moon", "orbit", "xx"], 3, "soft", ["star", "moon", "orbit"], 1),
        # Hard: "planets" and the repeated "star" are rejected; words past 3 never count.
        (["planets", "star", "Star", "moon", "xx"], 3, "hard", ["star"], 2),
        # An over-long fair answer rejects nothing.
        (["star", "moon", "orbit", "comet", "sun"], 3, "soft", ["star", "moon", "orbit"], 0),
        ([], 3, "soft", [], 0),
    ],
)
def test_clean_counts_rejected_words_within_n_explain(
    lexicon: Any,
    reported: list[str],
    n_explain: int,
    criteria: rules.Criteria,
    hints: list[str],
    rejected: int,
) -> None:
    cleaning = rules.clean("planet", reported, n_explain, criteria, lexicon)
    assert cleaning.hints == hints
    assert cleaning.rejected == rejected
    assert cleaning.reported == reported
