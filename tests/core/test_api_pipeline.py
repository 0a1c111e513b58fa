"""The Python API and the pipeline on real speech: arrays, split channels, hotwords, batching across calls."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

import callscribe
from callscribe.engines.base import Clip, EngineOptions, EngineResult
from callscribe.engines.whisper import WhisperEngine
from callscribe.pipeline import CallError, Pipeline


def load_mono(path: Path, rate: int = 16000) -> np.ndarray:
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [g.to_ndarray()[0] for f in c.decode(audio=0) for g in resampler.resample(f)]
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine()  # the bundled model, as `--engine whisper` without --model


class CountingEngine:
    """The real Whisper engine, recording how clips arrive (to prove batching across calls)."""

    name = "whisper"

    def __init__(self, inner: WhisperEngine) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []
        self.options_seen: list[EngineOptions] = []

    def describe(self) -> str:
        return self.inner.describe()

    def transcribe(self, clips: list[Clip], options: EngineOptions) -> list[EngineResult]:
        self.calls.append([c.call_id for c in clips])
        self.options_seen.append(options)
        return self.inner.transcribe(clips, options)


def test_transcribe_array_8k(evalset: Path) -> None:
    audio = load_mono(evalset / "audio" / "en_whisper_jfk.flac", rate=8000)
    t = callscribe.transcribe(audio, sample_rate=8000, engine="whisper", language="en")
    assert t.call.sample_rate == 8000 and abs(t.call.duration - 11.0) < 0.2
    assert "what your country can do for you" in t.text.lower()
    assert all(u.language == "en" and 0 <= u.start < u.end <= t.call.duration + 0.01 for u in t.utterances)


def test_split_channels_keep_their_own_words(evalset: Path, engine: WhisperEngine) -> None:
    t = Pipeline({"engine": "whisper", "language": "en", "channels": "split"}, engine=engine).transcribe(
        evalset / "audio" / "en_fasterwhisper_stereo_2spk_channels.wav"
    )
    by_channel = {ch: " ".join(u.text for u in t.utterances if u.channel == ch).lower() for ch in (0, 1)}
    assert "wizard" in by_channel[0] and "wizard" not in by_channel[1]
    assert "horizon" in by_channel[1] and "horizon" not in by_channel[0]
    assert [u.start for u in t.utterances] == sorted(u.start for u in t.utterances)


def test_hotwords_bias_correct_and_are_recorded(evalset: Path, engine: WhisperEngine) -> None:
    counting = CountingEngine(engine)
    pipe = Pipeline(
        {"engine": "whisper", "language": "zh", "hotwords": ("滨海新区",), "corrections": (("冰台新区", "滨海新区"),)},
        engine=counting,
    )
    t = pipe.transcribe(evalset / "audio" / "zh_funasr_llamacpp_sample_hotline.wav")
    # Every clip is heard unbiased first; only an utterance that sounds like the term is read again, with the glossary.
    first, *again = [o.hotwords for o in counting.options_seen]
    assert first == () and all(h == ("滨海新区",) for h in again)
    assert "滨海新区" in t.text and "冰台新区" not in t.text
    assert t.hotwords_found == ("滨海新区",)
    (hit,) = t.terms
    assert hit.term == "滨海新区" and hit.support == ("sounds-like" if again else "unbiased")
    assert 0 <= hit.start < hit.end <= 6.1


def test_clips_from_many_calls_share_engine_batches(evalset: Path, engine: WhisperEngine) -> None:
    counting = CountingEngine(engine)
    files = sorted((evalset / "audio").glob("zh_*.wav"))[:4]
    results = list(Pipeline({"engine": "whisper", "language": "zh"}, engine=counting).run((f, "") for f in files))
    assert all(not isinstance(r, CallError) for r in results)
    assert len(results) == len(files)
    assert len(counting.calls) == 1 and len(set(counting.calls[0])) == len(files)


def test_whisper_loops_and_prompt_echoes_never_reach_the_transcript(examples_dir: Path, engine: WhisperEngine) -> None:
    """The espeak Mandarin call makes Whisper-base loop ("哇,哇,哇...") and echo its prompt on the batched path."""
    import zlib

    from callscribe.engines.whisper import COMPRESSION_RATIO, ZH_PROMPT

    t = Pipeline({"engine": "whisper", "language": "zh"}, engine=engine).transcribe(
        examples_dir / "zh_billing_stereo_8k.wav"
    )
    assert t.utterances
    for u in t.utterances:
        raw = u.text.encode()
        assert len(raw) / len(zlib.compress(raw)) <= COMPRESSION_RATIO, u.text
        assert ZH_PROMPT.strip("。") not in u.text
    retried = [u for u in t.utterances if "repetition" in u.flags]
    assert retried and any("flags on some clips: repetition" in n for n in t.notes)


def test_mono_call_without_the_diarize_extra_gets_no_roles(
    examples_dir: Path, engine: WhisperEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without [diarize] a mono call cannot be split into parties: say so, and claim no roles."""
    import sys

    monkeypatch.setitem(sys.modules, "callscribe.speakers.diarize", None)  # import fails as when torch is absent
    t = Pipeline({"engine": "whisper", "language": "en"}, engine=engine).transcribe(
        examples_dir / "en_callback_mono_8k.wav"
    )
    assert t.utterances and {u.speaker for u in t.utterances} == {"mixed"}
    assert all(u.role is None for u in t.utterances)
    assert any("not separated" in n for n in t.notes)


