"""Bad input gives one clear line naming the file and the cause; damaged but usable input is accepted."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from audio_samples import real_speech, write_audio

from callscribe.audio import SAMPLE_RATE, AudioError, decode, is_audio, prepare
from callscribe.options import Options


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return real_speech()


def _error(path: Path, **kwargs: object) -> AudioError:
    with pytest.raises(AudioError) as info:
        decode(path, **kwargs)  # type: ignore[arg-type]
    err = info.value
    assert str(err).startswith(f"{path}: ")
    assert "\n" not in str(err)
    assert (err.path, err.stage) == (str(path), "decode")
    assert err.cause and err.cause in str(err)
    return err


def _video_only(path: Path) -> Path:
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            image = np.full((48, 64, 3), i * 20, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _png(path: Path) -> Path:
    with av.open(str(path), mode="w", format="image2") as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "rgb24"
        image = np.zeros((32, 32, 3), dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "nope.wav").cause


def test_directory_passed_as_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "calls.wav"
    folder.mkdir()
    assert "directory" in _error(folder).cause


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path, speech: np.ndarray) -> None:
    path = write_audio(tmp_path / "locked.wav", speech, SAMPLE_RATE, "pcm_s16le")
    path.chmod(0)
    try:
        assert "permission" in _error(path).cause
    finally:
        path.chmod(0o644)


def test_zero_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()
    assert "empty" in _error(path).cause


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "call.mp3"
    path.write_text("agent: hello\ncustomer: hi\n" * 50, encoding="utf-8")
    assert not is_audio(path)
    _error(path)


def test_png_image(tmp_path: Path) -> None:
    path = _png(tmp_path / "picture.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert not is_audio(path)
    assert "audio" in _error(path).cause


def test_video_without_audio(tmp_path: Path) -> None:
    path = _video_only(tmp_path / "screen.mp4")
    err = _error(path)
    assert "no audio stream" in err.cause
    assert "video" in err.cause


def test_wav_with_no_frames(tmp_path: Path) -> None:
    path = tmp_path / "nothing.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8_000)
    assert path.stat().st_size > 0
    assert "no audio samples" in _error(path).cause


def test_wav_cut_in_half_keeps_the_first_half_with_a_note(tmp_path: Path, speech: np.ndarray) -> None:
    path = write_audio(tmp_path / "cut.wav", speech, SAMPLE_RATE, "pcm_s16le")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with decode(path) as audio:
        assert audio.duration == pytest.approx(len(speech) / SAMPLE_RATE / 2, abs=0.05)
        assert any("ended early" in note for note in audio.notes)
        np.testing.assert_allclose(audio.read(0, 0, 1.0), speech[:SAMPLE_RATE], atol=1e-4)


def test_mp3_with_garbage_in_the_middle_still_decodes(tmp_path: Path, speech: np.ndarray) -> None:
    path = write_audio(tmp_path / "noisy.mp3", speech, SAMPLE_RATE, "libmp3lame")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with prepare(path, Options()) as prepared:
        assert prepared.audio.duration > 0.8 * len(speech) / SAMPLE_RATE
        assert prepared.speech[0]


def test_m4a_cut_in_half_yields_nothing(tmp_path: Path, speech: np.ndarray) -> None:
    # Without its index (written at the end) an MP4 cut short has no usable audio.
    path = write_audio(tmp_path / "cut.m4a", speech, SAMPLE_RATE, "aac")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _error(path)


def test_header_only_flac_yields_nothing(tmp_path: Path, speech: np.ndarray) -> None:
    path = write_audio(tmp_path / "head.flac", speech, SAMPLE_RATE, "flac")
    path.write_bytes(path.read_bytes()[:200])
    _error(path)


def test_longer_than_max_duration(tmp_path: Path) -> None:
    silence = np.zeros(10 * 8_000, dtype=np.float32)
    path = write_audio(tmp_path / "long.wav", silence, 8_000, "pcm_s16le")
    err = _error(path, max_duration=4)
    assert err.cause == "call is 10.0 s long, over --max-duration 4 s"
    with decode(path, max_duration=10.5) as audio:
        assert audio.duration == pytest.approx(10.0)


def test_max_duration_enforced_while_decoding_when_the_header_does_not_say(tmp_path: Path) -> None:
    # An ADTS AAC stream carries no total length; the limit is enforced on the samples themselves.
    silence = np.zeros(12 * SAMPLE_RATE, dtype=np.float32)
    path = write_audio(tmp_path / "stream.aac", silence, SAMPLE_RATE, "aac", container_format="adts")
    seen: list[int] = []
    err = _error(path, max_duration=3, consumers=[lambda block: seen.append(block.shape[1])])
    assert "over --max-duration 3 s" in err.cause
    assert sum(seen) < 6 * SAMPLE_RATE
