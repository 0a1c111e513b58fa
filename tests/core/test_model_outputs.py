"""The data model's JSON round-trip and every output format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callscribe.model import SCHEMA_VERSION, CallInfo, Span, Speaker, Transcript, Utterance, Word, join_texts
from callscribe.outputs.writers import WRITERS, clock, parse_formats, write_outputs


def sample() -> Transcript:
    call = CallInfo("c1", "/calls/c1.wav", "ab" * 32, 65.5, 8000, 2, "pcm_mulaw", {"agent": "A17"})
    return Transcript(
        call=call,
        utterances=(
            Utterance(
                1.25, 4.5, 0, "您好，很高兴为您服务。", "ch0", "agent", (Word("您好", 1.25, 1.9, 0.91),), 0.8, "zh"
            ),
            Utterance(3.9, 7.0, 1, "我的宽带又断了", "ch1", "customer", (), 0.7, "zh", overlap=True),
            Utterance(61.0, 65.0, 0, "Thank you\tfor calling", None, None, (), None, "en"),
        ),
        engine="whisper (bundled whisper-base, cpu, int8)",
        language="zh",
        options={"engine": "whisper"},
        timings={"decode": 0.1},
        speakers=(Speaker("ch0", 0, "agent", 0.9, ("greeting",), 3.25),),
        hotwords_found=("宽带",),
        notes=("a note",),
    )


def test_json_round_trip() -> None:
    t = sample()
    back = Transcript.from_json(t.to_json())
    assert back == t
    assert json.loads(t.to_json())["schema_version"] == SCHEMA_VERSION


def test_newer_schema_is_refused() -> None:
    d = sample().to_dict()
    d["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="newer"):
        Transcript.from_dict(d)


def test_span_operations() -> None:
    a, b = Span(1.0, 3.0), Span(2.5, 5.0)
    assert a.duration == 2.0 and a.overlaps(b) and a.intersection(b) == 0.5 and a.gap(b) == 0.0
    assert Span(0, 1).gap(Span(3, 4)) == 2.0 and not Span(0, 1).overlaps(Span(1, 2))
    with pytest.raises(ValueError):
        Span(2.0, 1.0)


def test_join_texts_spaces_only_between_latin() -> None:
    assert join_texts(["您好", "请问", "hello", "world", "好的"]) == "您好请问hello world好的"


def test_txt_lines() -> None:
    lines = WRITERS["txt"].render(sample()).splitlines()
    assert lines[0] == "[00:01.2 → 00:04.5] 客服: 您好，很高兴为您服务。"
    assert lines[1] == "[00:03.9 → 00:07.0] 客户: 我的宽带又断了"
    assert lines[2] == "[01:01.0 → 01:05.0] ch0: Thank you\tfor calling"
    assert clock(3725.25) == "1:02:05.2"


def test_subtitles_tsv_rttm() -> None:
    t = sample()
    srt = WRITERS["srt"].render(t)
    assert srt.startswith("1\n00:00:01,250 --> 00:00:04,500\n[客服] 您好")
    vtt = WRITERS["vtt"].render(t)
    assert vtt.startswith("WEBVTT\n") and "00:00:03.900 --> 00:00:07.000\n<v 客户>我的宽带又断了" in vtt
    tsv = WRITERS["tsv"].render(t).splitlines()
    assert tsv[0].split("\t") == ["start", "end", "channel", "speaker", "role", "text"]
    assert tsv[3].split("\t") == ["61.000", "65.000", "0", "", "", "Thank you for calling"]
    rttm = WRITERS["rttm"].render(t).splitlines()
    assert rttm[0] == "SPEAKER c1 1 1.250 3.250 <NA> <NA> ch0 <NA> <NA>"


def test_parse_formats_and_atomic_writes(tmp_path: Path) -> None:
    assert parse_formats("txt,srt") == ("json", "txt", "srt")
    assert set(parse_formats("all")) == set(WRITERS)
    with pytest.raises(ValueError, match="docx"):
        parse_formats("txt,docx")
    paths = write_outputs(sample(), tmp_path, "c1", parse_formats("all"))
    assert paths[-1].suffix == ".json"  # written last: it marks the call done
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"c1{w.suffix}" for w in WRITERS.values())
    assert Transcript.from_json((tmp_path / "c1.json").read_text(encoding="utf-8")) == sample()
