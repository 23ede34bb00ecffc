"""How hatbot guesses: every hint counts, and no guess the host's rules make impossible.

Every vocabulary word is scored by its similarity to the weighted hints in each space
less its neighbour density (CSLS: an explainer's hints are its nearest neighbours, so a
hint is evidence for a word in proportion to how it stands out among that word's
neighbours), by how well the hints match the explanation each opponent recipe would give
for it (reverse lookup of precomputed hint lists, the recipes weighted by how well each
explains the hints so far: a posterior over who explained, from the hints alone), and by
a prior for words a hat can hold. Guesses the host's rules make impossible, or that an
earlier (missed) guess already covered, are skipped; the host asks again only after a
miss, so the earlier guesses are recomputed rather than remembered.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from hatbot.game.rules import Criteria, normalise, soft_match
from hatbot.index import Vector, WordIndex, principal_projection
from hatbot.strategy_params import StrategyParams, common_words, popularity

# How many words per prefix the guesser scores exactly, chosen by a first pass over the
# principal-axes projection of all spaces; docs/BENCHMARKS.md measures the agreement.
SHORTLIST = 1000
# How many hint lists' rounds of guesses each process remembers (least recently used out):
# the host needs each word in play's previous prefix only, a few KB.
ROUNDS_CACHED = 4096
# The guesses of one round.
Guesses = tuple[str, ...]


class Guesser:
    """Guesses with one loaded `WordIndex`; a pure function of its inputs."""

    def __init__(self, index: WordIndex, params: StrategyParams) -> None:
        self.index = index
        self.params = params
        # The spaces scored (hatbot's own, "own", and each weighted recipe's), their
        # weights, the weighted sum of a word's densities, and every word's vectors in all
        # spaces projected on their principal axes (the first pass).
        self.names = ["own"] + [p.name for p in index.proxies]
        self.spaces: list[Vector] = [index.vectors] + [p.vectors for p in index.proxies]
        self.densities: list[Vector] = [index.density] + [p.density for p in index.proxies]
        self.weights = [params.own_weight] + [
            params.proxy_weights.get(p.name, 0.0) for p in index.proxies
        ]
        self.density_penalty = params.density_weight * sum(
            (w * d for w, d in zip(self.weights, self.densities, strict=True)),
            np.zeros(len(index), dtype=np.float32),
        )
        self.column_weights = np.concatenate(
            [
                np.full(space.shape[1], weight, dtype=np.float32)
                for weight, space in zip(self.weights, self.spaces, strict=True)
            ]
        )
        self.axes, self.projected = principal_projection(
            index.stacked, columns=self.column_weights != 0
        )
        # The recipes whose hints can be read backwards (they have hint lists), and those
        # read through their space too.
        self.readable = np.array([bool(p.lists) for p in index.proxies], dtype=bool)
        self.spaced = np.array([w > 0 for w in self.weights[1:]], dtype=bool)
        self.prior = index.eligible.astype(np.float32)
        # Where the prior moves on an everyday hat (`hatbot.hat_kind`): to the common words.
        self.everyday_shift = params.prior_weight * (index.common.astype(np.float32) - self.prior)
        self.popularity = popularity(index)
        # A guess's prior and popularity terms.
        self.base: NDArray[np.float32] = np.float32(params.prior_weight) * self.prior + (
            np.float32(0.02) * self.popularity
        )
        # Through a weak proxy: the memo held by the guesser does not hold the guesser, so
        # a replaced model is freed by reference counting (the service freezes the garbage
        # collector's view of the heap after a load; see `hatbot.serving`).
        self._rounds = lru_cache(maxsize=ROUNDS_CACHED)(
            functools.partial(Guesser._rounds_uncached, weakref.proxy(self))
        )
        self.fallback = common_words(index)

    def guess(
        self,
        hints: Sequence[str],
        n_words: int,
        everyday: float = 0.0,
        mode: Criteria | None = None,
    ) -> list[str]:
        """Up to `n_words` guesses for the hints, none made already for a shorter prefix;
        `everyday`: the probability that the hat holds everyday words rather than the
        corpus's mid-frequency ones (`hatbot.hat_kind`), in tenths; `mode`: the host's
        checking mode if known (`hatbot.host_mode`), which decides whether a variant of a
        guess is worth a guess of its own."""
        words = [normalise(h) for h in hints]
        words = [w for w in dict.fromkeys(words) if w]
        if not words:
            return [self.index.words[i] for i in self.fallback[:n_words]]
        return list(self._rounds(tuple(words), n_words, round(everyday, 1), mode)[-1])

    def _rounds_uncached(
        self,
        words: tuple[str, ...],
        n_words: int,
        everyday: float = 0.0,
        mode: Criteria | None = None,
    ) -> tuple[Guesses, ...]:
        """The guesses for each prefix of the hints, in order: those for the whole list are
        the answer, the earlier ones (the host asked for them and they missed) are excluded.

        Memoised per process (`self._rounds`): the host asks for the prefixes one after
        another, so each answer reuses the earlier prefixes' rounds. The cache only saves
        time: a round is a pure function of its hints, the same computed afresh.
        """
        earlier = self._rounds(words[:-1], n_words, everyday, mode) if len(words) > 1 else ()
        previous = [g for round_ in earlier for g in round_]
        rows, scores = self._prefix_scores(list(words), shortlist=True, everyday=everyday)
        guesses = self._pick(rows, scores, list(words), previous, n_words, mode)
        if len(guesses) < n_words and len(rows) < len(self.index):
            # The shortlist ran out of words the rules allow: score every word.
            rows, scores = self._prefix_scores(list(words), shortlist=False, everyday=everyday)
            guesses = self._pick(rows, scores, list(words), previous, n_words, mode)
        return (*earlier, tuple(guesses))

    def _prefix_scores(
        self, words: list[str], shortlist: bool, everyday: float = 0.0
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
        # The terms that need no vector product: prior and popularity, the reverse lookup,
        # and, when a hint is known, the spaces' density (its weights sum to 1).
        fixed = self.base.copy()
        if everyday:
            fixed += np.float32(everyday) * self.everyday_shift
        spaces = 1.0
        if self.index.proxies:
            matches, fits = self._recipe_matches(words)
            posterior = self._posterior(fits)
            fixed += p.reverse_weight * (posterior @ matches).astype(np.float32)
            spaces -= p.space_gate * float(posterior[~self.spaced].sum())
        if not known:
            return np.arange(n), fixed
        fixed -= np.float32(spaces) * self.density_penalty
        mix = np.array([1.0 / (1.0 + p.hint_decay * j) for j, _ in known], dtype=np.float32)
        mix *= np.float32(spaces) / mix.sum()
        ids = np.array([i for _, i in known], dtype=np.int64)
        # The weighted mean of the hints in each space, side by side like `index.stacked`
        # (times the spaces' share).
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

    def recipe_posterior(self, hints: Sequence[str]) -> dict[str, float]:
        """How much each recipe's hint lists count in a guess for these hints (sums to 1)."""
        words = [w for w in dict.fromkeys(normalise(h) for h in hints) if w]
        posterior = self._posterior(self._recipe_matches(words)[1])
        return {p.name: float(w) for p, w in zip(self.index.proxies, posterior, strict=True)}

    def _recipe_matches(self, words: list[str]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """For each recipe (rows) and candidate (columns), the mean over the hints and the
        recipe's models (its proxy and twins) of 1 / (1 + position_decay |position in the
        model's explanation of the candidate - position here|); and each recipe's fit, the best
        candidate's mean over the hints in the recipe's best-matching model (a recipe's
        fit does not depend on how many models of it there are)."""
        size = len(self.index)
        matches = np.zeros((len(self.index.proxies), size), dtype=np.float64)
        fits = np.zeros(len(self.index.proxies), dtype=np.float64)
        for row, proxy in enumerate(self.index.proxies):
            ids = [(j, self.index.ids.get(w, proxy.extra.get(w))) for j, w in enumerate(words)]
            known = [(j, i) for j, i in ids if i is not None]
            if not known:
                continue
            for lists in proxy.lists:
                found = [lists.explained_by(i) for _, i in known]
                model = np.bincount(
                    np.concatenate([targets for targets, _ in found]),
                    weights=np.concatenate(
                        [
                            1.0 / (1.0 + self.params.position_decay * np.abs(positions - j))
                            for (j, _), (_, positions) in zip(known, found, strict=True)
                        ]
                    ),
                    minlength=size,
                ) / len(words)
                matches[row] += model / len(proxy.lists)
                fits[row] = max(fits[row], float(model.max(initial=0.0)))
        return matches, fits

    def _posterior(self, fits: NDArray[np.float64]) -> NDArray[np.float64]:
        """Each recipe's weight: exp(recipe_sharpness * (its fit - the best recipe's)),
        normalised over the recipes with hint lists. Hints no recipe explains leave the
        weights equal."""
        readable = self.readable
        if not readable.any():
            return np.zeros(len(fits), dtype=np.float64)
        best = fits[readable].max()
        weights = np.where(readable, np.exp(self.params.recipe_sharpness * (fits - best)), 0.0)
        return np.asarray(weights / weights.sum(), dtype=np.float64)

    def _pick(
        self,
        rows: NDArray[np.int64],
        scores: NDArray[np.float32],
        hints: list[str],
        previous: list[str],
        n_words: int,
        mode: Criteria | None = None,
    ) -> list[str]:
        """The best-scored words among `rows` the rules allow and no earlier guess covers,
        by the host's check in `mode` (None: either, so a variant of a guess waits)."""
        picked: list[str] = []
        depth = 8 * n_words + 4 * len(previous) + 4 * len(hints)
        # `too_close` and `soft_match` need the word inside a hint or an earlier guess, or
        # (`too_close`) at most 2 edits from a hint: quick checks first, one C call each.
        hinted, guessed = "\n".join(hints), "\n".join(previous)
        # The hard host deleted every hint sharing the target's stem.
        hint_stems = {self.index.stem(h) for h in hints} if mode == "hard" else set()
        targets: list[str] = []  # soft host: the words allowed, best first (`_cover`)
        while True:
            for i in self.index.top(scores, depth):
                word = self.index.words[int(rows[i])]
                if word in hinted or process.extractOne(
                    word, hints, scorer=Levenshtein.distance, score_cutoff=2
                ):
                    continue
                if mode == "hard":
                    # Only the exact word wins: a variant of a guess is a guess of its own.
                    if word in previous or word in picked or self.index.stem(word) in hint_stems:
                        continue
                elif (word in guessed and any(soft_match(word, g) for g in previous)) or any(
                    soft_match(word, g) for g in picked
                ):
                    continue  # a guess made (and missed) or picked already covers it
                elif mode == "soft":
                    targets.append(word)  # covered below, by as few guesses as it takes
                    continue
                elif mode is None and any(soft_match(g, word) for g in picked):
                    continue  # either mode: a variant of a better guess waits
                picked.append(word)
                if len(picked) == n_words:
                    return picked
            if mode == "soft":
                picked = self._cover(targets, n_words)
                if len(picked) == n_words:
                    return picked
            if depth >= len(scores):
                return picked
            depth, picked, targets = depth * 4, [], []

    def _cover(self, targets: list[str], n_words: int) -> list[str]:
        """At most `n_words` guesses that a soft host counts for as many of `targets` (best
        first) as it can: each covers the best target left, and of the words that do
        (the target and the vocabulary's variants of it: `drivers` for `driver` also wins
        for `drive` and `river`), the one that covers the best-ranked others too."""
        picked: list[str] = []
        rank = {t: r for r, t in enumerate(targets)}
        left = dict.fromkeys(targets)  # the targets no guess covers yet, best first
        for word in targets:
            if word not in left:
                continue
            best: list[str] = []
            guess = word
            for option in (word, *self._variants.get(word, ())):
                covered = [t for t in left if soft_match(t, option)]
                # The better option covers better-ranked targets (lists of targets in rank
                # order compare by their first difference; covering more breaks a tie).
                if [-rank[t] for t in covered] > [-rank[t] for t in best]:
                    guess, best = option, covered
            for t in best:
                del left[t]
            picked.append(guess)
            if len(picked) == n_words:
                break
        return picked

    @functools.cached_property
    def _variants(self) -> dict[str, list[str]]:
        """For each vocabulary word, the longer vocabulary words the soft check counts as
        it (each contains it and is at most two letters longer), most frequent first;
        built once, at the first soft-host guess (the service's warm-up makes one; 0.12 s
        on the full model, 1.6 MB)."""
        variants: dict[str, list[str]] = {}
        ids = self.index.ids
        for longer in self.index.words:
            # The check wants the word inside `longer` and fewer than 3 edits away, so
            # only its substrings up to two letters shorter can qualify.
            size = len(longer)
            parts = {
                longer[i : i + n]
                for n in range(max(1, size - 2), size)
                for i in range(size - n + 1)
            }
            for part in parts:
                if part in ids and soft_match(part, longer):
                    variants.setdefault(part, []).append(longer)
        return variants
