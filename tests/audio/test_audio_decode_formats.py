"""Every supported container/codec, sample rate and channel count decodes to the right 16 kHz samples."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soxr
from audio_samples import dominant_frequency, real_speech, tone, write_audio

from callscribe.audio import SAMPLE_RATE, decode, from_array, is_audio, prepare
from callscribe.options import Options

WAV_CODECS = ["pcm_u8", "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"]
# (encoder, extension, encode rate, bit rate): compressed formats met in call-centre exports.
COMPRESSED = [
    ("libmp3lame", "mp3", 22_050, None),
    ("aac", "m4a", 16_000, None),
    ("libopencore_amrnb", "amr", 8_000, 12_200),
    ("libopus", "ogg", 48_000, None),
    ("flac", "flac", 44_100, None),
]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return real_speech()


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        return False
    return True


def _at(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return samples
    return soxr.resample(samples, SAMPLE_RATE, rate).astype(np.float32)


def _best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 2000) -> float:
    """Peak normalised cross-correlation of two signals within +-max_lag samples (codec delay)."""
    n = min(len(a), len(b)) - max_lag
    ref = a[max_lag : max_lag + n - max_lag]
    best = 0.0
    for lag in range(-max_lag, max_lag + 1, 1):
        other = b[max_lag + lag : max_lag + lag + len(ref)]
        best = max(best, float(np.dot(ref, other) / (np.linalg.norm(ref) * np.linalg.norm(other) + 1e-12)))
    return best


@pytest.mark.parametrize("codec", WAV_CODECS)
def test_wav_sample_formats_keep_the_waveform(tmp_path: Path, speech: np.ndarray, codec: str) -> None:
    path = write_audio(tmp_path / f"call-{codec}.wav", speech, SAMPLE_RATE, codec)
    with decode(path) as audio:
        assert audio.codec == codec
        assert (audio.channels, audio.source_rate) == (1, SAMPLE_RATE)
        assert audio.frames == len(speech)
        got = audio.read(0)
    assert got.dtype == np.float32
    error = np.sqrt(np.mean((got - speech) ** 2)) / np.sqrt(np.mean(speech**2))
    # 8-bit and companded formats are lossy; linear PCM of 16 bits or more is near exact.
    assert error < (0.15 if codec in ("pcm_u8", "pcm_mulaw", "pcm_alaw") else 1e-3)


@pytest.mark.parametrize(("encoder", "ext", "rate", "bit_rate"), COMPRESSED)
def test_compressed_formats_decode_and_keep_the_speech(
    tmp_path: Path, speech: np.ndarray, encoder: str, ext: str, rate: int, bit_rate: int | None
) -> None:
    if not _has_encoder(encoder):
        pytest.skip(f"this PyAV build has no {encoder} encoder")
    path = write_audio(tmp_path / f"call.{ext}", _at(speech, rate), rate, encoder, bit_rate=bit_rate)
    assert is_audio(path)
    with prepare(path, Options()) as prepared:
        audio = prepared.audio
        assert audio.source_rate == rate
        assert audio.channels == 1
        assert audio.duration == pytest.approx(len(speech) / SAMPLE_RATE, abs=0.15)
        got = audio.read(0)
        speech_s = sum(s.duration for s in prepared.speech[0])
    # The decoded waveform still lines up with the original (codec delay allowed for)...
    lossy_band = encoder in ("libopencore_amrnb",)
    assert _best_correlation(speech, got, max_lag=800) > (0.6 if lossy_band else 0.95)
    # ...and the VAD still hears speech for most of it.
    assert speech_s > 0.6 * len(speech) / SAMPLE_RATE


@pytest.mark.parametrize("rate", [8_000, 11_025, 22_050, 44_100, 48_000])
def test_resampling_keeps_duration_and_frequency(tmp_path: Path, rate: int) -> None:
    freq = 1_234.0
    path = write_audio(tmp_path / f"tone-{rate}.wav", tone(freq, 3.0, rate), rate, "pcm_s16le")
    with decode(path) as audio:
        assert audio.source_rate == rate
        assert audio.frames == pytest.approx(3.0 * SAMPLE_RATE, abs=2)
        assert audio.duration == pytest.approx(3.0, abs=1e-3)
        samples = audio.read(0, 0.5, 2.5)
    assert dominant_frequency(samples, SAMPLE_RATE) == pytest.approx(freq, abs=1.0)
    assert np.sqrt(np.mean(samples**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)


def test_frequencies_above_8k_are_removed_not_aliased(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "hiss.wav", tone(11_000.0, 2.0, 48_000), 48_000, "pcm_s16le")
    with decode(path) as audio:
        samples = audio.read(0, 0.2, 1.8)
    # An 11 kHz tone folded into the 16 kHz band would show up at 5 kHz at full strength.
    assert np.sqrt(np.mean(samples**2)) < 0.003


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_channels_stay_apart(tmp_path: Path, channels: int) -> None:
    freqs = [300.0 + 250.0 * ch for ch in range(channels)]
    data = np.stack([tone(f, 2.0, 44_100) for f in freqs])
    path = write_audio(tmp_path / f"multi-{channels}.flac", data, 44_100, "flac")
    with decode(path) as audio:
        assert audio.channels == channels
        for ch, freq in enumerate(freqs):
            assert dominant_frequency(audio.read(ch, 0.2, 1.8), SAMPLE_RATE) == pytest.approx(freq, abs=1.0)


def test_tone_left_speech_right_gives_speech_only_on_the_right(tmp_path: Path, speech: np.ndarray) -> None:
    rate = 8_000
    right = _at(speech, rate)
    left = tone(440.0, len(right) / rate, rate)
    path = write_audio(tmp_path / "stereo.wav", np.stack([left, right]), rate, "pcm_s16le")
    with prepare(path, Options()) as prepared:
        assert prepared.audio.channels == 2
        assert prepared.speech[0] == []
        assert sum(s.duration for s in prepared.speech[1]) > 0.6 * prepared.audio.duration


def test_six_channels_speech_found_only_where_it_is(tmp_path: Path, speech: np.ndarray) -> None:
    n = len(speech)
    rng = np.random.default_rng(6)
    data = np.zeros((6, n), dtype=np.float32)
    data[1] = tone(500.0, n / SAMPLE_RATE, SAMPLE_RATE)
    data[2] = 0.01 * rng.standard_normal(n)
    data[4] = speech
    path = write_audio(tmp_path / "six.wav", data, SAMPLE_RATE, "pcm_s16le")
    with prepare(path, Options()) as prepared:
        found = {ch for ch, spans in prepared.speech.items() if spans}
    assert found == {4}


def test_mix_averages_the_channels_into_one_that_holds_every_channels_speech(
    tmp_path: Path, speech: np.ndarray
) -> None:
    rate = 8_000
    right = _at(speech, rate)
    left = tone(440.0, len(right) / rate, rate)
    path = write_audio(tmp_path / "stereo.wav", np.stack([left, right]), rate, "pcm_s16le")
    with decode(path) as both, decode(path, mix=True) as mixed:
        assert (both.channels, mixed.channels) == (2, 1)
        assert np.allclose(mixed.read(0), (both.read(0) + both.read(1)) / 2, atol=1e-6)
        assert mixed.notes == ["2 channels mixed into one signal by request"]
    with prepare(path, Options(channels="mix")) as prepared:  # the right channel's speech is in the one signal
        assert list(prepared.speech) == [0]
        assert sum(s.duration for s in prepared.speech[0]) > 0.6 * prepared.audio.duration


def test_read_slices_by_time(tmp_path: Path, speech: np.ndarray) -> None:
    path = write_audio(tmp_path / "slice.wav", speech, SAMPLE_RATE, "pcm_f32le")
    with decode(path) as audio:
        part = audio.read(0, 1.0, 2.5)
        assert len(part) == round(1.5 * SAMPLE_RATE)
        np.testing.assert_allclose(part, speech[SAMPLE_RATE : round(2.5 * SAMPLE_RATE)], atol=1e-6)
        assert len(audio.read(0, audio.duration - 0.1, audio.duration + 5.0)) == round(0.1 * SAMPLE_RATE)
        with pytest.raises(IndexError):
            audio.read(1)


def test_from_array_resamples_mono_and_multichannel() -> None:
    mono = from_array(tone(700.0, 2.0, 8_000), 8_000)
    assert (mono.channels, mono.frames) == (1, 2 * SAMPLE_RATE)
    assert dominant_frequency(mono.read(0), SAMPLE_RATE) == pytest.approx(700.0, abs=1.0)
    stereo = from_array(np.stack([tone(300.0, 1.0, 16_000), tone(900.0, 1.0, 16_000)]), 16_000)
    assert stereo.channels == 2
    assert dominant_frequency(stereo.read(1), SAMPLE_RATE) == pytest.approx(900.0, abs=1.0)


def test_is_audio_looks_at_content(tmp_path: Path, speech: np.ndarray) -> None:
    disguised = write_audio(tmp_path / "recording.dat", speech, SAMPLE_RATE, "pcm_s16le", container_format="wav")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 20)
    assert is_audio(disguised)
    assert not is_audio(text)
    assert not is_audio(tmp_path)
    assert not is_audio(tmp_path / "missing.wav")
