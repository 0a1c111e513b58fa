"""The openai engine against a vLLM-like Qwen3-ASR server process on 127.0.0.1 that runs a tiny random-weight
Qwen3-ASR.

The model's text is random letters: these tests check what reached the model's prompt, what the engine sent, the
flags, languages and notes, never the words.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_qwen import build_qwen_asr
from vllm_qwen_process import QwenASRProcess

from callscribe.audio import iter_clips, prepare
from callscribe.engines import base
from callscribe.engines.base import Clip, EngineError, EngineOptions
from callscribe.engines.openai import OpenAIEngine
from callscribe.engines.openai_qwen import (
    budget,
    context_dropped_note,
    cut_loop,
    find_text_loop,
    parse_chat,
    word_times_note,
)
from callscribe.options import Options
from callscribe.pipeline import Pipeline

pytestmark = pytest.mark.skipif(importlib.util.find_spec("qwen_asr") is None, reason="qwen-asr is not installed")
ZH_CALL = "audio/zh_aishell1_BAC009S0764W0121.wav"  # 4.2 s
EN_CALL = "audio/en_pocketsphinx_cards_005_numbers.wav"  # 3.5 s
PHRASE = "thank you for calling "


@pytest.fixture(scope="module")
def qwen_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QwenASRProcess]:
    work = tmp_path_factory.mktemp("tiny-qwen-asr")
    server = QwenASRProcess(build_qwen_asr(work / "model"), work / "server.log")
    yield server
    server.stop()


@pytest.fixture
def server(qwen_server: QwenASRProcess) -> QwenASRProcess:
    qwen_server.reset()  # every test starts from a well-behaved server with no requests seen
    return qwen_server


def _clips(evalset: Path, name: str) -> list[Clip]:
    with prepare(evalset / name, Options()) as prepared:
        clips = list(iter_clips(prepared.audio, prepared.speech, call_id=Path(name).stem))
    assert clips and all(c.duration >= 2.0 for c in clips)
    return clips


@pytest.fixture(scope="module")
def zh_clip(evalset: Path) -> Clip:
    return _clips(evalset, ZH_CALL)[0]


@pytest.fixture(scope="module")
def en_clip(evalset: Path) -> Clip:
    return _clips(evalset, EN_CALL)[0]


def _engine(server: QwenASRProcess, **kwargs: object) -> OpenAIEngine:
    made = base.create("openai", base_url=server.url, **{"backoff_s": 0.01, **kwargs})
    assert isinstance(made, OpenAIEngine)
    return made


def test_text_loops_are_found_and_cut_to_one_pass() -> None:
    assert cut_loop("hello " + PHRASE * 2000) == ("hello thank you for calling", True)
    cjk = "您好，" + "请问还有什么可以帮您" * 30 + "请问还有"  # a partial pass at the end, as a budget cuts it
    assert cut_loop(cjk) == ("您好，请问还有什么可以帮您", True)
    assert cut_loop("哈" * 60) == ("哈", True)
    loop = find_text_loop("ok " * 40)
    assert loop is not None and loop.period == 3 and loop.repeats == 40
    for speech in ("no, no, no, I said no", "对对对对对，好的", "thank you thank you thank you", "", "a"):
        assert cut_loop(speech) == (speech, False)


def test_chat_replies_are_read_with_their_language() -> None:
    said = parse_chat(
        {"choices": [{"message": {"content": "language English<asr_text>hi"}, "finish_reason": "stop"}]}, "u", False
    )
    assert (said.text, said.language, said.finish_reason) == ("hi", "en", "stop")
    forced = parse_chat({"choices": [{"message": {"content": " 你好"}, "finish_reason": "length"}]}, "u", True)
    assert (forced.text, forced.language, forced.finish_reason) == ("你好", None, "length")
    cut = parse_chat({"choices": [{"message": {"content": "language Eng"}, "finish_reason": "length"}]}, "u", False)
    assert cut.text == ""
    with pytest.raises(EngineError, match=r"u/chat/completions answered without choices"):
        parse_chat({"detail": "oops"}, "u", False)


def test_a_qwen3_asr_server_is_found_by_model_id_or_root(server: QwenASRProcess) -> None:
    engine = _engine(server)
    assert engine.qwen_asr and engine.model == "Qwen/Qwen3-ASR-1.7B"
    assert engine.api_for(EngineOptions()) == "chat"
    assert engine.api_for(EngineOptions(extra={"openai_api": "transcriptions"})) == "transcriptions"
    server.reset(model_id="asr", root="/models/Qwen3-ASR-0.6B")  # --served-model-name asr
    engine = _engine(server)
    assert engine.qwen_asr and engine.model == "asr"
    server.reset(model_id="whisper-large-v3")
    assert not _engine(server).qwen_asr
    assert _engine(server, model="m", api="chat").api_for(EngineOptions()) == "chat"
    with pytest.raises(EngineError, match="openai_api='grpc' is not one of auto, chat, transcriptions"):
        _engine(server).api_for(EngineOptions(extra={"openai_api": "grpc"}))


@pytest.mark.evalset
def test_forced_language_and_context_reach_the_model_prompt(server: QwenASRProcess, zh_clip: Clip) -> None:
    engine = _engine(server)
    options = EngineOptions(language="zh", hotwords=("滨海新区", "Acme"), extra={"context": "客服热线"})
    (result,) = engine.transcribe([zh_clip], options)
    assert result.language == "zh" and result.flags == () and result.notes == ()
    assert result.text and "<asr_text>" not in result.text and not result.text.startswith("language")
    (seen,) = server.state.requests
    assert seen["endpoint"] == "chat" and seen["roles"] == ["system", "user", "assistant"]
    assert "<|im_start|>system\n客服热线\n滨海新区, Acme<|im_end|>" in seen["prompt"]
    assert seen["prompt"].endswith("<|im_start|>assistant\nlanguage Chinese<asr_text>")
    assert seen["max_tokens"] == budget(zh_clip.duration, {}) and seen["temperature"] == 0.0
    assert seen["finish_reason"] == "stop" and abs(seen["audio_s"] - zh_clip.duration) < 0.01
    server.reset()
    (detected,) = engine.transcribe([zh_clip], EngineOptions(extra={"max_new_tokens": 30}))
    (seen,) = server.state.requests
    assert seen["roles"] == ["system", "user"] and seen["prompt"].endswith("<|im_start|>assistant\n")
    assert seen["max_tokens"] == 30 and detected.language is None, "the random model names no language"


@pytest.mark.evalset
def test_transcriptions_carry_to_language_and_a_budget(server: QwenASRProcess, zh_clip: Clip) -> None:
    engine = _engine(server)
    extra = {"openai_api": "transcriptions"}
    options = EngineOptions(language="zh", hotwords=("滨海新区",), timestamps="word", extra=extra)
    (result,) = engine.transcribe([zh_clip], options)
    assert result.language == "zh" and result.text
    assert [s["response_format"] for s in server.state.requests] == ["verbose_json", "json"]
    seen = server.state.requests[-1]
    assert seen["to_language"] == "zh" and seen["language"] == "zh" and seen["prompt_field"] == "滨海新区"
    assert seen["prompt"].endswith("<|im_start|>assistant\nlanguage Chinese<asr_text>")
    assert seen["max_tokens"] == budget(zh_clip.duration, {})
    assert any("refused response_format=verbose_json" in n and "--engine qwen3" in n for n in result.notes)
    # vLLM builds this prompt itself and drops ``prompt``: the glossary never reaches the model, and the notes say so.
    assert "滨海新区" not in seen["prompt"]
    assert context_dropped_note(server.url + "/v1") in result.notes
    (plain,) = engine.transcribe([zh_clip], EngineOptions(language="zh", extra=extra))
    assert plain.notes == (), "no context, nothing lost: no note"


@pytest.mark.evalset
def test_a_server_that_is_not_qwen_gets_transcriptions(server: QwenASRProcess, en_clip: Clip) -> None:
    server.reset(model_id="whisper-large-v3", loop_times=1)
    engine = _engine(server)
    (result,) = engine.transcribe([en_clip], EngineOptions(language="en", hotwords=("Acme",)))
    assert {s["endpoint"] for s in server.state.requests} == {"transcriptions"}
    first = server.state.requests[1]  # after the verbose_json refusal
    assert first["to_language"] == "en" and first["language"] == "en" and first["prompt_field"] == "Acme"
    assert first["max_tokens"] is None, "no output limit goes to a server that may not know the field"
    # The first answer was the phrase looping 1024 times (no limit): cut, then the clip was heard in two halves.
    assert result.flags == ("repetition", "split-retry") and result.language == "en"
    assert len(server.state.requests) == 4 and PHRASE.strip() not in result.text


@pytest.mark.evalset
def test_a_looping_answer_is_split_once_and_recovers(server: QwenASRProcess, en_clip: Clip) -> None:
    server.reset(loop_times=1)
    (result,) = _engine(server).transcribe([en_clip], EngineOptions())
    assert result.flags == ("truncated", "repetition", "split-retry")
    assert result.language == "en", "the language the looping answer named is kept"
    first, left, right = server.state.requests
    assert left["max_tokens"] < first["max_tokens"] and right["max_tokens"] < first["max_tokens"]
    assert abs(left["audio_s"] + right["audio_s"] - first["audio_s"]) < 0.01
    assert len(result.segments) == 2 and result.segments[0].end == result.segments[1].start
    assert result.segments[1].end == pytest.approx(en_clip.duration, abs=0.01)


@pytest.mark.evalset
def test_a_stalled_answer_is_split_not_sent_again(server: QwenASRProcess, zh_clip: Clip) -> None:
    server.reset(stall_times=99, stall_s=1.5)
    engine = _engine(server, timeout_s=0.5)
    (result,) = engine.transcribe([zh_clip], EngineOptions(language="zh"))
    assert result.flags == ("timeout", "split-retry", "unresolved") and result.segments == ()
    first, left, right = server.state.requests
    assert all(s["stalled"] for s in (first, left, right))
    assert left["max_tokens"] + right["max_tokens"] > first["max_tokens"] > max(left["max_tokens"], right["max_tokens"])
    assert abs(left["audio_s"] + right["audio_s"] - first["audio_s"]) < 0.01
    server.reset(stall_times=1, stall_s=1.5)
    (result,) = engine.transcribe([zh_clip], EngineOptions(language="zh"))
    assert result.flags == ("timeout", "split-retry") and result.text and result.language == "zh"
    assert len(server.state.requests) == 3


@pytest.mark.evalset
def test_word_times_note_reaches_the_transcript_once(server: QwenASRProcess, evalset: Path) -> None:
    server.reset(stop_after=40)  # enough random words that the coverage stage does not decode the clip again
    options = {"engine": "openai", "base_url": server.url, "language": "en", "timestamps": "word"}
    t = Pipeline(options).transcribe(evalset / EN_CALL)
    note = word_times_note(server.url + "/v1")
    assert t.notes.count(note) == 1 and note in t.to_json()
    assert t.utterances and all(u.words == () for u in t.utterances)
    assert {s["endpoint"] for s in server.state.requests} == {"chat"}
    t = Pipeline({**options, "timestamps": "segment"}).transcribe(evalset / EN_CALL)
    assert not any(n.startswith("word times unavailable") for n in t.notes)


@pytest.mark.evalset
def test_a_call_whose_answers_keep_looping_finishes_flagged(server: QwenASRProcess, evalset: Path) -> None:
    server.reset(loop_times=10_000)
    t = Pipeline({"engine": "openai", "base_url": server.url, "language": "en"}).transcribe(evalset / EN_CALL)
    flags = {f for u in t.utterances for f in u.flags}
    assert {"repetition", "split-retry", "unresolved"} <= flags
    assert any("engine flags on some clips" in n and "unresolved" in n for n in t.notes)
    spoken = [u for u in t.utterances if u.text]
    assert spoken and all(u.text.count(PHRASE.strip()) == 1 for u in spoken), "each loop is cut to one pass"
    assert all(u.language == "en" for u in spoken)
    assert len(server.state.requests) < 20


@pytest.mark.evalset
def test_a_call_whose_answers_all_stall_finishes_with_uncovered_speech(server: QwenASRProcess, evalset: Path) -> None:
    server.reset(stall_times=10_000, stall_s=1.2)
    options = {"engine": "openai", "base_url": server.url, "language": "zh", "extra": {"timeout_s": 0.4}}
    t = Pipeline(options).transcribe(evalset / ZH_CALL)
    assert t.utterances and all(not u.text and "uncovered" in u.flags for u in t.utterances)
    assert any("has no text" in n for n in t.notes)
    assert any("timeout" in n and "unresolved" in n for n in t.notes)
    # The engine splits a stalled clip once, it never sends it again as it was; only the coverage stage's second
    # decode hears the same speech again (once).
    sent = Counter((round(s["audio_s"], 3), s["max_tokens"]) for s in server.state.requests)
    assert sum(sent.values()) < 12 and max(sent.values()) <= 2


@pytest.mark.evalset
def test_callscribe_transcribe_finishes_a_looping_call_flagged(
    server: QwenASRProcess, evalset: Path, tmp_path: Path
) -> None:
    """The command line against the vLLM-like server: every answer loops, the call still comes out (exit 0), its
    loops cut to one pass and flagged, and the word-times note is in the transcript."""
    import json

    from typer.testing import CliRunner

    from callscribe.cli import app
    from callscribe.model import Transcript

    server.reset(loop_times=10_000)
    out = tmp_path / "out"
    args = ["transcribe", str(evalset / EN_CALL), "-o", str(out), "--engine", "openai", "--base-url", server.url]
    result = CliRunner().invoke(app, [*args, "--language", "en", "--timestamps", "word", "--format", "json"])
    assert result.exit_code == 0, result.output
    (written,) = out.glob("*.json")
    t = Transcript.from_dict(json.loads(written.read_text(encoding="utf-8")))
    assert {"repetition", "split-retry", "unresolved"} <= {f for u in t.utterances for f in u.flags}
    spoken = [u for u in t.utterances if u.text]
    assert spoken and all(u.text.count(PHRASE.strip()) == 1 for u in spoken)
    assert word_times_note(server.url + "/v1") in t.notes
    assert {s["endpoint"] for s in server.state.requests} == {"chat"}
