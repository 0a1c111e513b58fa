"""The streaming silero speech map: finds real speech, ignores silence and noise, streams exactly."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest
from audio_samples import real_speech, tone, write_audio

from callscribe.audio import SAMPLE_RATE, SpeechMap, prepare, prepare_array
from callscribe.model import Span
from callscribe.options import Options


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return real_speech()


def _speech_seconds(spans: list[Span]) -> float:
    return sum(s.duration for s in spans)


def test_finds_speech_in_real_speech(speech: np.ndarray) -> None:
    prepared = prepare_array(speech, SAMPLE_RATE, Options())
    spans = prepared.speech[0]
    assert spans
    assert _speech_seconds(spans) > 0.6 * len(speech) / SAMPLE_RATE
    assert all(0.0 <= s.start < s.end <= prepared.audio.duration for s in spans)
    assert all(a.end < b.start for a, b in itertools.pairwise(spans))
    assert set(prepared.timings) >= {"decode", "vad"}
    assert all(v >= 0 for v in prepared.timings.values())


@pytest.mark.parametrize("kind", ["silence", "noise", "tone", "hum"])
def test_no_speech_in_silence_noise_or_tones(kind: str) -> None:
    n = 10 * SAMPLE_RATE
    rng = np.random.default_rng(11)
    samples = {
        "silence": np.zeros(n, dtype=np.float32),
        "noise": (0.05 * rng.standard_normal(n)).astype(np.float32),
        "tone": tone(1_000.0, 10.0, SAMPLE_RATE),
        "hum": tone(50.0, 10.0, SAMPLE_RATE) + tone(150.0, 10.0, SAMPLE_RATE, level=0.1),
    }[kind]
    assert prepare_array(samples, SAMPLE_RATE, Options()).speech == {0: []}


def test_block_size_does_not_change_the_result(speech: np.ndarray) -> None:
    whole = SpeechMap(1)
    whole(speech[np.newaxis, :])
    pieces = SpeechMap(1)
    for first in range(0, len(speech), 777):  # blocks that do not line up with the 512-sample windows
        pieces(speech[np.newaxis, first : first + 777])
    assert whole.spans() == pieces.spans()
    np.testing.assert_allclose(whole.probabilities(0), pieces.probabilities(0), atol=1e-5)
    assert len(whole.probabilities(0)) == -(-len(speech) // 512)


def test_channels_have_their_own_state(speech: np.ndarray) -> None:
    silent = np.zeros_like(speech)
    both = SpeechMap(2)
    both(np.stack([speech, silent]))
    alone = SpeechMap(1)
    alone(speech[np.newaxis, :])
    spans = both.spans()
    assert spans[1] == []
    assert spans[0] == alone.spans()[0]


def test_min_silence_decides_whether_a_pause_splits(speech: np.ndarray) -> None:
    part = speech[: 3 * SAMPLE_RATE]
    gap = np.zeros(round(0.6 * SAMPLE_RATE), dtype=np.float32)
    call = np.concatenate([part, gap, part])
    short = prepare_array(call, SAMPLE_RATE, Options(min_silence_s=0.3)).speech[0]
    long = prepare_array(call, SAMPLE_RATE, Options(min_silence_s=1.5)).speech[0]
    boundary = 3.0 + 0.3
    assert any(s.end <= boundary for s in short)
    assert any(s.start >= boundary for s in short)
    assert not any(s.start < boundary - 0.2 and s.end > boundary + 0.2 for s in short)
    assert any(s.start < boundary - 0.2 and s.end > boundary + 0.2 for s in long)
    assert len(long) < len(short)


def test_threshold_is_checked() -> None:
    with pytest.raises(ValueError, match="threshold"):
        SpeechMap(1, threshold=1.5)


def test_prepare_runs_vad_in_the_decode_pass_on_every_channel(tmp_path: Path, speech: np.ndarray) -> None:
    quiet = np.zeros_like(speech)
    path = write_audio(tmp_path / "two.wav", np.stack([quiet, speech]), SAMPLE_RATE, "pcm_s16le")
    blocks: list[tuple[int, ...]] = []
    with prepare(path, Options(), consumers=[lambda block: blocks.append(block.shape)]) as prepared:
        assert sum(shape[1] for shape in blocks) == prepared.audio.frames
        assert {shape[0] for shape in blocks} == {2}
        assert prepared.speech[0] == []
        assert prepared.speech[1] == prepare_array(speech, SAMPLE_RATE, Options()).speech[0]
        assert prepared.speech_map is not None
        assert len(prepared.speech_map.probabilities(1)) == -(-len(speech) // 512)


def test_one_session_serves_several_threads(tmp_path: Path, speech: np.ndarray) -> None:
    path = write_audio(tmp_path / "shared.wav", speech, SAMPLE_RATE, "pcm_s16le")
    results: list[dict[int, list[Span]]] = []

    def work() -> None:
        with prepare(path, Options()) as prepared:
            results.append(prepared.speech)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert results[0] == results[1] == results[2]
