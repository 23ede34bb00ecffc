"""The strategy never breaks the host's rules, on a tiny real model and many words."""

from __future__ import annotations

import numpy as np
import pytest

from hatbot.explainer import JoinedGuesser, SimulatedGuesser
from hatbot.game.lexicon import NltkLexicon
from hatbot.game.rules import Criteria, clean_explanation, soft_match, too_close
from hatbot.host_mode import HostMode
from hatbot.index import WordIndex
from hatbot.strategy import Strategy, StrategyParams

N_WORDS = (1, 5, 10)


@pytest.fixture(scope="module")
def strategy(tiny_index: WordIndex) -> Strategy:
    """The strategy before it knows the host's mode (its estimate off): hints and guesses
    for either mode."""
    return Strategy(tiny_index, mode=HostMode(memory=0))


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


def test_soft_hint_rules_keep_every_hint_in_soft_mode(
    tiny_index: WordIndex, strategy: Strategy, targets: list[str]
) -> None:
    """With `hint_rules` soft, a hint may share the target's stem or be unknown to WordNet
    (the soft host keeps both), yet the soft host still keeps every hint, hints are still
    no inflections of each other, and `n_words` is still respected."""
    soft = Strategy(tiny_index, strategy.params.model_copy(update={"hint_rules": "soft"}))
    lexicon = NltkLexicon()
    hard_only = 0  # hints the hard host would delete: the rules really are looser
    for word in targets:
        hints = soft.explain(word, 10)
        assert len(hints) == 10, (word, hints)
        assert clean_explanation(word, hints, 10, "soft", lexicon) == hints, (word, hints)
        assert len({tiny_index.stem(h) for h in hints}) == len(hints), hints
        hard_only += 10 - len(clean_explanation(word, hints, 10, "hard", lexicon))
    assert hard_only > 0
    assert soft.explain_criteria == ["soft"]
    assert strategy.explain_criteria == ["soft", "hard"]


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


@pytest.mark.parametrize("mode", [None, "soft", "hard"])
def test_guess_never_repeats_an_earlier_guess(
    strategy: Strategy, targets: list[str], mode: Criteria | None
) -> None:
    """No guess the host already judged a miss: in soft mode (or not knowing the mode)
    nothing an earlier guess covers, in hard mode not the same word."""
    for word in targets[:30]:
        hints = strategy.explain(word, 5)
        earlier: list[str] = []
        for k in range(1, len(hints) + 1):
            guesses = strategy.guesser.guess(hints[:k], 5, mode=mode)
            assert len(guesses) == 5
            if mode == "hard":
                assert not set(guesses) & set(earlier), (hints[:k], guesses, earlier)
            else:
                assert not any(soft_match(g, e) for g in guesses for e in earlier), (
                    hints[:k],
                    guesses,
                    earlier,
                )
            earlier.extend(guesses)


@pytest.mark.parametrize("mode", [None, "soft"])
def test_guess_spreads_over_distinct_targets(
    strategy: Strategy, targets: list[str], mode: Criteria | None
) -> None:
    """Unless the host is known to play hard, no guess covers another under the soft
    check: one of them would be a wasted slot."""
    for word in targets[:30]:
        guesses = strategy.guesser.guess(strategy.explain(word, 3), 10, mode=mode)
        for i, a in enumerate(guesses):
            for b in guesses[i + 1 :]:
                assert not soft_match(a, b) and not soft_match(b, a), guesses


def test_a_hard_host_gets_no_guess_of_a_hints_stem(strategy: Strategy, targets: list[str]) -> None:
    """The hard host deletes every hint sharing the target's stem, so no guess shares a
    hint's; guesses are still distinct words and never an earlier one."""
    index = strategy.index
    variants = 0
    for word in targets[:30]:
        hints = strategy.explain(word, 3)
        stems = {index.stem(h) for h in hints}
        guesses = strategy.guesser.guess(hints, 10, mode="hard")
        assert len(set(guesses)) == len(guesses) == 10
        assert not any(index.stem(g) in stems for g in guesses), (hints, guesses)
        variants += sum(soft_match(a, b) for a in guesses for b in guesses if a != b)
    # Variants of one another are guesses of their own: only the exact word wins.
    assert variants > 0


