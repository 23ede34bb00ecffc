"""How hatbot plays: explanations other bots understand, guesses that use every hint.

The host's rules come from `hatbot.game.rules` (the same code the game engine
judges with), with stems and WordNet facts read from the artifact.

Explaining: candidate hints are the target's neighbours in hatbot's own space
and in the spaces of the opponent recipes (several models of each: its proxy and the
proxy's twins, trained on the corpus shuffled), minus everything the host would
delete in either mode (in soft mode only, for a model trained with `hint_rules` soft
for a tournament announced soft). They are ordered greedily: each next hint is the one that
lets the most simulated guessers (a mean-of-hints nearest-neighbour guesser in
each space, the opponent recipes weighted above hatbot's own) rank the
target among their top guesses soonest, against the target's neighbours and the
hints' own neighbours (the spelling variants a naive guesser answers first), judged by
the hard check and the soft one (`soft_share`), which a variant of the target also meets.

Guessing: every vocabulary word is scored by its similarity to the weighted hints
in each space less its neighbour density (CSLS: an explainer's hints are its nearest
neighbours, so a hint is evidence for a word in proportion to how it stands out
among that word's neighbours), by how well the hints match the explanation each proxy recipe
would give for it (reverse lookup of precomputed hint lists), and by a prior for
words a hat can hold. Guesses the host's rules make impossible, or that an
earlier (missed) guess already covered, are skipped; the host asks again only
after a miss, so the earlier guesses are recomputed rather than remembered.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from threadpoolctl import ThreadpoolController

from hatbot.game.rules import Criteria, normalise, soft_match, too_close
from hatbot.index import Vector, WordIndex, principal_projection

# How many competitors per space the explainer simulates a guesser against.
COMPETITORS = 300
# How many candidates per space the explainer considers before ordering them.
POOL = 100
# How many words per prefix the guesser scores exactly, chosen by a first pass over the
# principal-axes projection of all spaces; docs/BENCHMARKS.md measures the agreement.
SHORTLIST = 1000
# How many hint lists' rounds of guesses each process remembers (least recently used out):
# the host needs each word in play's previous prefix only, a few KB.
ROUNDS_CACHED = 4096
# The guesses of one round.
Guesses = tuple[str, ...]
# What a model's manifest meant by leaving out a parameter added after it was made: its
# precomputed explanations were made so, and a live explanation must equal them.
PARAMS_BEFORE = {"soft_share": 0.0}


class StrategyParams(BaseModel):
    """The knobs of the strategy; the pipeline tunes them and stores them in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Neighbours each proxy explainer's hint list holds per hat candidate.
    proxy_depth: int = Field(30, ge=1, le=200)
    # Weights of the guess score: own space, each proxy space, proxies' hint lists, hat prior.
    own_weight: float = 1.0
    proxy_weight: float = 1.0
    reverse_weight: float = 0.6
    prior_weight: float = 0.15
    # How much of a candidate's neighbour density is subtracted from its similarity to a
    # hint (0: plain cosine; 1: CSLS, a hint counts when it is among the candidate's
    # nearest neighbours, as the explainer's hints are).
    density_weight: float = Field(1.0, ge=0.0)
    # Weights of the simulated guessers when explaining: hatbot's own space, and each
    # opponent recipe's (the points come from other bots; the own space stands for
    # recipes hatbot has no proxy of).
    explain_own_weight: float = Field(0.3, ge=0.0)
    explain_proxy_weights: dict[str, float] = {"clean_naive": 2.0, "starter_kit": 1.0}
    # Simulate each recipe in its twins too (the artifact's other models of it), the
    # recipe's weight split evenly between its models.
    explain_twins: bool = True
    # At most this many of each recipe's twins (the artifact's first ones); None: all.
    max_twins: int | None = Field(None, ge=0)
    # Hint j (from 0) weighs 1 / (1 + hint_decay * j) in a guess.
    hint_decay: float = 0.15
    # A hint must be this frequent in the corpus, so other bots know it well.
    min_hint_count: int = Field(7, ge=1)
    # The number of guesses the explainer assumes other bots make.
    simulated_guesses: int = Field(5, ge=1)
    # Share of the soft check in a simulated guesser's success, the rest the hard check's
    # (under the soft check a guess of the target's variant, `spaces` for `space`, scores).
    soft_share: float = Field(0.5, ge=0.0, le=1.0)
    # The host modes every hint must survive: "both" (soft and hard, safe whatever the
    # tournament's mode) or "soft" (a tournament announced soft: the hard-only steps, the
    # stem and WordNet checks, no longer bar a hint).
    hint_rules: Literal["both", "soft"] = "both"

    @classmethod
    def of_model(cls, manifest: Mapping[str, Any]) -> StrategyParams:
        """The parameters a model's manifest names; one added since, as the model was made."""
        return cls(**{**PARAMS_BEFORE, **manifest.get("strategy", {})})


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS thread pools (NumPy's OpenBLAS), found once."""
    return ThreadpoolController()


class _Simulated:
    """One simulated guesser (a space) while the explainer orders a target's hints: the
    hints' sum and its dot products with the target, the competitors and the options."""

    def __init__(
        self,
        space: Vector,
        target: int,
        options: NDArray[np.int64],
        rivals: NDArray[np.int64],
        variants: NDArray[np.bool_],
    ) -> None:
        # The competitors the soft host counts as the target (`spaces` for `space`) first.
        rivals = np.concatenate([rivals[variants], rivals[~variants]])
        self.rivals = rivals
        self.n_variants = int(variants.sum())
        vectors = np.asarray(space[options])
        rival_vectors = np.asarray(space[rivals])
        self.option_target = vectors @ space[target]
        self.option_rival = vectors @ rival_vectors.T
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

    def outlooks(
        self, options: NDArray[np.int64], k: int, soft: bool
    ) -> list[tuple[Vector, Vector, NDArray[np.bool_]]]:
        """With each option added to the hints: the target's similarity to the query, the
        k-th best competitor's, and whether the target is among the top k (no more than
        k - 1 competitors beat it); then, with `soft`, the same under the soft check, where
        the target's variants count as it and are no longer competitors.

        One partial sort per option serves both checks: the k best competitors that are
        not variants (the soft check's k-th is the least of them), and the hard check's
        k-th is the k-th best of those and the variants together. "Among the top k" is
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
        # The k best competitors that are not variants (the variants are the first ones),
        # partitioned in place: `others` is this call's own copy.
        others[:, extra:].partition(width - k, axis=1)
        best = others[:, extra + width - k :]
        if extra:
            variants = others[:, :extra]
            merged = np.concatenate([best, variants], axis=1)
            kth = np.partition(merged, extra, axis=1)[:, extra]
        else:
            kth = best.min(axis=1)
        result = [(own / norm, kth / norm, kth <= own)]
        if soft:
            if extra:
                own = np.maximum(own, variants.max(axis=1))
                kth = best.min(axis=1)
            result.append((own / norm, kth / norm, kth <= own))
        return result

    def add(self, option: int) -> None:
        """Give the `option`-th option as the next hint."""
        self.sum_norm2 += 2.0 * float(self.sum_option[option]) + float(self.option_norm2[option])
        self.sum_target += float(self.option_target[option])
        row = self.option_rival[option]
        self.sum_rival += np.where(np.isfinite(row), row, 0.0).astype(np.float32)
        self.sum_option += self.option_gram[option]
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


class Strategy:
    """Explains and guesses with one loaded `WordIndex`; pure functions of their inputs."""

    def __init__(self, index: WordIndex, params: StrategyParams | None = None) -> None:
        self.index = index
        self.params = params or StrategyParams.of_model(index.manifest)
        self.spaces: list[Vector] = [index.vectors] + [p.vectors for p in index.proxies]
        self.densities: list[Vector] = [index.density] + [p.density for p in index.proxies]
        # Explaining: the spaces of the simulated guessers. A recipe with twins is simulated
        # in each of its models, the recipe's weight split evenly between them.
        self.explain_spaces, self.explain_neighbours = [index.vectors], [index.neighbours]
        self.explain_weights = [self.params.explain_own_weight]
        for proxy in index.proxies:
            models = [(proxy.vectors, proxy.neighbours)]
            if self.params.explain_twins:
                twins = proxy.twins[: self.params.max_twins]
                models += [(twin.vectors, twin.neighbours) for twin in twins]
            for vectors, neighbours in models:
                self.explain_spaces.append(vectors)
                self.explain_neighbours.append(neighbours)
                weight = self.params.explain_proxy_weights.get(proxy.name, 1.0)
                self.explain_weights.append(weight / len(models))
        # Guessing: each space's weight, the weighted sum of a word's densities, and every
        # word's vectors in all spaces projected on their principal axes (the first pass).
        self.guess_weights = [self.params.own_weight] + [self.params.proxy_weight] * len(
            index.proxies
        )
        self.crowding = self.params.density_weight * sum(
            (w * d for w, d in zip(self.guess_weights, self.densities, strict=True)),
            np.zeros(len(index), dtype=np.float32),
        )
        self.column_weights = np.concatenate(
            [
                np.full(space.shape[1], weight, dtype=np.float32)
                for weight, space in zip(self.guess_weights, self.spaces, strict=True)
            ]
        )
        self.axes, self.projected = principal_projection(index.stacked)
        self.prior = index.eligible.astype(np.float32)
        frequency = np.log1p(index.counts.astype(np.float32))
        self.popularity = frequency / max(1.0, float(frequency.max()))
        # A guess's prior and popularity terms, less the density (scores with a known hint).
        self.base_known = (
            self.params.prior_weight * self.prior + 0.02 * self.popularity - self.crowding
        )
        # Through a weak proxy: the memo held by the strategy does not hold the strategy, so
        # a replaced model is freed by reference counting (the service freezes the garbage
        # collector's view of the heap after a load; see `hatbot.app`).
        self._rounds = lru_cache(maxsize=ROUNDS_CACHED)(
            functools.partial(Strategy._rounds_uncached, weakref.proxy(self))
        )
        self.hintable = index.counts >= self.params.min_hint_count
        if self.params.hint_rules == "both":
            self.hintable &= index.is_word
        by_count = np.argsort(-index.counts, kind="stable")
        self.fallback = [int(i) for i in by_count if index.eligible[i]] or [
            int(i) for i in by_count
        ]
        self.spellings = [index.words[i] for i in self.fallback]

    # ---- host rules with the artifact's lexicon ----

    @property
    def explain_criteria(self) -> list[Criteria]:
        """The host modes that keep every hint this strategy gives."""
        return ["soft"] if self.params.hint_rules == "soft" else ["soft", "hard"]

    def hint_allowed(self, word: str, hint: str) -> bool:
        """True when the host keeps `hint` for `word` in the modes of `hint_rules`."""
        i = self.index.ids.get(hint)
        if i is None or too_close(word, hint):
            return False
        return self.params.hint_rules == "soft" or (
            bool(self.index.is_word[i]) and self.index.stem(hint) != self.index.stem(word)
        )

    def resolve(self, word: str) -> int | None:
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
        target = self.resolve(word)
        if target is None:
            return self._fill(word, [], self.fallback, n_words)
        # The target's similarity to every word, per space: computed once, read three times.
        similarity = [space @ space[target] for space in self.explain_spaces]
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
        for scores in similarity:
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
        word = self.index.words[target]
        simulated = []
        for space, scores, neighbours in zip(
            self.explain_spaces, similarity, self.explain_neighbours, strict=True
        ):
            rivals = self._competitors(scores, neighbours, ids, target)
            variants = np.array([soft_match(word, self.index.words[i]) for i in rivals], dtype=bool)
            simulated.append(_Simulated(space, target, ids, rivals, variants))
        # Per mode (hard, soft): its share of the objective and the guessers still missing.
        shares = (1.0 - self.params.soft_share, self.params.soft_share)
        missing = [[True] * len(simulated), [True] * len(simulated)]
        open_ = np.ones(len(ids), dtype=bool)  # options: not chosen, no chosen stem
        stems = np.array([self.index.stems[i] for i in pool], dtype=object)
        chosen: list[int] = []
        k = self.params.simulated_guesses
        while len(chosen) < n_words and open_.any():
            options = np.flatnonzero(open_)
            for mode in (0, 1):
                if not any(missing[mode]):
                    missing[mode] = [True] * len(simulated)
            objective = 0.05 * self.popularity[ids[options]]
            for g, guesser in enumerate(simulated):
                weights = [share * self.explain_weights[g] for share in shares]
                if not any(w != 0 and missing[mode][g] for mode, w in enumerate(weights)):
                    continue
                outlooks = guesser.outlooks(options, k, soft=weights[1] != 0)
                for mode, (own, kth, found) in enumerate(outlooks):
                    if missing[mode][g] and weights[mode] != 0:
                        objective += weights[mode] * (found + 0.5 * np.tanh(5.0 * (own - kth)))
            best = int(options[int(np.argmax(objective))])
            chosen.append(int(ids[best]))
            open_ &= stems != stems[best]
            for g, guesser in enumerate(simulated):
                guesser.add(best)
                if missing[0][g]:
                    missing[0][g] = guesser.rank() >= k
                if missing[1][g]:
                    missing[1][g] = guesser.soft_rank() >= k
        return chosen

    def _competitors(
        self, scores: Vector, neighbours: NDArray[np.int32], pool: NDArray[np.int64], target: int
    ) -> NDArray[np.int64]:
        """The words a guesser might answer before the target: the target's neighbours and,
        as a guesser given `shuttle` may well answer `shuttles`, each candidate's."""
        near: NDArray[np.int64] = np.union1d(
            self.index.top(scores, COMPETITORS + 1), neighbours[pool].ravel()
        ).astype(np.int64)
        kept: NDArray[np.int64] = near[near != target]
        return kept

    # ---- guessing ----

    def guess(self, hints: Sequence[str], n_words: int) -> list[str]:
        """Up to `n_words` guesses for the hints, none made already for a shorter prefix."""
        words = [normalise(h) for h in hints]
        words = [w for w in dict.fromkeys(words) if w]
        if not words:
            return [self.index.words[i] for i in self.fallback[:n_words]]
        return list(self._rounds(tuple(words), n_words)[-1])

    def _rounds_uncached(self, words: tuple[str, ...], n_words: int) -> tuple[Guesses, ...]:
        """The guesses for each prefix of the hints, in order: those for the whole list are
        the answer, the earlier ones (the host asked for them and they missed) are excluded.

        Memoised per process (`self._rounds`): the host asks for the prefixes one after
        another, so each answer reuses the earlier prefixes' rounds. The cache only saves
        time: a round is a pure function of its hints, the same computed afresh.
        """
        earlier = self._rounds(words[:-1], n_words) if len(words) > 1 else ()
        previous = [g for round_ in earlier for g in round_]
        rows, scores = self._prefix_scores(list(words), shortlist=True)
        guesses = self._pick(rows, scores, list(words), previous, n_words)
        if len(guesses) < n_words and len(rows) < len(self.index):
            # The shortlist ran out of words the rules allow: score every word.
            rows, scores = self._prefix_scores(list(words), shortlist=False)
            guesses = self._pick(rows, scores, list(words), previous, n_words)
        return (*earlier, tuple(guesses))

    def _scores(self, words: list[str]) -> NDArray[np.float32]:
        """Every word's score for every prefix of the hints: a vocabulary x prefixes matrix."""
        columns = [
            self._prefix_scores(words[:k], shortlist=False)[1] for k in range(1, len(words) + 1)
        ]
        return np.stack(columns, axis=1)

    def _prefix_scores(
        self, words: list[str], shortlist: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Words worth scoring for the hints `words` and their exact scores.

        A word's score: in each space, its similarity to the weighted mean of the hints
        less its density, plus the prior, its popularity and the proxies' reverse lookup.
        With `shortlist`, only the SHORTLIST words best by the projection of that score
        on the principal axes (one pass over a cache-sized matrix) are scored exactly.
        """
        p = self.params
        n = len(self.index)
        known = [(j, self.index.ids[w]) for j, w in enumerate(words) if w in self.index.ids]
        # The terms that need no vector product: prior and popularity, less the density
        # when a hint is known (its weights sum to 1), plus the reverse lookup.
        fixed = self.base_known.copy() if known else self.base_known + self.crowding
        if self.index.proxies:
            fixed += p.reverse_weight * self._reverse(words)
        if not known:
            return np.arange(n), fixed
        mix = np.array([1.0 / (1.0 + p.hint_decay * j) for j, _ in known], dtype=np.float32)
        mix /= mix.sum()
        ids = np.array([i for _, i in known], dtype=np.int64)
        # The weighted mean of the hints in each space, side by side like `index.stacked`.
        query = (mix @ self.index.stacked[ids]) * self.column_weights
        if shortlist and n > 2 * SHORTLIST:
            approx = fixed + self.projected @ (self.axes.T @ query)
            # About SHORTLIST words: those above the score ranked SHORTLIST / 16 in every
            # 16th word (a partial sort of 1/16 of the scores instead of all of them).
            sample = approx[::16]
            threshold = np.partition(sample, len(sample) - SHORTLIST // 16)[-SHORTLIST // 16]
            rows = np.flatnonzero(approx >= threshold)
        else:
            rows = np.arange(n)
        return rows, fixed[rows] + self.index.stacked[rows] @ query

    def _reverse(self, words: list[str]) -> NDArray[np.float32]:
        """How well the hints match each candidate's explanation by each proxy recipe: the
        mean over hints and proxies of 1 / (1 + 0.1 |position in it - position here|)."""
        targets, matches = [], []
        for proxy in self.index.proxies:
            for j, word in enumerate(words):
                i = self.index.ids.get(word, proxy.extra.get(word))
                if i is None:
                    continue
                found, positions = proxy.explained_by(i)
                targets.append(found)
                matches.append(1.0 / (1.0 + 0.1 * np.abs(positions - j)))
        if not targets:
            return np.zeros(len(self.index), dtype=np.float32)
        total = np.bincount(
            np.concatenate(targets), weights=np.concatenate(matches), minlength=len(self.index)
        )
        return (total / (len(words) * len(self.index.proxies))).astype(np.float32)

    def _pick(
        self,
        rows: NDArray[np.int64],
        scores: NDArray[np.float32],
        hints: list[str],
        previous: list[str],
        n_words: int,
    ) -> list[str]:
        """The best-scored words among `rows` the rules allow and no earlier guess covers."""
        picked: list[str] = []
        depth = 8 * n_words + 4 * len(previous) + 4 * len(hints)
        # `too_close` and `soft_match` need the word inside a hint or an earlier guess, or
        # (`too_close`) at most 2 edits from a hint: quick checks first, one C call each.
        hinted, guessed = "\n".join(hints), "\n".join(previous)
        while True:
            for i in self.index.top(scores, depth):
                word = self.index.words[int(rows[i])]
                if (
                    word in hinted
                    or process.extractOne(word, hints, scorer=Levenshtein.distance, score_cutoff=2)
                    or (word in guessed and any(soft_match(word, g) for g in previous))
                    or any(soft_match(word, g) or soft_match(g, word) for g in picked)
                ):
                    continue
                picked.append(word)
                if len(picked) == n_words:
                    return picked
            if depth >= len(scores):
                return picked
            depth, picked = depth * 4, []
