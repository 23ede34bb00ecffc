"""Playing against the field: the recipe posterior of the guesser and the estimates of the
hat's kind and the host's mode, on the tiny real model (proxies of every recipe in
`hatbot.game.recipes`)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from hatbot.game.hat import EVERYDAY_HAT, build_hat, read_hat
from hatbot.game.recipes import RECIPES
from hatbot.hat_kind import HatKind
from hatbot.host_mode import EXPLAIN_CERTAINTY, GUESS_CERTAINTY, HostMode
from hatbot.index import Proxy, WordIndex
from hatbot.strategy import Strategy, StrategyParams


def hint_list(index: WordIndex, proxy: Proxy, candidate: int) -> list[str]:
    """The recipe's explanation of `candidate` (its hint list, in order), as words."""
    spelled = {i: w for w, i in proxy.extra.items()}
    lists = proxy.lists[0]
    # The inverted lists hold hint h's entries at starts[h]:starts[h + 1].
    hint_of_entry = np.repeat(np.arange(len(lists.starts) - 1), np.diff(lists.starts))
    found = np.flatnonzero(lists.targets == candidate)
    ordered = found[np.argsort(lists.positions[found], kind="stable")]
    ids = [int(h) for h in hint_of_entry[ordered]]
    return [index.words[h] if h < len(index) else spelled[h] for h in ids]


def test_the_model_has_a_proxy_of_each_recipe_it_names(tiny_index: WordIndex) -> None:
    named = tiny_index.manifest["params"]["train"]["recipes"]
    assert set(named) <= set(RECIPES) and "notebook_cbow16" in named
    assert sorted(p.name for p in tiny_index.proxies) == sorted(named)
    # Twins of the recipes `train.twins` names, a notebook recipe's too (the guesser reads
    # them); none of the others.
    twins = tiny_index.manifest["params"]["train"]["twins"]
    twinned = {p.name for p in tiny_index.proxies if p.twins}
    assert twinned == {name for name, count in twins.items() if count} >= {"notebook_cbow16"}
    for proxy in tiny_index.proxies:
        assert len(proxy.twins) == twins.get(proxy.name, 0)
        # The guesser reads the hint lists of the proxy and of each twin.
        assert len(proxy.lists) == 1 + len(proxy.twins)


def test_hints_from_one_proxy_make_that_recipe_dominate(tiny_index: WordIndex) -> None:
    """Hints read off one recipe's hint list for a word: that recipe weighs most in the
    posterior, far above an even share, for every recipe."""
    strategy = Strategy(tiny_index)
    rng = np.random.default_rng(0)
    for proxy in tiny_index.proxies:
        others = [p for p in tiny_index.proxies if p is not proxy]
        candidates = np.unique(proxy.lists[0].targets)
        wins = 0
        tried = 0
        for candidate in rng.permutation(candidates)[:40]:
            hints = hint_list(tiny_index, proxy, int(candidate))[:5]
            # Only words whose hints tell the recipes apart (no other proxy lists the same).
            if len(hints) < 5 or any(
                hint_list(tiny_index, o, int(candidate))[:5] == hints for o in others
            ):
                continue
            tried += 1
            posterior = strategy.guesser.recipe_posterior(hints)
            assert sum(posterior.values()) == pytest.approx(1.0)
            wins += max(posterior, key=posterior.__getitem__) == proxy.name
            if tried == 8:
                break
        assert tried >= 4, f"too few words tell {proxy.name} apart"
        assert wins >= tried - 1, f"{proxy.name} dominated {wins} of {tried} hint lists"


def test_hints_from_nowhere_leave_the_blend_even(tiny_index: WordIndex) -> None:
    strategy = Strategy(tiny_index)
    posterior = strategy.guesser.recipe_posterior(["qzxqvw", "vvqqzz", "xqzjwv"])
    share = 1.0 / len(tiny_index.proxies)
    assert posterior == pytest.approx(dict.fromkeys(posterior, share))


def test_a_fixed_blend_is_the_mean_of_the_recipes(tiny_index: WordIndex) -> None:
    """recipe_sharpness 0: every recipe counts the same, whatever the hints."""
    strategy = Strategy(tiny_index, StrategyParams(recipe_sharpness=0.0))
    proxy = tiny_index.proxies[0]
    hints = hint_list(tiny_index, proxy, int(proxy.lists[0].targets[0]))[:4]
    posterior = strategy.guesser.recipe_posterior(hints)
    assert posterior == pytest.approx(dict.fromkeys(posterior, 1.0 / len(posterior)))


