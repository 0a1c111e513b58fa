"""Loop spotting, split points and language names used by the qwen3 engine."""

from __future__ import annotations

import numpy as np
import pytest

from callscribe.engines.base import SAMPLE_RATE, EngineError
from callscribe.engines.qwen3_lang import language_code, language_name
from callscribe.engines.qwen3_recover import LOOP_MIN_REPEATS, find_loop, find_repeat_run, quietest_split


def test_a_runaway_ngram_loop_is_found_and_trimmed_to_one_pass() -> None:
    text = [5, 9, 2, 7, 3]
    tokens = text + [11, 12, 13] * 10 + [11]
    loop = find_loop(tokens)
    assert loop is not None and loop.period == 3 and loop.start == len(text)
    assert tokens[: loop.keep()] == [*text, 11, 12, 13]
    held = find_loop([*text] + [4] * 40)
    assert held is not None and held.period == 1 and held.start == len(text)


def test_ordinary_repeats_are_not_a_loop() -> None:
    assert find_loop([1, 2, 3, 4, 5, 6, 7, 8]) is None
    assert find_loop([8, 9] * (LOOP_MIN_REPEATS - 1)) is None  # "no, no, no" is speech
    assert find_loop([]) is None
    assert find_loop([3, 4] * 20 + [5]) is None, "a loop the model escaped from is not a runaway"


def test_split_lands_in_the_quiet_gap() -> None:
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.3, SAMPLE_RATE * 6).astype(np.float32)
    gap = slice(int(SAMPLE_RATE * 3.8), int(SAMPLE_RATE * 4.1))
    audio[gap] *= 0.001
    cut = quietest_split(audio)
    assert gap.start <= cut <= gap.stop
    loud_edges = audio.copy()
    loud_edges[: SAMPLE_RATE // 2] = 0.0  # silence outside the middle half is not used
    assert SAMPLE_RATE * 1.5 <= quietest_split(loud_edges) <= SAMPLE_RATE * 4.5
    assert quietest_split(np.zeros(100, dtype=np.float32)) == 50


def test_language_names() -> None:
    assert language_name("zh") == "Chinese"
    assert language_name("yue") == "Cantonese"
    assert language_name("EN") == "English"
    assert language_name("Japanese") == "Japanese"
    assert language_name(None) is None and language_name(" ") is None
    with pytest.raises(EngineError, match="'tlh' is not supported"):
        language_name("tlh")
    assert language_code("Chinese,English") == "zh"
    assert language_code("Cantonese") == "yue"
    assert language_code("") is None and language_code("Klingon") is None


def test_repeat_runs_are_found_anywhere_not_only_at_the_end() -> None:
    speech = list(range(100, 120))
    looped = speech + [7, 8] * 9 + [42, 43]  # loops, then escapes: find_loop misses it, find_repeat_run does not
    assert find_loop(looped) is None
    run = find_repeat_run(looped)
    assert run is not None and run.start == len(speech) and run.period == 2 and run.repeats == 9
    assert find_repeat_run(speech) is None
    assert find_repeat_run([8, 9] * (LOOP_MIN_REPEATS - 1) + speech) is None  # "no, no, no" is speech