def test_picking_follows_the_hosts_check(strategy: Strategy) -> None:
    """Of a word and a longer variant that the soft check counts as it (`driver` covers
    `drive`), ranked in that order: a soft host gets the variant alone, which wins for
    both; a hard host both, each winning only for itself; a host of either mode the
    better-ranked word alone."""
    index, guesser = strategy.index, strategy.guesser
    pair = next(
        (index.ids[w], index.ids[v])
        for w in index.words
        if len(w) > 4
        for v in (w + "s", w + "r", w + "er", w + "ed")
        if v in index.ids
    )
    scores = np.zeros(len(index), dtype=np.float32)
    scores[list(pair)] = (2.0, 1.0)
    rows = np.arange(len(index))
    word, variant = (index.words[i] for i in pair)
    picks = {
        mode: guesser._pick(rows, scores, ["qwxzv"], [], 5, mode) for mode in (None, "soft", "hard")
    }
    assert picks["soft"][0] == variant and word not in picks["soft"], picks
    assert picks["hard"][:2] == [word, variant], picks
    assert picks[None][0] == word and variant not in picks[None], picks


def test_a_soft_host_gets_the_variant_that_covers_two_targets(strategy: Strategy) -> None:
    """Of two good targets that one longer vocabulary word covers under the soft check
    (`drivers` wins for `driver` and `rivers`), a soft host gets that word in one slot and
    the next target in the other, even when the longer word scores low itself; a host of
    either mode gets the two targets."""
    index, guesser = strategy.index, strategy.guesser
    first, second, longer = next(
        (w[:-1], w[1:], w)
        for w in index.words
        if len(w) > 5 and w[:-1] in index.ids and w[1:] in index.ids
    )
    other = next(w for w in index.words if len(w) > 5 and w[:4] not in longer)
    scores = np.zeros(len(index), dtype=np.float32)
    scores[[index.ids[first], index.ids[second], index.ids[other]]] = (3.0, 2.0, 1.0)
    rows = np.arange(len(index))
    soft = guesser._pick(rows, scores, ["qwxzv"], [], 2, "soft")
    assert soft == [longer, other], (first, second, soft)
    assert guesser._pick(rows, scores, ["qwxzv"], [], 2, None) == [first, second]
    # Guesses already made (and missed) cover their targets: the variant is not repeated.
    again = guesser._pick(rows, scores, ["qwxzv"], [longer], 2, "soft")
    assert longer not in again and first not in again and second not in again, again


def test_guess_with_unknown_hints_still_answers(strategy: Strategy) -> None:
    guesses = strategy.guess(["qwxzv", "plugh"], 5)
    assert len(guesses) == 5
    assert all(g.isascii() and g.isalpha() and g.islower() for g in guesses)


def test_explain_is_deterministic(strategy: Strategy, targets: list[str]) -> None:
    for word in targets[:10]:
        assert strategy.explain(word, 5) == strategy.explain(word, 5)