def test_a_hint_matches_best_at_its_place_in_the_list(tiny_index: WordIndex) -> None:
    """position_decay: a recipe's hint list read in its own order matches its word better
    than the same hints reversed; at 0 only which hints, not where, counts."""
    proxy = tiny_index.proxies[0]
    single = copy.copy(tiny_index)
    # Each recipe read through its first model only (a twin holds the hints elsewhere).
    single.proxies = [dataclasses.replace(p, lists=p.lists[:1]) for p in tiny_index.proxies]
    candidate = next(
        int(c)
        for c in np.unique(proxy.lists[0].targets)
        if len(set(hint_list(tiny_index, proxy, int(c))[:5])) == 5
    )
    hints = hint_list(tiny_index, proxy, candidate)[:5]
    for decay in (0.03, 0.0):
        guesser = Strategy(single, StrategyParams(position_decay=decay)).guesser
        ordered = guesser._recipe_matches(hints)[0][0, candidate]
        reversed_ = guesser._recipe_matches(hints[::-1])[0][0, candidate]
        assert ordered == pytest.approx(1.0)
        if decay:
            assert reversed_ < ordered
        else:
            assert reversed_ == pytest.approx(ordered)


def hints_led_by(index: WordIndex, strategy: Strategy, proxy: Proxy) -> list[str]:
    """The first hints (in the vocabulary) of one of the recipe's hint lists whose
    posterior puts more than half its weight on that recipe."""
    for candidate in np.unique(proxy.lists[0].targets):
        hints = [h for h in hint_list(index, proxy, int(candidate))[:4] if h in index.ids]
        posterior = strategy.guesser.recipe_posterior(hints) if hints else {}
        if hints and posterior[proxy.name] > 0.5:
            return hints
    raise AssertionError(f"no hint list of {proxy.name} leads its posterior")


def test_the_spaces_give_way_to_a_recipe_they_do_not_read(tiny_index: WordIndex) -> None:
    """space_gate: hints the posterior gives to a recipe with no guessing space (a notebook
    bot) shrink the spaces' part of every score by the posterior's weight on such recipes;
    hints it gives to a spaced recipe leave most of it; the other terms are not gated."""
    gated = Strategy(tiny_index, StrategyParams(space_gate=1.0))
    plain = Strategy(tiny_index, StrategyParams(space_gate=0.0))
    no_reverse = {"reverse_weight": 0.0, "prior_weight": 0.0}
    bare_gated = Strategy(tiny_index, StrategyParams(space_gate=1.0, **no_reverse)).guesser
    bare = Strategy(tiny_index, StrategyParams(space_gate=0.0, **no_reverse)).guesser
    by_name = {p.name: p for p in tiny_index.proxies}
    for name, spaced in (("notebook_cbow16", False), ("starter_kit", True)):
        hints = hints_led_by(tiny_index, gated, by_name[name])
        posterior = gated.guesser.recipe_posterior(hints)
        unspaced = sum(w for n, w in posterior.items() if n not in gated.params.proxy_weights)
        assert (unspaced > 0.5) != spaced
        # Without the reverse lookup and prior, a score is the spaces' part plus popularity.
        _, full = bare._prefix_scores(hints, shortlist=False)
        _, shrunk = bare_gated._prefix_scores(hints, shortlist=False)
        popularity = 0.02 * bare.popularity
        assert shrunk - popularity == pytest.approx((1 - unspaced) * (full - popularity), abs=1e-4)
        # The reverse lookup and prior are not gated: with them, the gap is the same.
        _, with_all = plain.guesser._prefix_scores(hints, shortlist=False)
        _, with_all_gated = gated.guesser._prefix_scores(hints, shortlist=False)
        assert with_all - with_all_gated == pytest.approx(full - shrunk, abs=1e-4)


def everyday_words(index: WordIndex) -> list[str]:
    return [w for w in read_hat(EVERYDAY_HAT) if w in index.ids]


def corpus_words(index: WordIndex) -> list[str]:
    eligible = [w for w, ok in zip(index.words, index.eligible, strict=True) if ok]
    return build_hat(eligible, 60, seed=3)


def test_a_stream_of_everyday_words_shifts_the_estimate(tiny_index: WordIndex) -> None:
    hat = HatKind(memory=100)
    assert hat.everyday() == 0.0
    for word in everyday_words(tiny_index)[:30]:
        hat.observe(tiny_index, word)
    assert hat.everyday() > 0.99


def test_a_stream_of_corpus_words_does_not(tiny_index: WordIndex) -> None:
    hat = HatKind(memory=100)
    for word in corpus_words(tiny_index):
        hat.observe(tiny_index, word)
    assert hat.everyday() < 0.01


def test_the_estimate_forgets_beyond_its_memory_and_resets(tiny_index: WordIndex) -> None:
    hat = HatKind(memory=20)
    for word in everyday_words(tiny_index)[:30]:
        hat.observe(tiny_index, word)
    assert hat.observed == 20
    for word in corpus_words(tiny_index)[:20]:
        hat.observe(tiny_index, word)
    assert hat.everyday() < 0.01, "the everyday words are out of its memory"
    hat.reset()
    assert hat.observed == 0 and hat.everyday() == 0.0
    off = HatKind(memory=0)
    off.observe(tiny_index, everyday_words(tiny_index)[0])
    assert off.observed == 0 and off.everyday() == 0.0


