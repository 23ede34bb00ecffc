"""How hatbot explains: hints other bots understand, none the host deletes.

Candidate hints are the target's neighbours in hatbot's own space and in the spaces of
the opponent recipes (several models of each: its proxy and the proxy's twins, trained
on the corpus shuffled), minus everything the host would delete in either mode (in soft
mode only, for a model trained with `hint_rules` soft for a tournament announced soft).
They are ordered greedily: each next hint is the one that lets the most simulated
guessers (a mean-of-hints nearest-neighbour guesser in each space, the opponent recipes
weighted above hatbot's own) rank the target among their top guesses soonest, against
the target's neighbours and the hints' own neighbours (the spelling variants a naive
guesser answers first), judged by the hard check and the soft one (`soft_share`), which
a variant of the target also meets.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from threadpoolctl import ThreadpoolController

from hatbot.game import rules
from hatbot.game.rules import Criteria, normalise, soft_match
from hatbot.index import Vector, WordIndex
from hatbot.strategy_params import StrategyParams, common_words, popularity

# How many competitors per space the explainer simulates a guesser against.
COMPETITORS = 300
# How many candidates per space the explainer considers before ordering them.
POOL = 100
# The two checks a simulated guesser is judged by, as indices of `Missing`'s lists.
HARD, SOFT = 0, 1
# Per check (HARD, SOFT): whether each simulated guesser still misses the target.
Missing = list[list[bool]]


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS thread pools (NumPy's OpenBLAS), found once."""
    return ThreadpoolController()


def take_row_maxima(matrix: NDArray[np.float32], k: int) -> NDArray[np.float32]:
    """The k largest values of each row, largest first, each set to -inf in `matrix` once
    taken: the values a partial sort of each row gives, several times faster
    (docs/BENCHMARKS.md, "Why the service is built this way")."""
    rows = np.arange(len(matrix))
    best = np.empty((len(matrix), k), dtype=matrix.dtype)
    for j in range(k):
        at = matrix.argmax(axis=1)
        best[:, j] = matrix[rows, at]
        matrix[rows, at] = -np.inf
    return best


