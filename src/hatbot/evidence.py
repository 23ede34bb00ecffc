"""A running estimate from a bounded stream of yes/no observations, per process.

`hatbot.hat_kind` (is the hat an everyday one?) and `hatbot.host_mode` (does the host play
soft?) each watch one bit of the host's calls. `Evidence` keeps the last `memory` bits
(never what they were read from) and turns them into the posterior probability of the
hypothesis, given how often the bit is set under it and under the alternative.
"""

from __future__ import annotations

import math
import threading
from collections import deque


class Evidence:
    """The last `memory` bits seen and the probability of the hypothesis they bear on;
    `memory` 0 turns the estimate off (nothing is kept)."""

    def __init__(self, memory: int, prior_odds: float, rate_if: float, rate_else: float) -> None:
        self.memory = memory
        self.prior_odds = prior_odds
        self.rate_if = rate_if
        self.rate_else = rate_else
        self._bits: deque[bool] = deque(maxlen=max(memory, 1))
        self._lock = threading.Lock()

    def record(self, bit: bool) -> None:
        if self.memory > 0:
            with self._lock:
                self._bits.append(bit)

    @property
    def observed(self) -> int:
        return len(self._bits) if self.memory > 0 else 0

    def probability(self) -> float | None:
        """The posterior probability of the hypothesis, or None before any bit."""
        with self._lock:
            seen, set_ = len(self._bits), sum(self._bits)
        if self.memory <= 0 or seen == 0:
            return None
        log_odds = (
            math.log(self.prior_odds)
            + set_ * math.log(self.rate_if / self.rate_else)
            + (seen - set_) * math.log((1 - self.rate_if) / (1 - self.rate_else))
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, log_odds))))

    def reset(self) -> None:
        with self._lock:
            self._bits.clear()
