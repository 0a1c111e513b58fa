"""Spotting and repairing Qwen3-ASR's two known failure modes: a runaway n-gram loop and a cut-off output.

Pure numpy / Python, so it is cheap to test and to reuse by other engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from callscribe.engines.base import SAMPLE_RATE

# A loop is a run of one n-gram (1..LOOP_MAX_N tokens) repeated back to back at least LOOP_MIN_REPEATS times and
# covering at least LOOP_MIN_TOKENS tokens. Real speech repeats a word a few times ("no, no, no"), not a dozen.
LOOP_MAX_N = 24
LOOP_MIN_REPEATS = 6
LOOP_MIN_TOKENS = 16
# Where a clip may be cut for a split retry: the quietest 100 ms window in its middle half.
QUIET_WINDOW_S = 0.1
SPLIT_SEARCH = (0.25, 0.75)


@dataclass(frozen=True)
class Loop:
    """``tokens[start:]`` is ``period`` tokens repeated ``repeats`` times (possibly with a partial tail)."""

    start: int
    period: int
    repeats: int

    def keep(self) -> int:
        """How many leading tokens to keep: the text before the loop and one pass of it."""
        return self.start + self.period


def find_loop(tokens: Sequence[int]) -> Loop | None:
    """The longest back-to-back repetition that runs to the end of ``tokens``, if it looks like a runaway loop."""
    ids = list(tokens)
    n = len(ids)
    best: Loop | None = None
    for period in range(1, min(LOOP_MAX_N, n // 2) + 1):
        # Walk back from the end while each token equals the one a period later.
        start = n - period
        while start > 0 and ids[start - 1] == ids[start - 1 + period]:
            start -= 1
        span = n - start
        repeats = span // period
        if repeats >= LOOP_MIN_REPEATS and span >= LOOP_MIN_TOKENS and (best is None or span > n - best.start):
            best = Loop(start=start, period=period, repeats=repeats)
    return best


def find_repeat_run(tokens: Sequence[int]) -> Loop | None:
    """The longest loop-like repetition anywhere in ``tokens`` (a decoder may loop, then escape and go on).

    ``Loop.start`` is where the run begins; the run covers ``period * repeats`` tokens or a little more.
    """
    ids = list(tokens)
    n = len(ids)
    best: Loop | None = None
    best_len = 0
    for period in range(1, min(LOOP_MAX_N, n // 2) + 1):
        run = 0  # consecutive positions j with ids[j] == ids[j + period]
        for j in range(n - period):
            run = run + 1 if ids[j] == ids[j + period] else 0
            length = run + period  # ids[j - run + 1 : j + period + 1] repeats with this period
            if run and length // period >= LOOP_MIN_REPEATS and length >= LOOP_MIN_TOKENS and length > best_len:
                best, best_len = Loop(start=j - run + 1, period=period, repeats=length // period), length
    return best


def quietest_split(audio: np.ndarray) -> int:
    """The sample index of the quietest 100 ms stretch in the middle half of ``audio`` (its centre)."""
    n = len(audio)
    win = max(1, int(QUIET_WINDOW_S * SAMPLE_RATE))
    lo, hi = int(n * SPLIT_SEARCH[0]), int(n * SPLIT_SEARCH[1])
    if hi - lo <= win:
        return n // 2
    energy = np.convolve(np.square(audio[lo:hi], dtype=np.float64), np.ones(win), mode="valid")
    return lo + int(np.argmin(energy)) + win // 2