class SimulatedGuesser:
    """One simulated guesser (a space) while the explainer orders a target's hints: the
    hints' sum and its dot products with the target, the competitors and the options."""

    def __init__(
        self,
        space: Vector,
        target: int,
        options: NDArray[np.int64],
        rivals: NDArray[np.int64],
        variants: NDArray[np.bool_],
        hint_space: Vector | None = None,
    ) -> None:
        """With `hint_space`, a guesser whose query is the sum of the hints' rows there,
        not of their vectors in `space`, and who may answer a hint it was given (a
        starter-kit bot asking fastText about its hints joined into one string)."""
        # The competitors the soft host counts as the target (`spaces` for `space`) first.
        rivals = np.concatenate([rivals[variants], rivals[~variants]])
        self.rivals = rivals
        self.n_variants = int(variants.sum())
        self.guesses_hints = hint_space is not None
        vectors = np.asarray((space if hint_space is None else hint_space)[options])
        rival_vectors = np.asarray(space[rivals])
        self.option_target = vectors @ space[target]
        self.option_rival = vectors @ rival_vectors.T
        if not self.guesses_hints:
            # A guesser never guesses the hints it was given: an option's own column is -inf.
            order = np.argsort(options)
            at = np.minimum(np.searchsorted(options[order], rivals), len(options) - 1)
            same = options[order][at] == rivals
            self.option_rival[order[at[same]], np.flatnonzero(same)] = -np.inf
        self.option_gram = vectors @ vectors.T
        self.option_norm2 = np.einsum("ij,ij->i", vectors, vectors)
        self.options = options
        # The hints' sum: its squared norm and dot products.
        self.sum_norm2 = 0.0
        self.sum_target = 0.0
        self.sum_rival = np.zeros(len(rivals), dtype=np.float32)
        self.sum_option = np.zeros(len(options), dtype=np.float32)
        self.given = np.zeros(len(rivals), dtype=bool)
        # The hints' sum with the hints given so far at -inf (no guesser answers them).
        self.open_rival = self.sum_rival.copy()

    def scores_with_each_option(
        self, options: NDArray[np.int64], k: int, soft: bool
    ) -> list[tuple[Vector, Vector, NDArray[np.bool_]]]:
        """With each option added to the hints: the target's similarity to the query, the
        k-th best competitor's, and whether the target is among the top k (no more than
        k - 1 competitors beat it); then, with `soft`, the same under the soft check, where
        the target's variants count as it and are no longer competitors.

        One pass per option serves both checks: the k best competitors that are not
        variants (the soft check's k-th is the least of them), and the hard check's k-th is
        the k-th best of those and the variants together. "Among the top k" is
        "the k-th best competitor does not beat the target", with no count of the rest.
        """
        norm = np.sqrt(self.sum_norm2 + 2.0 * self.sum_option[options] + self.option_norm2[options])
        norm += 1e-12
        own = self.sum_target + self.option_target[options]
        others = self.option_rival[options]
        others += self.open_rival  # the hints given are -inf: a guesser never guesses them
        extra = self.n_variants
        width = others.shape[1] - extra
        if width < k:  # fewer competitors than guesses: the target is among the top k
            floor = np.full(len(options), -np.inf, dtype=np.float32)
            found = np.ones(len(options), dtype=bool)
            return [(own / norm, floor, found)] * (2 if soft else 1)
        # The k best competitors that are not variants (the variants are the first ones);
        # `others` is this call's own copy.
        best = take_row_maxima(others[:, extra:], k)
        if extra:
            variants = others[:, :extra]
            merged = np.concatenate([best, variants], axis=1)
            kth_best = np.partition(merged, extra, axis=1)[:, extra]
        else:
            kth_best = best.min(axis=1)
        result = [(own / norm, kth_best / norm, kth_best <= own)]
        if soft:
            if extra:
                own = np.maximum(own, variants.max(axis=1))
                kth_best = best.min(axis=1)
            result.append((own / norm, kth_best / norm, kth_best <= own))
        return result

    def add(self, option: int) -> None:
        """Give the `option`-th option as the next hint."""
        self.sum_norm2 += 2.0 * float(self.sum_option[option]) + float(self.option_norm2[option])
        self.sum_target += float(self.option_target[option])
        row = self.option_rival[option]
        self.sum_rival += np.where(np.isfinite(row), row, 0.0).astype(np.float32)
        self.sum_option += self.option_gram[option]
        if not self.guesses_hints:
            self.given |= self.rivals == self.options[option]
        self.open_rival = np.where(self.given, np.float32(-np.inf), self.sum_rival)

    def rank(self) -> int:
        """How many competitors beat the target for the hints given so far."""
        others = np.where(self.given, -np.inf, self.sum_rival)
        return int((others > self.sum_target).sum())

    def soft_rank(self) -> int:
        """How many competitors beat the target and its variants, under the soft check."""
        others = np.where(self.given, -np.inf, self.sum_rival)
        own = max(self.sum_target, float(others[: self.n_variants].max(initial=-np.inf)))
        return int((others[self.n_variants :] > own).sum())


class JoinedGuesser:
    """A starter-kit bot as the explainer simulates it: fastText's neighbours of the one
    hint (the word's own vector; it never answers that word), then of all the hints
    joined by spaces, a string fastText does not know, whose vector is the mean of its
    character n-grams: each hint's rows in `hint_space`, summed (docs/STRATEGY.md,
    "Explaining"). Such a bot may answer the hints themselves."""

    def __init__(
        self,
        space: Vector,
        hint_space: Vector,
        target: int,
        options: NDArray[np.int64],
        rivals: NDArray[np.int64],
        variants: NDArray[np.bool_],
    ) -> None:
        self.first = SimulatedGuesser(space, target, options, rivals, variants)
        self.joined = SimulatedGuesser(space, target, options, rivals, variants, hint_space)
        self.count = 0

    def _with(self, hints: int) -> SimulatedGuesser:
        """The guesser that answers `hints` hints: one hint by its vector, more joined."""
        return self.first if hints <= 1 else self.joined

    def scores_with_each_option(
        self, options: NDArray[np.int64], k: int, soft: bool
    ) -> list[tuple[Vector, Vector, NDArray[np.bool_]]]:
        return self._with(self.count + 1).scores_with_each_option(options, k, soft)

    def add(self, option: int) -> None:
        self.first.add(option)
        self.joined.add(option)
        self.count += 1

    def rank(self) -> int:
        return self._with(self.count).rank()

    def soft_rank(self) -> int:
        return self._with(self.count).soft_rank()