def test_an_everyday_hat_moves_the_guess_prior_to_common_words(tiny_index: WordIndex) -> None:
    """The guesser's prior follows the estimate: common words the tournament's method
    drops score higher once the hat looks everyday, eligible words lower."""
    strategy = Strategy(tiny_index)
    guesser = strategy.guesser
    words = everyday_words(tiny_index)[:3]
    _, corpus = guesser._prefix_scores(words, shortlist=False, everyday=0.0)
    _, everyday = guesser._prefix_scores(words, shortlist=False, everyday=1.0)
    shift = everyday - corpus
    common_only = tiny_index.common & ~tiny_index.eligible
    eligible_only = tiny_index.eligible & ~tiny_index.common
    assert common_only.any() and eligible_only.any()
    assert np.all(shift[common_only] > 0) and np.all(shift[eligible_only] < 0)
    # Strategy.guess reads the estimate its explain calls feed.
    for word in everyday_words(tiny_index)[:30]:
        strategy.explain(word, 5)
    assert strategy.hat.everyday() > 0.99
    assert strategy.guess(words, 5) == guesser.guess(words, 5, everyday=1.0)


def wordnet_words(index: WordIndex, known: bool) -> list[str]:
    """Vocabulary words WordNet knows (`known`) or does not, every 7th one."""
    return [w for w, k in zip(index.words, index.in_wordnet, strict=True) if k == known][::7]


def test_hints_unknown_to_wordnet_show_a_soft_host(tiny_index: WordIndex) -> None:
    """The hard host deletes every hint WordNet does not know: a few among many known
    hints make the soft host all but certain, enough for the explainer too."""
    mode = HostMode(memory=50)
    assert mode.soft() == 0.5 and mode.played(GUESS_CERTAINTY) is None
    known, unknown = wordnet_words(tiny_index, True), wordnet_words(tiny_index, False)
    for i in range(40):
        mode.observe(tiny_index, unknown[i] if i % 10 == 3 else known[i])
    assert mode.played(EXPLAIN_CERTAINTY) == "soft"


def test_hints_wordnet_knows_show_a_hard_host(tiny_index: WordIndex) -> None:
    mode = HostMode(memory=50)
    for word in wordnet_words(tiny_index, True)[:30]:
        mode.observe(tiny_index, word)
    assert mode.played(GUESS_CERTAINTY) == "hard"
    # A word outside the vocabulary says nothing (no WordNet fact for it).
    before = mode.soft()
    mode.observe(tiny_index, "qwxzvplugh")
    assert mode.observed == 30 and mode.soft() == before


def test_the_mode_estimate_forgets_beyond_its_memory_and_resets(tiny_index: WordIndex) -> None:
    """A process that served a soft host and then a hard one plays hard again once the
    soft host's hints are out of its memory."""
    mode = HostMode(memory=50)
    for word in wordnet_words(tiny_index, False)[:10]:
        mode.observe(tiny_index, word)
    assert mode.played(EXPLAIN_CERTAINTY) == "soft"
    for word in wordnet_words(tiny_index, True)[:50]:
        mode.observe(tiny_index, word)
    assert mode.observed == 50 and mode.played(GUESS_CERTAINTY) == "hard"
    mode.reset()
    assert mode.observed == 0 and mode.soft() == 0.5
    off = HostMode(memory=0)
    off.observe(tiny_index, wordnet_words(tiny_index, False)[0])
    assert off.observed == 0 and off.soft() == 0.5 and off.played(0.6) is None


def test_the_strategy_plays_the_mode_its_guess_calls_show(tiny_index: WordIndex) -> None:
    """Strategy.guess feeds the estimate with each call's newest hint; once the host is
    known to play soft, explanations follow the soft host's rules alone and guesses its
    check; a person's calls (`observe=False`) count for nothing."""
    strategy = Strategy(tiny_index)
    soft = Strategy(tiny_index, strategy.params.model_copy(update={"hint_rules": "soft"}))
    unknown = wordnet_words(tiny_index, False)
    targets = corpus_words(tiny_index)[:20]
    either = [strategy.explain(w, 5) for w in targets]
    for word in unknown[:10]:
        strategy.guess([word], 5, observe=False)
    assert strategy.mode.observed == 0 and not strategy.plays_soft
    for k in range(1, 6):
        strategy.guess(unknown[:k], 5)
    assert strategy.plays_soft and strategy.explain_criteria == ["soft"]
    explained = [strategy.explain(w, 5) for w in targets]
    assert explained == [soft.explain(w, 5) for w in targets]
    assert explained != either
    hints = strategy.explain(targets[0], 3)
    assert strategy.guess(hints, 5) == strategy.guesser.guess(hints, 5, mode="soft")
