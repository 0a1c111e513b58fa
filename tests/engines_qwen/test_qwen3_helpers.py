"""Loop spotting, split points, language names, checkpoint layouts and the retry penalty of the qwen3 engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from callscribe.engines import base
from callscribe.engines.base import SAMPLE_RATE, EngineError
from callscribe.engines.qwen3_aligner import to_words
from callscribe.engines.qwen3_lang import language_code, language_name
from callscribe.engines.qwen3_load import HF, QWEN_ASR, folder_layout, layout_of, model_layout
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


def _folder(tmp_path: Path, name: str, config: dict) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def test_checkpoint_layouts_are_told_apart_by_their_config(tmp_path: Path) -> None:
    original = _folder(tmp_path, "orig", {"model_type": "qwen3_asr", "thinker_config": {"audio_config": {}}})
    native = _folder(tmp_path, "hf", {"model_type": "qwen3_asr", "audio_config": {}, "text_config": {}})
    assert folder_layout(original) == QWEN_ASR and model_layout(str(original)) == QWEN_ASR
    assert folder_layout(native) == HF and model_layout(str(native)) == HF
    # Hub ids not on this machine: the -hf suffix names the transformers-native conversion.
    assert model_layout("nobody/Qwen3-ASR-1.7B-hf") == HF
    assert model_layout("nobody/Qwen3-ASR-1.7B") == QWEN_ASR
    assert layout_of({"model_type": "whisper", "audio_config": {}, "text_config": {}}) is None


def test_a_folder_of_neither_layout_gets_one_clear_error(tmp_path: Path) -> None:
    half = _folder(tmp_path, "half", {"model_type": "qwen3_asr", "audio_config": {}})
    with pytest.raises(EngineError, match=r"half is not a Qwen3-ASR checkpoint.*'qwen3_asr' and audio_config"):
        folder_layout(half)
    other = _folder(tmp_path, "other", {"model_type": "whisper"})
    with pytest.raises(EngineError, match=r"model_type 'whisper' and no \*_config sections"):
        base.create("qwen3", model=str(other))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(EngineError, match=r"cannot read .*broken/config\.json"):
        folder_layout(broken)


def test_the_retry_penalty_spares_the_prompt() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from callscribe.engines.qwen3_logits import generated_only_penalty

    scores = torch.tensor([[2.0, -2.0, 2.0, -2.0, 2.0, 1.0]])
    prompt = torch.tensor([[0, 1]])  # say, hotword tokens in the system context
    penalty = generated_only_penalty(2.0)
    assert torch.equal(penalty(prompt, scores.clone()), scores), "nothing generated yet: nothing penalised"
    after = penalty(torch.tensor([[0, 1, 2, 3, 2]]), scores.clone())
    assert after.tolist() == [[2.0, -2.0, 1.0, -4.0, 2.0, 1.0]]  # 2 and 3 penalised; prompt tokens 0, 1 are not
    explicit = generated_only_penalty(2.0, prompt_length=3)
    assert explicit(torch.tensor([[0, 1, 4, 0]]), scores.clone()).tolist() == [[1.0, -2.0, 2.0, -2.0, 2.0, 1.0]]
    batch = generated_only_penalty(1.5)
    batch(torch.tensor([[0, 1], [5, 5]]), torch.zeros(2, 6))
    rows = batch(torch.tensor([[0, 1, 4], [5, 5, 0]]), torch.full((2, 6), 3.0))
    assert rows[0].tolist() == [3.0, 3.0, 3.0, 3.0, 2.0, 3.0] and rows[1].tolist() == [2.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    with pytest.raises(ValueError, match="positive"):
        generated_only_penalty(0.0)


def test_aligner_items_become_ordered_words_inside_the_clip() -> None:
    items = [
        {"text": "hello", "start_time": 0.2, "end_time": 0.5},
        {"text": "there", "start_time": 0.1, "end_time": 0.9},  # out of order: pulled to the previous start
        {"text": "late", "start_time": 3.0, "end_time": 4.0},  # past the clip: clamped to its end
    ]
    words = to_words(items, 2.0)
    assert [(w.text, w.start, w.end) for w in words] == [("hello", 0.2, 0.5), ("there", 0.2, 0.9), ("late", 2.0, 2.0)]