def test_nearest_neighbours_and_density() -> None:
    from hatbot.index import nearest_neighbours

    rng = np.random.default_rng(0)
    unit = rng.normal(size=(50, 8)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    neighbours, density = nearest_neighbours(unit, k=3)
    for i in (0, 17, 49):
        similarity = unit @ unit[i]
        similarity[i] = -np.inf
        best = np.argsort(-similarity, kind="stable")[:3]
        assert list(neighbours[i]) == list(best)
        assert density[i] == pytest.approx(similarity[best].mean(), abs=1e-6)


def test_artifact_neighbours_match_its_vectors(tiny_index: WordIndex) -> None:
    from hatbot.index import nearest_neighbours

    spaces = [(tiny_index.vectors, tiny_index.neighbours, tiny_index.density)]
    spaces += [(p.vectors, p.neighbours, p.density) for p in tiny_index.proxies]
    for vectors, neighbours, density in spaces:
        expected_neighbours, expected_density = nearest_neighbours(np.asarray(vectors))
        np.testing.assert_allclose(density, expected_density, atol=1e-6)
        # Ties aside, the same neighbours: compare as sets of the first rows.
        for i in range(0, len(neighbours), max(1, len(neighbours) // 50)):
            assert set(neighbours[i]) == set(expected_neighbours[i])


def all_prefix_scores(strategy: Strategy, words: list[str]) -> np.ndarray:
    """Every word's score for every prefix of the hints: a vocabulary x prefixes matrix."""
    columns = [
        strategy.guesser._prefix_scores(words[:k], shortlist=False)[1]
        for k in range(1, len(words) + 1)
    ]
    return np.stack(columns, axis=1)


def test_guess_scores_subtract_the_candidates_density(tiny_index: WordIndex) -> None:
    """Each space adds the weighted mean over the hints of cosine minus density (CSLS);
    without the reverse lookup, the prior and the gate (`tests/test_field.py`), that and
    popularity are the whole score."""
    params = StrategyParams(reverse_weight=0.0, prior_weight=0.0, hint_decay=0.5, space_gate=0.0)
    strategy = Strategy(tiny_index, params)
    words = [w for w, ok in zip(tiny_index.words, tiny_index.in_wordnet, strict=True) if ok][5:8]
    scores = all_prefix_scores(strategy, words)
    ids = [tiny_index.ids[w] for w in words]
    weights = np.array([1.0, 1 / 1.5, 1 / 2.0])
    for prefix in (1, 3):
        w = weights[:prefix] / weights[:prefix].sum()
        expected = 0.02 * strategy.guesser.popularity.astype(np.float64)
        for name, space, density in zip(
            strategy.guesser.names,
            strategy.guesser.spaces,
            strategy.guesser.densities,
            strict=True,
        ):
            weight = params.own_weight if name == "own" else params.proxy_weights.get(name, 0.0)
            similarity = np.asarray(space) @ np.asarray(space)[ids[:prefix]].T
            expected += weight * ((similarity - density[:, None]) @ w)
        np.testing.assert_allclose(scores[:, prefix - 1], expected, atol=1e-4)


def test_density_weight_zero_is_plain_cosine(tiny_index: WordIndex) -> None:
    # The gate scales the density with the similarity (`tests/test_field.py`): off here.
    ungated = {"reverse_weight": 0.0, "space_gate": 0.0}
    plain = Strategy(tiny_index, StrategyParams(density_weight=0.0, **ungated))
    csls = Strategy(tiny_index, StrategyParams(**ungated))
    words = [w for w, ok in zip(tiny_index.words, tiny_index.in_wordnet, strict=True) if ok][5:7]
    shift = sum(
        (params_weight * density)
        for params_weight, density in zip(
            [1.0] + [csls.params.proxy_weights.get(p.name, 0.0) for p in tiny_index.proxies],
            csls.guesser.densities,
            strict=True,
        )
    )
    np.testing.assert_allclose(
        all_prefix_scores(plain, words) - all_prefix_scores(csls, words),
        np.repeat(shift[:, None], 2, axis=1),
        atol=1e-4,
    )


def test_principal_projection_keeps_dot_products() -> None:
    from hatbot.index import principal_projection

    rng = np.random.default_rng(0)
    stacked = (rng.normal(size=(300, 12)) * np.linspace(3, 0.1, 12)).astype(np.float32)
    axes, projected = principal_projection(stacked, dims=12)
    np.testing.assert_allclose(axes.T @ axes, np.eye(12), atol=1e-5)
    np.testing.assert_allclose(projected @ axes.T, stacked, atol=1e-4)
    # Fewer axes: the ones that carry the most of the vectors, first.
    energy = (projected**2).sum(axis=0)
    assert list(energy) == sorted(energy, reverse=True)
    _, first = principal_projection(stacked, dims=4)
    np.testing.assert_allclose(np.abs(first), np.abs(projected[:, :4]), atol=1e-4)


def test_the_index_holds_every_space_in_one_matrix(tiny_index: WordIndex) -> None:
    """A word's vectors in all spaces are one contiguous row; each space is a view of it."""
    folders = [tiny_index.folder] + [
        tiny_index.folder / f"proxy-{p.name}" for p in tiny_index.proxies
    ]
    spaces = [tiny_index.vectors] + [p.vectors for p in tiny_index.proxies]
    assert tiny_index.stacked.flags.c_contiguous
    assert tiny_index.stacked.shape == (len(tiny_index), sum(s.shape[1] for s in spaces))
    for folder, space in zip(folders, spaces, strict=True):
        assert np.shares_memory(space, tiny_index.stacked)
        np.testing.assert_array_equal(space, np.load(folder / "vectors.npy"))


def hint_lists(strategy: Strategy, targets: list[str]) -> list[tuple[str, ...]]:
    return [tuple(strategy.explain(w, 10)) for w in targets if w in strategy.index.ids]


def all_rounds(
    strategy: Strategy, hints: list[tuple[str, ...]]
) -> list[tuple[tuple[str, ...], ...]]:
    """Every prefix's guesses for each hint list, computed afresh (no remembered rounds)."""
    rounds = []
    for h in hints:
        strategy.guesser._rounds.cache_clear()
        rounds.append(strategy.guesser._rounds(h, 5))
    return rounds


def test_shortlisted_guesses_equal_scoring_every_word(
    tiny_index: WordIndex, targets: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guesser scores exactly only the words its first pass (the principal-axes
    projection) ranks best: the same guesses as scoring every word, round by round."""
    import hatbot.guesser

    strategy = Strategy(tiny_index)
    assert len(tiny_index) > 2 * hatbot.guesser.SHORTLIST
    hints = hint_lists(strategy, targets)
    rows, _ = strategy.guesser._prefix_scores(list(hints[0]), shortlist=True)
    assert hatbot.guesser.SHORTLIST // 2 < len(rows) < 2 * hatbot.guesser.SHORTLIST
    shortlisted = all_rounds(strategy, hints)
    monkeypatch.setattr(hatbot.guesser, "SHORTLIST", 10**9)
    assert all_rounds(strategy, hints) == shortlisted


def test_a_cruder_projection_still_mostly_agrees(
    tiny_index: WordIndex, targets: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 8 axes and 300 words per prefix the first pass is rough, yet most rounds equal
    scoring every word (the default, 64 axes and about 1,000 words, agrees on all of them)."""
    import hatbot.guesser
    from hatbot.index import principal_projection

    strategy = Strategy(tiny_index)
    hints = hint_lists(strategy, targets)
    monkeypatch.setattr(hatbot.guesser, "SHORTLIST", 10**9)
    exact = [r for rounds in all_rounds(strategy, hints) for r in rounds]
    monkeypatch.setattr(hatbot.guesser, "SHORTLIST", 300)
    strategy.guesser.axes, strategy.guesser.projected = principal_projection(
        tiny_index.stacked, dims=8, columns=strategy.guesser.column_weights != 0
    )
    rough = [r for rounds in all_rounds(strategy, hints) for r in rounds]
    same = sum(a == b for a, b in zip(rough, exact, strict=True))
    assert same < len(exact)  # the crude pass does miss a word now and then ...
    assert same >= 0.9 * len(exact)  # ... but rarely


def test_remembered_rounds_equal_a_fresh_computation(
    strategy: Strategy, targets: list[str]
) -> None:
    """The host asks for the prefixes one after another; each answer reuses the rounds of
    the shorter prefixes, and is the answer computed from scratch."""
    # The host's mode stays unknown: a mode learnt halfway would rightly change the rounds.
    fresh = Strategy(strategy.index, mode=HostMode(memory=0))
    hints = hint_lists(strategy, targets)[:20]
    fresh_answers = []
    for h in hints:
        for k in range(1, len(h) + 1):
            fresh.guesser._rounds.cache_clear()
            fresh_answers.append(fresh.guess(list(h[:k]), 5))
    remembered = Strategy(strategy.index, mode=HostMode(memory=0))
    answers = [remembered.guess(list(h[:k]), 5) for h in hints for k in range(1, len(h) + 1)]
    assert answers == fresh_answers
    # Each round was computed once.
    prefixes = {h[:k] for h in hints for k in range(1, len(h) + 1)}
    assert remembered.guesser._rounds.cache_info().misses == len(prefixes)


def test_a_strategy_is_freed_by_reference_counting(tiny_index: WordIndex) -> None:
    """No reference cycle (its memo of rounds included): the service freezes the garbage
    collector's view of the heap after a load, so a replaced model must go by refcount."""
    import gc
    import weakref

    strategy = Strategy(tiny_index)
    strategy.guess(["space", "orbit"], 5)
    gone = weakref.ref(strategy)
    gc.disable()
    try:
        del strategy
        assert gone() is None
    finally:
        gc.enable()


# The explainer of the starter kit and clean-naive alone, each in all its models, averaging
# its hints: the simplest setting that shows how recipes and twins become simulated guessers.
TWO_RECIPES = StrategyParams(
    explain_proxy_weights={"clean_naive": 2.0, "starter_kit": 1.0},
    joined_hints=False,
    max_twins=None,
)


def test_each_recipe_is_simulated_in_its_proxy_and_its_twins(tiny_index: WordIndex) -> None:
    """The explainer's simulated guessers: hatbot's space, then each weighted recipe's proxy
    and twins (several models of one recipe), the recipe's weight split between them; a
    recipe without an explaining weight is not simulated."""
    strategy = Strategy(tiny_index, TWO_RECIPES)
    params = strategy.params
    simulated = [p for p in tiny_index.proxies if params.explain_proxy_weights.get(p.name, 0) > 0]
    assert [p.name for p in simulated] == ["clean_naive", "starter_kit"]
    assert len(tiny_index.proxies) > len(simulated)
    counts = [len(tiny_index.manifest["twin_seeds"].get(p.name, [])) for p in simulated]
    assert min(counts) >= 2 and len(set(counts)) == 1
    models = 1 + counts[0]
    assert len(strategy.explainer.spaces) == len(strategy.explainer.weights) == 1 + 2 * models
    assert strategy.explainer.weights[0] == params.explain_own_weight
    assert all(strategy.explainer.proposes)
    assert all(rows is None for rows in strategy.explainer.hint_spaces)  # `joined_hints` off
    for k, proxy in enumerate(simulated):
        spaces = strategy.explainer.spaces[1 + models * k : 1 + models * (k + 1)]
        assert spaces[0] is proxy.vectors
        assert all(s is t.vectors for s, t in zip(spaces[1:], proxy.twins, strict=True))
        weights = strategy.explainer.weights[1 + models * k : 1 + models * (k + 1)]
        assert weights == [params.explain_proxy_weights[proxy.name] / models] * models
        for i, twin in enumerate(proxy.twins):
            # Memory-mapped: the service explains from its table, so a twin stays on disk.
            assert isinstance(twin.vectors, np.memmap)
            # Another model of the same recipe: other vectors, yet much the same neighbours.
            others = [proxy.vectors] + [t.vectors for t in proxy.twins[:i]]
            assert not any(np.allclose(twin.vectors, other) for other in others)
            shared = [
                len(set(a) & set(b))
                for a, b in zip(proxy.neighbours.tolist(), twin.neighbours.tolist(), strict=True)
            ]
            chance = proxy.neighbours.shape[1] ** 2 / len(tiny_index)
            assert np.mean(shared) > 5 * chance
    # The guesser reads every proxy (one space per recipe, as the stacked matrix), the
    # recipes without a guessing weight at weight 0.
    assert len(strategy.guesser.spaces) == 1 + len(tiny_index.proxies)
    assert sum(w > 0 for w in strategy.guesser.weights) == 1 + len(params.proxy_weights)
    # Without twins: one simulated guesser per recipe, with the recipe's whole weight.
    alone = Strategy(tiny_index, TWO_RECIPES.model_copy(update={"explain_twins": False}))
    for cap in (0, 1):
        capped = Strategy(tiny_index, TWO_RECIPES.model_copy(update={"max_twins": cap}))
        assert len(capped.explainer.spaces) == 1 + 2 * (1 + cap)
    expected = [tiny_index.vectors] + [p.vectors for p in simulated]
    assert len(alone.explainer.spaces) == len(expected)
    assert all(a is b for a, b in zip(alone.explainer.spaces, expected, strict=True))
    assert alone.explainer.weights[1:] == [
        alone.params.explain_proxy_weights[p.name] for p in simulated
    ]


def test_the_notebook_recipes_can_be_simulated_from_their_joined_hints(
    tiny_index: WordIndex,
) -> None:
    """By default (`joined_hints`), every model of a recipe whose bots join their hints (all
    but clean-naive) is simulated by its joined rows; the notebook recipes, weighted, judge
    the candidates without proposing them (`explain_pool_recipes`); `max_twins` caps
    each recipe's models. The hints still survive both modes' cleaning, and differ from
    those of the two proposing recipes alone."""
    weights = {"clean_naive": 2.0, "starter_kit": 1.0, "notebook_cbow16": 0.5, "notebook_sg10": 0.5}
    strategy = Strategy(tiny_index)
    params = strategy.params
    assert params.explain_proxy_weights == weights
    assert params.joined_hints and params.max_twins == 2
    explainer = strategy.explainer
    simulated = [p for p in tiny_index.proxies if p.name in weights]
    assert [p.name for p in simulated] == sorted(weights)
    assert any(len(p.twins) > 2 for p in simulated)  # the cap leaves some out
    assert len(explainer.spaces) == 1 + 3 * len(simulated)
    for k, proxy in enumerate(simulated):
        at = slice(1 + 3 * k, 1 + 3 * (k + 1))
        models = [proxy, *proxy.twins[:2]]
        assert all(s is m.vectors for s, m in zip(explainer.spaces[at], models, strict=True))
        assert explainer.proposes[at] == [proxy.name in params.explain_pool_recipes] * 3
        for rows, model in zip(explainer.hint_spaces[at], models, strict=True):
            if proxy.name == "clean_naive":
                assert rows is None
            else:
                assert rows is not None and rows is model.joined
    lexicon = NltkLexicon()
    words = [w for w, ok in zip(tiny_index.words, tiny_index.eligible, strict=True) if ok][:20]
    plain = Strategy(tiny_index, TWO_RECIPES)
    differ = 0
    for word in words:
        hints = strategy.explain(word, 5)
        for criteria in ("soft", "hard"):
            assert clean_explanation(word, hints, 5, criteria, lexicon) == hints
        differ += hints != plain.explain(word, 5)
    assert differ > 0


def test_the_candidates_neighbours_compete_as_far_as_competitor_neighbours(
    tiny_index: WordIndex, targets: list[str]
) -> None:
    """A simulated guesser's competitors: the target's nearest words and, of each candidate
    hint, its first `competitor_neighbours` nearest words (none at 0)."""
    from hatbot.explainer import COMPETITORS

    by_count = {
        n: Strategy(tiny_index, StrategyParams(competitor_neighbours=n)) for n in (0, 3, 10)
    }
    explainer = by_count[10].explainer
    target = tiny_index.ids[targets[0]]
    scores = explainer.spaces[0] @ explainer.spaces[0][target]
    pool = np.asarray(explainer._pool(targets[0], target, [scores] * len(explainer.spaces)))
    nearest = set(tiny_index.top(scores, COMPETITORS + 1).tolist()) - {target}
    neighbours = explainer.neighbours[0]
    for n, strategy in by_count.items():
        rivals = strategy.explainer._competitors(scores, neighbours, pool, target)
        expected = nearest | set(neighbours[pool, :n].ravel().tolist())
        assert set(rivals.tolist()) == expected - {target}, n
    sizes = [
        len(s.explainer._competitors(scores, neighbours, pool, target)) for s in by_count.values()
    ]
    assert sizes[0] == len(nearest) < sizes[1] < sizes[2]
    with pytest.raises(ValueError):
        StrategyParams(competitor_neighbours=11)  # the artifact keeps 10 neighbours a word


def _brute_outlook(
    space: np.ndarray, target: int, hints: list[int], option: int, rivals: list[int], k: int
) -> tuple[tuple[float, float, int], tuple[float, float, int]]:
    """A guesser's outlook computed plainly, hard then soft: the query is the hints' sum
    with the option, scores are dot products over its norm, the hints are never guessed;
    under the soft check rivals[:2] (the variants) count as the target."""
    query = space[[*hints, option]].sum(axis=0)
    norm = float(np.linalg.norm(query))
    own = float(space[target] @ query) / norm
    given = {*hints, option}
    scores = [float(space[r] @ query) / norm for r in rivals if r not in given]
    variants = [float(space[r] @ query) / norm for r in rivals[:2]]
    others = [float(space[r] @ query) / norm for r in rivals[2:] if r not in given]
    soft_own = max([own, *variants])
    return (
        (own, sorted(scores)[-k], sum(s > own for s in scores)),
        (soft_own, sorted(others)[-k], sum(s > soft_own for s in others)),
    )


def test_the_simulated_guesser_counts_the_targets_variants_under_the_soft_check() -> None:
    """`SimulatedGuesser.scores_with_each_option` (one partial sort for both checks) equals
    a plain computation: hard, the target must beat every competitor; soft, the best of the
    target and its variants must beat the others. One variant lies closer to the hints than
    the target."""
    rng = np.random.default_rng(7)
    space = rng.standard_normal((400, 16)).astype(np.float32)
    target, hints = 0, [5, 6]
    space[1] = space[5] + space[6] + 0.1 * space[0]  # a variant nearer the hints
    options = np.arange(5, 60)
    rivals = np.arange(1, 400)
    variants = np.isin(rivals, [1, 2])
    guesser = SimulatedGuesser(space, target, options, rivals[::-1].copy(), variants[::-1].copy())
    assert guesser.rivals[:2].tolist() == [2, 1]  # the variants first
    for hint in hints:
        guesser.add(int(np.flatnonzero(options == hint)[0]))
    selectable = np.flatnonzero(~np.isin(options, hints))
    for k in (1, 5):
        hard, soft = guesser.scores_with_each_option(selectable, k, soft=True)
        alone = guesser.scores_with_each_option(selectable, k, soft=False)
        assert len(alone) == 1
        assert all(np.array_equal(a, b) for a, b in zip(hard, alone[0], strict=True))
        for row, option in enumerate(options[selectable]):
            expected = _brute_outlook(space, target, hints, int(option), [2, 1, *range(3, 400)], k)
            for got, want in zip((hard, soft), expected, strict=True):
                np.testing.assert_allclose([got[0][row], got[1][row]], want[:2], rtol=1e-4)
                # Found: fewer than k competitors beat the target (the count itself is
                # no longer computed, since the explainer got faster).
                assert got[2][row] == (want[2] < k), (k, option)
        assert (soft[2] >= hard[2]).all() and (soft[2] > hard[2]).any()
    # With the hints given so far: the variant beats the target, which the soft check forgives.
    assert guesser.rank() >= 1
    assert guesser.soft_rank() < guesser.rank()


def test_a_bot_that_joins_its_hints_is_simulated_as_it_guesses() -> None:
    """`JoinedGuesser` equals a plain computation of a starter-kit bot: for one hint, the
    hint's vector as the query and the hint never answered; for more, the sum of the hints'
    joined rows as the query, and the hints themselves may be answered (and here are)."""
    rng = np.random.default_rng(3)
    space = rng.standard_normal((300, 12)).astype(np.float32)
    rows = rng.standard_normal((300, 12)).astype(np.float32)
    target, hints = 0, [5, 6, 7]
    rows[5] += 3 * space[5]  # a hint's rows point at itself, as its n-grams do
    options = np.arange(5, 40)
    rivals = np.arange(1, 300)
    variants = np.zeros(len(rivals), dtype=bool)
    guesser = JoinedGuesser(space, rows, target, options, rivals, variants)

    def brute(given: list[int], option: int, k: int) -> tuple[float, float, bool]:
        query = space[option] if not given else rows[[*given, option]].sum(axis=0)
        norm = float(np.linalg.norm(query))
        banned = {option} if not given else set()
        scores = sorted(float(space[r] @ query) / norm for r in rivals if r not in banned)
        own = float(space[target] @ query) / norm
        return own, scores[-k], scores[-k] <= own

    for step, hint in enumerate(hints):
        selectable = np.flatnonzero(~np.isin(options, hints[:step]))
        for k in (1, 5):
            ((own, kth, found),) = guesser.scores_with_each_option(selectable, k, soft=False)
            for row, option in enumerate(options[selectable]):
                want = brute(hints[:step], int(option), k)
                np.testing.assert_allclose([own[row], kth[row]], want[:2], rtol=1e-4, atol=1e-5)
                assert found[row] == want[2]
        guesser.add(int(np.flatnonzero(options == hint)[0]))
        query = space[hint] if step == 0 else rows[hints[: step + 1]].sum(axis=0)
        banned = {hint} if step == 0 else set()
        own = float(space[target] @ query)
        assert guesser.rank() == sum(
            float(space[r] @ query) > own for r in rivals if r not in banned
        )
    # After three hints the first one, whose rows point at it, outranks the target.
    query = rows[hints].sum(axis=0)
    assert float(space[5] @ query) > float(space[target] @ query)


def test_soft_share_weighs_the_soft_check_when_ordering_hints(tiny_index: WordIndex) -> None:
    """`soft_share` 0 and 1 order hints for the hard and the soft check alone; the default
    weighs both. Each still gives only hints the host keeps, and the choice differs for
    some words (those whose variants a guesser answers)."""
    lexicon = NltkLexicon()
    words = [w for w, ok in zip(tiny_index.words, tiny_index.eligible, strict=True) if ok][:80]
    answers = {}
    for share in (0.0, 0.5, 1.0):
        strategy = Strategy(tiny_index, StrategyParams(soft_share=share))
        answers[share] = [strategy.explain(w, 5) for w in words]
        for word, hints in zip(words, answers[share], strict=True):
            assert len(hints) == 5
            for criteria in ("soft", "hard"):
                assert clean_explanation(word, hints, 5, criteria, lexicon) == hints
    assert answers[0.0] != answers[1.0]
    assert Strategy(tiny_index).params.soft_share == 0.5
