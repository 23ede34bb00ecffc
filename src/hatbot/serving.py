"""The model being served, without HTTP: one loaded artifact answering explain and guess, and
the manager that follows the store's pointer and swaps models without dropping a request.

`ServedModel` owns everything between an artifact folder and an answer: loading it, deciding
whether its precomputed explanation table can be trusted (it must equal what this code's
strategy says), warming it up, releasing the twins' pages afterwards, and answering from
the table or live. Words reach it already read as the host reads them
(`hatbot.game.rules.normalise`, applied once by the route layer).

`ModelManager` owns which `ServedModel` serves: it re-reads the pointer every
`reload_interval` seconds, loads a new version off the event loop, refuses a broken one
(the old model keeps serving), retries a refused one only when its folder changes, and says
what a trainer is preparing while no model is loaded (`hatbot.progress`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError

from hatbot import progress
from hatbot.config import Settings
from hatbot.game.rules import CRITERIA, Criteria, clean_explanation
from hatbot.hat_kind import HatKind
from hatbot.host_mode import HostMode
from hatbot.index import EXPLANATION_DEPTH, WordIndex
from hatbot.metrics import Metrics
from hatbot.store import ModelStore
from hatbot.strategy import Strategy

log = logging.getLogger("hatbot")
# What a pointer may hold and still be logged as it is; anything else is logged as a
# truncated repr, so whoever can write the store cannot forge log lines (newlines, NULs).
_PLAIN = re.compile(r"[A-Za-z0-9._-]{1,128}")
SHOWN_CHARACTERS = 80
# How long a read of the trainer's progress file is reused: a flood of requests to a
# service without a model must not become a flood of file reads.
PROGRESS_TTL = 1.0
# A progress file is another process's output: its fields are checked before they are shown.
_PROGRESS = TypeAdapter(progress.Progress)


def shown(text: str) -> str:
    """`text` safe for a log line: as it is when it looks like a version name, else its repr
    cut to SHOWN_CHARACTERS characters."""
    if _PLAIN.fullmatch(text):
        return text
    cut = text[:SHOWN_CHARACTERS]
    return repr(cut) + ("..." if len(text) > len(cut) else "")


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\x00`): one log line, whatever it holds."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class WordReading:
    """How the model read one input word: what it was given, what the host's cleaning made
    of it, whether the vocabulary holds it, and what stood in for it if not."""

    given: str
    read_as: str
    known: bool
    # For an explained word the vocabulary lacks: the closest spelling explained instead.
    closest: str | None = None
    # For a hint: False when it was a repeat, or beyond the hints a guess plays.
    played: bool = True
    note: str = ""

    @property
    def rewritten(self) -> bool:
        return self.given != self.read_as


@dataclass(frozen=True)
class ServedModel:
    """A loaded, warmed-up model: what a request holds on to while it is answered.

    `precomputed`: the artifact's explanation table agrees with this code's strategy, so
    explanations are looked up in it rather than computed.
    """

    index: WordIndex
    strategy: Strategy
    precomputed: bool = False
    loaded_at: float = field(default_factory=time.time, compare=False)

    @classmethod
    def load(
        cls, folder: Path, hat: HatKind | None = None, mode: HostMode | None = None
    ) -> ServedModel:
        """Load an artifact folder, check its explanation table, warm it up with a guess
        for a host of either mode and one for a soft host, then drop the twins' pages the
        checks read (a live explanation maps them back). `hat` and `mode`: the process's
        estimates of the hat's kind and the host's mode, kept across models (the checks'
        words do not count towards them)."""
        index = WordIndex(Path(folder))
        strategy = Strategy(index, hat=HatKind(memory=0), mode=HostMode(memory=0))
        precomputed = table_agrees(index, strategy)
        if index.explanations is None:
            log.info("model %s has no precomputed explanations: explaining live", index.version)
        elif not precomputed:
            log.warning(
                "model %s: the precomputed explanations differ from this code's strategy; "
                "explaining live",
                index.version,
            )
        probe = index.words[min(len(index) - 1, 100)]
        hints = strategy.explain(probe, 5)[:2] or [probe]
        strategy.guess(hints, 5)
        # A soft host's guesses read the vocabulary's variants, built once (~0.1 s).
        strategy.guesser.guess(hints, 5, mode="soft")
        for proxy in index.proxies:
            for twin in proxy.twins:
                twin.release()
        strategy.hat = hat if hat is not None else HatKind()
        strategy.mode = mode if mode is not None else HostMode()
        return cls(index, strategy, precomputed)

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def criteria(self) -> list[Criteria]:
        """The host modes every explanation of this model survives."""
        return self.strategy.explain_criteria

    @cached_property
    def trained_at(self) -> float:
        """When the model was made (Unix time): the manifest's `trained_at` when it has one,
        else the newest modification time of the artifact's files (the manifest itself is
        left out: the evaluation rewrites it later)."""
        stamp = self.index.manifest.get("trained_at")
        if isinstance(stamp, int | float) and not isinstance(stamp, bool):
            return float(stamp)
        times = []
        for name in self.index.manifest.get("files", {}) or ("vocab.txt",):
            try:
                times.append((self.index.folder / name).stat().st_mtime)
            except OSError:
                continue
        return max(times, default=0.0)

    def knows(self, word: str) -> bool:
        return word in self.index.ids

    def explain(self, word: str, n_words: int, observe: bool = True) -> list[str]:
        """Hints for a word read as the host reads it: from the precomputed table when it
        holds the word and `n_words` is within its depth, else computed now. With
        `observe` (the host's calls), the word counts towards the hat's kind. The table holds
        hints for either mode: for a host known to play soft they are computed now."""
        table = self.precomputed and not self.strategy.plays_soft
        words = self.index.explanation(word, n_words) if table else None
        if words is None:
            return self.strategy.explain(word, n_words, observe)
        if observe:
            self.strategy.observe(word)
        return words

    def guess(self, hints: list[str], n_words: int, observe: bool = True) -> list[str]:
        """Guesses for hints read as the host reads them (distinct, in order). With `observe`
        (the host's calls), the newest hint counts towards the host's mode."""
        return self.strategy.guess(hints, n_words, observe)

    def closest(self, word: str) -> str | None:
        """The vocabulary word the explainer uses in place of `word` (itself if known)."""
        i = self.strategy.closest_known(word)
        return None if i is None else self.index.words[i]

    def hint_modes(self, word: str, hints: list[str]) -> list[list[Criteria]]:
        """For each hint, the host modes whose cleaning keeps it as a clue for `word` (the
        rules module's own check, with the artifact's stems and WordNet flags)."""
        return [
            [c for c in CRITERIA if clean_explanation(word, [hint], 1, c, self.index)]
            for hint in hints
        ]

    def read_word(self, given: str, word: str) -> WordReading:
        """How an explained word was read (`word`: `given` after the host's cleaning)."""
        known = self.knows(word)
        closest = None if known else self.closest(word)
        notes = []
        if given != word:
            notes.append(f"read as {word!r}: the host keeps letters only, lowercased")
        if not known:
            notes.append(
                f"unknown to the model: explained as its closest spelling {closest!r}"
                if closest
                else "unknown to the model, and no spelling is close: common words instead"
            )
        return WordReading(given, word, known, closest, note="; ".join(notes))

    def read_hints(self, given: list[str], words: list[str], played: int) -> list[WordReading]:
        """How each hint was read: `words[i]` is `given[i]` cleaned; the first `played`
        distinct ones are played, in order."""
        seen: set[str] = set()
        readings = []
        for raw, word in zip(given, words, strict=True):
            notes = []
            if raw != word:
                notes.append(f"read as {word!r}")
            counts = word not in seen and len(seen) < played
            if word in seen:
                notes.append("a repeat: counted once")
            elif not counts:
                notes.append(f"beyond the first {played} distinct hints: not played")
            seen.add(word)
            known = self.knows(word)
            if not known and counts:
                notes.append("unknown to the model: it only keeps guesses away from it")
            readings.append(WordReading(raw, word, known, played=counts, note="; ".join(notes)))
        return readings


def table_agrees(index: WordIndex, strategy: Strategy, samples: int = 3) -> bool:
    """True when the precomputed explanations of a few words (spread over the table) equal
    what the running strategy says for them: an artifact exported by an older strategy
    is then served live, never with stale explanations beside new guesses."""
    table = index.explanations
    if table is None or len(table) == 0:
        return False
    explained = np.flatnonzero(table.rows >= 0)
    picks = explained[np.linspace(0, len(explained) - 1, samples).astype(np.int64)]
    for i in dict.fromkeys(int(i) for i in picks):
        word = index.words[i]
        if index.explanation(word, EXPLANATION_DEPTH) != strategy.explain(word, EXPLANATION_DEPTH):
            return False
    return True


def manifest_version(folder: Path) -> str | None:
    """The version a folder's manifest names, or None when it cannot be read (the full
    load then says what is wrong)."""
    try:
        version = json.loads((folder / "manifest.json").read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def folder_state(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file and folder of an artifact with its modification time and size: a refused
    version is tried again when this changes (a fixed or replaced folder)."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files, "."]:
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path.relative_to(folder)), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(found))


class ModelManager:
    """Owns the serving model and swaps in a new one when the store's pointer moves.

    A request reads `current` once and keeps that model to the end, so a swap
    never disturbs requests in flight. A broken new artifact is refused with a
    log line and the old model keeps serving; it is tried again only once its
    folder changes.
    """

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.store = ModelStore(settings.model_store)
        self.pointer = settings.model_pointer
        self.interval = settings.reload_interval
        self.metrics = metrics
        self.current: ServedModel | None = None
        # Which kind of hat the host draws from, learnt from its explain calls; one per
        # process, kept across models (hatbot.hat_kind).
        self.hat = HatKind(settings.hat_memory)
        # Which mode the host plays, learnt from the hints of its guess calls; the same
        # (hatbot.host_mode).
        self.mode = HostMode(settings.mode_memory)
        metrics.hat_everyday.set(self.hat.everyday())
        metrics.host_soft.set(self.mode.soft())
        # The version refused last, and its folder's state then.
        self._refused: tuple[str, tuple[tuple[str, int, int], ...]] | None = None
        self._progress: tuple[float, progress.Progress | None] = (-PROGRESS_TTL, None)

    def progress(self) -> progress.Progress | None:
        """What the store's trainer last said it is doing (re-read at most once a second)."""
        read_at, found = self._progress
        now = time.monotonic()
        if now - read_at >= PROGRESS_TTL:
            found = checked(progress.read(self.store.root))
            self._progress = (now, found)
        return found

    def unready_reason(self) -> str:
        """Why nothing is served yet, for a 503's `detail`."""
        found = self.progress()
        if found is None:
            return "no model is loaded yet; retry shortly"
        if found.status == "failed":
            return f"no model yet: training the first one failed: {found.message or 'no reason'}"
        if found.status == "done":
            return "no model yet: the first one is trained and loads shortly; retry shortly"
        return f"no model yet: training the first one, {describe(found)}; retry shortly"

    async def refresh(self) -> None:
        """Load the version the pointer names, if it is not the one serving (or known bad)."""
        try:
            version = self.store.read(self.pointer)
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read the %s pointer: %s", self.pointer, printable(str(exc)))
            return
        serving = self.current.version if self.current else None
        self.metrics.model_pointer_mismatch.set(int(version is not None and version != serving))
        if version is None or version == serving:
            self.metrics.model_refused.set(0)
            return
        try:
            folder: Path | None = self.store.path(version)
        except ValueError:
            folder = None
        state = await asyncio.to_thread(folder_state, folder) if folder else ()
        if self._refused == (version, state):
            self.metrics.model_refused.set(1)  # still refused: its folder has not changed
            return
        if folder is None:
            self._refuse(version, state, f"the {self.pointer} pointer does not name a version")
            return
        named = manifest_version(folder)
        if named is not None and named != version:
            self._refuse(
                version,
                state,
                f"its manifest says version {shown(named)}: a model folder must be named by "
                "its version (copy it under that name and point there)",
            )
            return
        started = time.perf_counter()
        try:
            model = await asyncio.to_thread(ServedModel.load, folder, self.hat, self.mode)
        except Exception as exc:  # whatever breaks a new artifact, the old model keeps serving
            self._refuse(version, state, printable(f"{type(exc).__name__}: {exc}"))
            return
        self._serve(model)
        log.info(
            "serving model %s (%d words), loaded in %.2f s",
            model.version,
            len(model.index),
            time.perf_counter() - started,
        )

    def _refuse(self, version: str, state: tuple[tuple[str, int, int], ...], reason: str) -> None:
        self._refused = (version, state)
        self.metrics.model_load_failures.inc()
        self.metrics.model_refused.set(1)
        serving = self.current.version if self.current else None
        log.error("refused model %s, still serving %s: %s", shown(version), serving, reason)

    def _serve(self, model: ServedModel) -> None:
        self.current = model
        self._refused = None
        # The heap is now mostly long-lived (imports, the model): move it out of the garbage
        # collector's sight, so the collections that requests trigger walk only what they
        # allocate (the Instagram gc.freeze recipe; docs/BENCHMARKS.md measures it). What is
        # frozen is still freed by reference counting: the model holds no cycles.
        gc.collect()
        gc.freeze()
        m = self.metrics
        m.model_loads.inc()
        m.model_info.info({"version": model.version})
        m.model_loaded.set(1)
        m.model_trained.set(model.trained_at)
        m.model_pointer_mismatch.set(0)
        m.model_refused.set(0)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:  # a dead watcher would silently stop all future updates
                log.exception("checking the %s pointer failed", self.pointer)


def checked(found: progress.Progress | None) -> progress.Progress | None:
    """A progress snapshot whose fields have their declared types, or None."""
    if found is None:
        return None
    try:
        return _PROGRESS.validate_python(found.as_dict())
    except ValidationError:
        return None


def describe(found: progress.Progress) -> str:
    """A trainer's progress in a few words: `stage train 4/9 (fastText own)`."""
    text = f"stage {found.stage or '?'}"
    if found.of:
        text += f" {found.done}/{found.of}"
    if found.step:
        text += f" ({found.step})"
    return text


def readiness(models: ModelManager) -> dict[str, Any]:
    """The body of a 503 `/readyz`: `not ready`, or what the trainer is doing."""
    found = models.progress()
    if found is None:
        return {"status": "not ready"}
    body: dict[str, Any] = found.as_dict()
    if found.status == "done":
        body["status"] = "not ready"  # trained, but not loaded here yet
    body["detail"] = models.unready_reason()
    return body