def test_clip_samples_are_released_once_heard(evalset: Path, engine: WhisperEngine) -> None:
    """A long call must not keep every clip's audio until it is assembled."""
    import gc
    import weakref

    refs: list[weakref.ref[np.ndarray]] = []

    class Watching(CountingEngine):
        def transcribe(self, clips: list[Clip], options: EngineOptions) -> list[EngineResult]:
            refs.extend(weakref.ref(c.audio) for c in clips)
            return super().transcribe(clips, options)

    watcher = Watching(engine)
    items = Pipeline({"engine": "whisper", "language": "en", "speakers": 1}, engine=watcher).run(
        [(evalset / "audio" / "en_ami_dev00_2spk.wav", "")]
    )
    t = next(iter(items))
    gc.collect()
    assert len(refs) > 1 and t.utterances
    assert all(r() is None for r in refs)


def test_an_engine_failure_sinks_only_its_own_call(evalset: Path, engine: WhisperEngine) -> None:
    """Clips of several calls share a batch; when the batch fails, each call is retried alone."""

    class FailsOnOneCall(CountingEngine):
        def transcribe(self, clips: list[Clip], options: EngineOptions) -> list[EngineResult]:
            self.calls.append([c.call_id for c in clips])
            if any(c.call_id == "zh_aishell2_IT0011W0001" for c in clips):
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            return self.inner.transcribe(clips, options)

    failing = FailsOnOneCall(engine)
    names = (
        "zh_aishell1_BAC009S0764W0121",
        "zh_aishell2_IT0011W0001",
        "zh_wenetspeech_TEST_NET_Y0000000000_-KTKHdZ2fb8_S00000",
    )
    files = [evalset / "audio" / f"{n}.wav" for n in names]
    results = list(
        Pipeline({"engine": "whisper", "language": "zh", "speakers": 1}, engine=failing).run((f, "") for f in files)
    )
    errors = [r for r in results if isinstance(r, CallError)]
    done = [r for r in results if not isinstance(r, CallError)]
    assert len(errors) == 1 and errors[0].stage == "engine"
    assert "zh_aishell2_IT0011W0001.wav: CUDA error" in str(errors[0])
    assert sorted(t.call.id for t in done) == sorted([names[0], names[2]])
    assert all(t.utterances for t in done)
    assert len(failing.calls[0]) > 1 and len(set(failing.calls[0])) == 3  # they did share the first batch