class Explainer:
    """Explains with one loaded `WordIndex`; a pure function of its inputs."""

    def __init__(self, index: WordIndex, params: StrategyParams) -> None:
        self.index = index
        self.params = params
        # The spaces of the simulated guessers. A recipe with twins is simulated in each of
        # its models, the recipe's weight split evenly between them.
        self.spaces, self.neighbours = [index.vectors], [index.neighbours]
        # Per space: the hints' rows of a bot that joins its hints (None: it averages them).
        self.hint_spaces: list[Vector | None] = [None]
        # Per space: whether its nearest words are candidate hints (every space judges them).
        self.proposes = [True]
        self.weights = [params.explain_own_weight]
        for proxy in index.proxies:
            # A recipe without a weight is not simulated (its bots guess too poorly to aim at).
            weight = params.explain_proxy_weights.get(proxy.name, 0.0)
            if weight <= 0:
                continue
            models = [(proxy.vectors, proxy.neighbours, proxy.joined)]
            if params.explain_twins:
                twins = proxy.twins[: params.max_twins]
                models += [(twin.vectors, twin.neighbours, twin.joined) for twin in twins]
            for vectors, neighbours, joined in models:
                self.spaces.append(vectors)
                self.neighbours.append(neighbours)
                self.hint_spaces.append(joined if params.joined_hints else None)
                self.proposes.append(proxy.name in params.explain_pool_recipes)
                self.weights.append(weight / len(models))
        self.popularity = popularity(index)
        self.hintable = index.counts >= params.min_hint_count
        if params.hint_rules == "both":
            self.hintable &= index.in_wordnet
        self.fallback = common_words(index)
        self.spellings = [index.words[i] for i in self.fallback]

    # ---- host rules with the artifact's lexicon ----

    @property
    def criteria(self) -> list[Criteria]:
        """The host modes that keep every hint this explainer gives."""
        return ["soft"] if self.params.hint_rules == "soft" else ["soft", "hard"]

    def hint_allowed(self, word: str, hint: str) -> bool:
        """True when `hint` is a vocabulary word the host keeps for `word` in every mode of
        `hint_rules` (the hard check keeps only what the soft one keeps too)."""
        strictest = self.criteria[-1]
        return hint in self.index.ids and rules.hint_survives(word, hint, strictest, self.index)

    def closest_known(self, word: str) -> int | None:
        """The vocabulary id for a word, or for its closest spelling when it is unknown."""
        i = self.index.ids.get(word)
        if i is not None or not word:
            return i
        match = process.extractOne(
            word, self.spellings, scorer=Levenshtein.normalized_similarity, score_cutoff=0.75
        )
        return self.fallback[match[2]] if match else None

    # ---- explaining ----

    def explain(self, word: str, n_words: int) -> list[str]:
        """Up to `n_words` hints for `word`, the most telling first, none the host deletes.

        With one BLAS thread, whatever the process's setting: a product's last bits depend
        on how many threads summed it, and a greedy choice between two near-equal hints can
        turn on them. The export's workers run one thread, so an explanation computed here
        always equals the artifact's table (`tests/service/test_explanations.py`).
        """
        with _blas().limit(limits=1, user_api="blas"):
            return self._explain(normalise(word), n_words)

    def _explain(self, word: str, n_words: int) -> list[str]:
        target = self.closest_known(word)
        if target is None:
            return self._fill(word, [], self.fallback, n_words)
        # The target's similarity to every word, per space: computed once, read three times.
        similarity = [space @ space[target] for space in self.spaces]
        pool = self._pool(word, target, similarity)
        chosen = self._order(target, pool, similarity, n_words)
        hints = [self.index.words[i] for i in chosen]
        if len(hints) < n_words:
            deeper = self.index.top(similarity[0], 3000)
            hints = self._fill(word, hints, [int(i) for i in deeper] + self.fallback, n_words)
        return hints

    def _fill(self, word: str, hints: list[str], ids: Sequence[int], n_words: int) -> list[str]:
        stems = {self.index.stem(h) for h in hints}
        for i in ids:
            if len(hints) >= n_words:
                break
            candidate = self.index.words[i]
            if (
                self.hintable[i]
                and candidate not in hints
                and self.index.stems[i] not in stems
                and self.hint_allowed(word, candidate)
            ):
                hints.append(candidate)
                stems.add(self.index.stems[i])
        return hints

    def _pool(self, word: str, target: int, similarity: list[Vector]) -> list[int]:
        pool: dict[int, None] = {}
        for scores, proposes in zip(similarity, self.proposes, strict=True):
            if not proposes:
                continue
            for i in self.index.top(scores, POOL):
                i = int(i)
                if (
                    i != target
                    and self.hintable[i]
                    and self.hint_allowed(word, self.index.words[i])
                ):
                    pool[i] = None
        return list(pool)

    def _order(
        self, target: int, pool: list[int], similarity: list[Vector], n_words: int
    ) -> list[int]:
        """Greedy order: each next hint helps the simulated guessers who still miss.

        A simulated guesser's query is the mean of the hints so far plus one option; its
        similarity to each competitor is the sum of two dot products computed once per
        space (the options' and the hints' sum's), divided by the query's norm.
        """
        ids = np.asarray(pool, dtype=np.int64)
        simulated = self._simulated_guessers(target, ids, similarity)
        missing: Missing = [[True] * len(simulated), [True] * len(simulated)]
        selectable = np.ones(len(ids), dtype=bool)  # options: not chosen, no chosen stem
        stems = np.array([self.index.stems[i] for i in pool], dtype=object)
        chosen: list[int] = []
        while len(chosen) < n_words and selectable.any():
            options = np.flatnonzero(selectable)
            _restart_when_all_found(missing)
            objective = self._objective(simulated, missing, ids, options)
            best = int(options[int(np.argmax(objective))])
            chosen.append(int(ids[best]))
            selectable &= stems != stems[best]
            self._give(simulated, missing, best)
        return chosen

    def _simulated_guessers(
        self, target: int, ids: NDArray[np.int64], similarity: list[Vector]
    ) -> list[SimulatedGuesser | JoinedGuesser]:
        """One simulated guesser per space, with the pool `ids` as its options."""
        word = self.index.words[target]
        simulated: list[SimulatedGuesser | JoinedGuesser] = []
        for space, hint_space, scores, neighbours in zip(
            self.spaces, self.hint_spaces, similarity, self.neighbours, strict=True
        ):
            rivals = self._competitors(scores, neighbours, ids, target)
            if hint_space is not None:  # a bot that joins its hints may answer them
                rivals = np.union1d(rivals, ids[ids != target])
            variants = np.array([soft_match(word, self.index.words[i]) for i in rivals], dtype=bool)
            if hint_space is None:
                simulated.append(SimulatedGuesser(space, target, ids, rivals, variants))
            else:
                simulated.append(JoinedGuesser(space, hint_space, target, ids, rivals, variants))
        return simulated

    def _objective(
        self,
        simulated: list[SimulatedGuesser | JoinedGuesser],
        missing: Missing,
        ids: NDArray[np.int64],
        options: NDArray[np.int64],
    ) -> Vector:
        """Each option's worth as the next hint: for every check and guesser still missing,
        its weight times (found + 0.5 tanh(5 margin)), plus a little popularity."""
        # Per check (HARD, SOFT): its share of the objective.
        shares = (1.0 - self.params.soft_share, self.params.soft_share)
        k = self.params.simulated_guesses
        objective: Vector = 0.05 * self.popularity[ids[options]]
        for g, guesser in enumerate(simulated):
            weights = [share * self.weights[g] for share in shares]
            if not any(w != 0 and missing[check][g] for check, w in enumerate(weights)):
                continue
            scores = guesser.scores_with_each_option(options, k, soft=weights[SOFT] != 0)
            for check, (own, kth_best, found) in enumerate(scores):
                if missing[check][g] and weights[check] != 0:
                    objective += weights[check] * (found + 0.5 * np.tanh(5.0 * (own - kth_best)))
        return objective

    def _give(
        self, simulated: list[SimulatedGuesser | JoinedGuesser], missing: Missing, option: int
    ) -> None:
        """Give the `option`-th option to every simulated guesser; mark who now finds it."""
        k = self.params.simulated_guesses
        for g, guesser in enumerate(simulated):
            guesser.add(option)
            if missing[HARD][g]:
                missing[HARD][g] = guesser.rank() >= k
            if missing[SOFT][g]:
                missing[SOFT][g] = guesser.soft_rank() >= k

    def _competitors(
        self, scores: Vector, neighbours: NDArray[np.int32], pool: NDArray[np.int64], target: int
    ) -> NDArray[np.int64]:
        """The words a guesser might answer before the target: the target's neighbours and,
        as a guesser given `shuttle` may well answer `shuttles`, each candidate's."""
        near: NDArray[np.int64] = np.union1d(
            self.index.top(scores, COMPETITORS + 1),
            neighbours[pool, : self.params.competitor_neighbours].ravel(),
        ).astype(np.int64)
        kept: NDArray[np.int64] = near[near != target]
        return kept


def _restart_when_all_found(missing: Missing) -> None:
    """Once every simulated guesser finds the target by a check, count them all as missing
    again, so that the check still weighs in the choice of the next hints."""
    for check in (HARD, SOFT):
        if not any(missing[check]):
            missing[check] = [True] * len(missing[check])
