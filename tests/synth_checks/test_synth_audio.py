"""The espeak-ng synthesiser: real speech, reference turns that match the audio, stereo bleed and overlap."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest

synth = pytest.importorskip("synth")
if shutil.which(synth.ESPEAK) is None:
    pytest.skip("espeak-ng is not installed", allow_module_level=True)

SR = 16000
AGENT_EN = "Thank you for calling, how can I help you today?"
CUSTOMER_EN = "Hi, my internet keeps dropping every evening."


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _median_f0(x: np.ndarray, sr: int = SR) -> float:
    """Median pitch of the loud frames (autocorrelation, first strong peak between 60 and 500 Hz)."""
    frame = int(0.04 * sr)
    lo, hi = sr // 500, sr // 60
    found = []
    for i in range(0, len(x) - frame, frame // 2):
        fr = x[i : i + frame] - x[i : i + frame].mean()
        if _rms(fr) < 0.05 * np.abs(x).max():
            continue
        ac = np.correlate(fr, fr, "full")[frame - 1 :][lo:hi]
        top = ac.max()
        peaks = [k for k in range(1, len(ac) - 1) if ac[k] >= 0.85 * top and ac[k - 1] <= ac[k] >= ac[k + 1]]
        if peaks and top > 0.3 * float(np.dot(fr, fr)):
            found.append(sr / (lo + peaks[0]))
    return float(np.median(found))


def _dialogue() -> synth.Dialogue:
    return synth.build_dialogue(
        [
            synth.Turn("agent", AGENT_EN, synth.AGENT_VOICE_EN),
            synth.Turn("customer", CUSTOMER_EN, synth.CUSTOMER_VOICE_EN, gap=0.6),
            synth.Turn("agent", "I am sorry to hear that.", synth.AGENT_VOICE_EN, overlap=0.5),
            synth.Turn("customer", "Thanks.", synth.CUSTOMER_VOICE_EN, gap=1.0),
        ]
    )


def test_speak_gives_trimmed_speech_of_plausible_length() -> None:
    x = synth.speak(AGENT_EN, synth.AGENT_VOICE_EN)
    assert x.dtype == np.float32 and x.ndim == 1
    seconds = len(x) / SR
    assert 1.5 < seconds < 5.0  # ten words at ~165 words a minute
    assert _rms(x) > 0.02
    edge = int(0.02 * SR)  # silence was stripped: both ends start right at the sound
    assert np.abs(x[:edge]).max() > 0.005 and np.abs(x[-edge:]).max() > 0.005


def test_speak_rate_and_sample_rate() -> None:
    wide = synth.speak("one two three four five", "en-us", sample_rate=16000)
    narrow = synth.speak("one two three four five", "en-us", sample_rate=8000)
    assert abs(len(narrow) * 2 - len(wide)) <= 4
    slow = synth.speak("one two three four five", "en-us", rate=110)
    assert len(slow) > 1.25 * len(wide)


def test_speak_returns_fresh_copies() -> None:
    first = synth.speak("hello there", "en-us")
    first[:] = 0.0
    assert np.abs(synth.speak("hello there", "en-us")).max() > 0.1


def test_mandarin_pinyin_voice_speaks_each_syllable() -> None:
    short = synth.speak("nin2 hao3", "cmn-latn-pinyin", rate=140)
    long = synth.speak("nin2 hao3, hen3 gao1 xing4 wei4 nin2 fu2 wu4", "cmn-latn-pinyin", rate=140)
    assert _rms(long) > 0.02
    # nine syllables take clearly longer than two: pinyin is read as syllables, not spelled as English words
    assert 2.5 * len(short) < len(long) < 8 * len(short)


def test_party_voices_differ_in_pitch() -> None:
    agent = _median_f0(synth.speak(AGENT_EN, synth.AGENT_VOICE_EN))
    customer = _median_f0(synth.speak(AGENT_EN, synth.CUSTOMER_VOICE_EN))
    assert agent > 1.4 * customer
    zh = "qing3 wen4 hai2 you3 shen2 me5 ke3 yi3 bang1 nin2"
    assert _median_f0(synth.speak(zh, synth.AGENT_VOICE_ZH)) > 1.4 * _median_f0(
        synth.speak(zh, synth.CUSTOMER_VOICE_ZH)
    )


def test_reference_turns_match_the_mix() -> None:
    d = _dialogue()
    assert d.speakers == ["agent", "customer"]
    assert set(d.tracks) == {"agent", "customer"}
    assert all(len(t) == len(d.mix) for t in d.tracks.values())
    np.testing.assert_allclose(d.mix, d.tracks["agent"] + d.tracks["customer"], atol=1e-6)
    for turn in d.turns:
        a, b = round(turn.start * SR), round(turn.end * SR)
        own = d.tracks[turn.speaker]
        assert _rms(own[a:b]) > 0.03, turn
        assert np.abs(own[a : a + 160]).max() > 0 and np.abs(own[b - 160 : b]).max() > 0, turn
    # silence everywhere outside the turns, in the mix and in each track
    covered = np.zeros(len(d.mix), dtype=bool)
    for turn in d.turns:
        covered[round(turn.start * SR) : round(turn.end * SR)] = True
        other = next(s for s in d.tracks if s != turn.speaker)
        assert np.abs(d.tracks[other][round(turn.start * SR) : round(turn.end * SR)]).max() == 0.0 or (
            any(u.speaker == other and u.start < turn.end and turn.start < u.end for u in d.turns)
        )
    assert np.abs(d.mix[~covered]).max() == 0.0
    assert d.duration == pytest.approx(d.turns[-1].end + synth.TAIL_S, abs=1e-3)


def test_gaps_and_overlap_are_where_asked() -> None:
    d = _dialogue()
    t0, t1, t2, t3 = d.turns
    assert t0.start == pytest.approx(0.4, abs=1e-3)
    assert t1.start - t0.end == pytest.approx(0.6, abs=1e-3)
    assert t1.end - t2.start == pytest.approx(0.5, abs=1e-3)  # the agent cuts in half a second early
    assert t3.start - max(t1.end, t2.end) == pytest.approx(1.0, abs=1e-3)
    a, b = round(t2.start * SR), round(t1.end * SR)
    assert _rms(d.tracks["agent"][a:b]) > 0.01 and _rms(d.tracks["customer"][a:b]) > 0.01


def test_a_speaker_cannot_overlap_themself() -> None:
    turns = [
        synth.Turn("agent", "hello there", "en-us"),
        synth.Turn("agent", "how are you", "en-us", overlap=0.3),
    ]
    with pytest.raises(ValueError, match="overlap their own"):
        synth.build_dialogue(turns)


def test_stereo_bleed_level_and_delay() -> None:
    d = _dialogue()
    st = synth.to_stereo(d, "agent", "customer", bleed_db=-20.0, bleed_delay_ms=2.0)
    assert st.shape == (2, len(d.mix)) and st.dtype == np.float32
    cust = d.turns[1]
    only_customer = slice(round(cust.start * SR), round(d.turns[2].start * SR))
    level = 20 * np.log10(_rms(st[0, only_customer]) / _rms(st[1, only_customer]))
    assert level == pytest.approx(-20.0, abs=0.3)
    left, right = st[0, only_customer], st[1, only_customer]
    lags = range(0, 80)
    best = max(lags, key=lambda k: float(np.dot(left[k:], right[: len(right) - k])))
    assert best == 32  # 2 ms at 16 kHz
    clean = synth.to_stereo(d, "agent", "customer", bleed_db=None)
    assert np.abs(clean[0, only_customer]).max() == 0.0
    np.testing.assert_array_equal(clean[1], d.tracks["customer"])


def test_stereo_rejects_unknown_or_unplaced_speakers() -> None:
    d = _dialogue()
    with pytest.raises(ValueError, match="no speaker 'ivr'"):
        synth.to_stereo(d, "agent", "ivr")
    three = synth.build_dialogue(
        [
            synth.Turn("ivr", "Please hold.", "en-us"),
            synth.Turn("agent", "Hello.", synth.AGENT_VOICE_EN),
            synth.Turn("customer", "Hi.", synth.CUSTOMER_VOICE_EN),
        ]
    )
    with pytest.raises(ValueError, match="have no channel"):
        synth.to_stereo(three, "agent", "customer")


def test_resample_keeps_channels_and_duration() -> None:
    st = synth.to_stereo(_dialogue(), "agent", "customer")
    down = synth.resample(st, SR, 8000)
    assert down.shape[0] == 2 and abs(down.shape[1] * 2 - st.shape[1]) <= 2
    assert down.dtype == np.float32
    np.testing.assert_allclose(_rms(down[0]), _rms(st[0]), rtol=0.05)


@pytest.mark.parametrize(
    ("codec", "rate", "channels", "tolerance"),
    [("pcm_s16le", 16000, 1, 1e-3), ("pcm_mulaw", 8000, 2, 0.05), ("pcm_alaw", 8000, 1, 0.05)],
)
def test_write_wav_round_trip(tmp_path: Path, codec: str, rate: int, channels: int, tolerance: float) -> None:
    d = synth.build_dialogue([synth.Turn("agent", "hello there", "en-us")], sample_rate=rate)
    samples = synth.to_stereo(d, "agent", "agent", bleed_db=None) if channels == 2 else d.mix
    path = tmp_path / "out.wav"
    synth.write_wav(path, samples, rate, codec=codec)
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # the temporary file was renamed away
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.rate, stream.channels) == (codec, rate, channels)
        frames = [f.to_ndarray().reshape(-1, channels).T for f in container.decode(stream)]
    back = np.concatenate(frames, axis=1)
    expected = np.atleast_2d(samples)
    assert back.shape == expected.shape
    scale = 32767.0 if back.dtype == np.int16 else 1.0
    err = _rms(back / scale - expected) / _rms(expected)
    assert err < tolerance
