"""Which of the host's modes is in play, learnt from the hints it passes on.

The hard host deletes every hint WordNet does not know; the soft host keeps them
(docs/GAME.md, "How the host cleans an explanation"). A hint that the artifact marks as
unknown to WordNet is therefore evidence of a soft host, and a long run of hints without
one is evidence of a hard host. `HostMode` turns the last `memory` hints seen (each the
newest hint of a host's guess call, so every hint counts once) into the probability that
the host plays soft. The guesser picks its guesses for the mode it is sure of, and the
explainer, once sure of a soft host, gives hints only the soft host keeps
(docs/STRATEGY.md, "The host's mode").

Only whether each hint was a WordNet word is kept (`hatbot.evidence`: the last `memory`
bits), never the hint.
"""

from __future__ import annotations

from hatbot.evidence import Evidence
from hatbot.game.rules import Criteria
from hatbot.index import WordIndex

# How often a hint the soft host passes on is a vocabulary word WordNet does not know
# (13% on the tune hat against the five-bot field, the notebook bots most often), and
# how often the hard host seems to pass one (never measured: only where the artifact's
# WordNet facts and the host's differ). docs/STRATEGY.md, "The host's mode".
SOFT_RATE = 0.1
HARD_RATE = 0.001
# How sure the strategy must be of a mode before it plays for it: the guesser picks its
# guesses for the likelier mode beyond GUESS_CERTAINTY; the explainer drops the hard
# host's rules only beyond EXPLAIN_CERTAINTY, as a hint the hard host deletes loses an
# attempt.
GUESS_CERTAINTY = 0.9
EXPLAIN_CERTAINTY = 0.999


class HostMode:
    """A running estimate, per process, of the probability that the host plays soft."""

    def __init__(self, memory: int = 50) -> None:
        # Even prior odds: tournaments have used both modes.
        self._evidence = Evidence(memory, 1.0, SOFT_RATE, HARD_RATE)

    def observe(self, index: WordIndex, hint: str) -> None:
        """Count one hint the host passed on (whether WordNet knows it; not the hint). A
        word outside the vocabulary says nothing: the artifact has no WordNet fact for it."""
        i = index.ids.get(hint)
        if i is not None:
            self._evidence.record(not bool(index.in_wordnet[i]))

    @property
    def observed(self) -> int:
        return self._evidence.observed

    def soft(self) -> float:
        """The probability that the host plays soft (0.5 before any hint)."""
        probability = self._evidence.probability()
        return 0.5 if probability is None else probability

    def played(self, certainty: float) -> Criteria | None:
        """The mode the host plays, "soft" or "hard", if its probability is at least
        `certainty`; None while neither is."""
        soft = self.soft()
        if soft >= certainty:
            return "soft"
        if 1.0 - soft >= certainty:
            return "hard"
        return None

    def reset(self) -> None:
        self._evidence.reset()
