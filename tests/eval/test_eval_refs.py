"""Reference and hypothesis formats, and glossary recall."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callscribe.eval.hotwords import hotword_recall, load_glossary, parse_glossary
from callscribe.eval.refs import EvalInputError, load_hypotheses, load_references
from callscribe.model import CallInfo, Transcript, Utterance


def test_evalset_manifest(evalset: Path) -> None:
    refs = load_references(evalset / "manifest.jsonl")
    aishell = refs["zh_aishell1_BAC009S0764W0121"]
    assert (aishell.lang, aishell.quality, aishell.text) == ("zh", "ground_truth", "甚至出现交易几乎停滞的情况")
    ami = refs["en_ami_dev00_2spk"]
    assert ami.text is None and ami.rttm is not None and ami.rttm.exists()


def test_text_folder_and_kaldi_text_and_rttm_dir(tmp_path: Path, evalset: Path) -> None:
    folder = tmp_path / "refs"
    folder.mkdir()
    (folder / "call_a.txt").write_text("换一首歌\n", encoding="utf-8")
    (folder / "call_b.txt").write_text("eight of spades", encoding="utf-8")
    refs = load_references(folder, rttm_dir=evalset / "rttm")
    assert refs["call_a"].text == "换一首歌" and refs["call_b"].text == "eight of spades"
    assert refs["en_ami_tst00_4spk"].text is None  # an RTTM alone makes a diarization-only reference
    assert refs["en_ami_tst00_4spk"].rttm == evalset / "rttm" / "en_ami_tst00_4spk.rttm"

    kaldi = tmp_path / "text"
    kaldi.write_text("BAC009S0764W0121 甚至 出现 交易\nIT0011W0001 换一首歌\nempty_utt\n", encoding="utf-8")
    refs = load_references(kaldi)
    assert refs["BAC009S0764W0121"].text == "甚至 出现 交易"
    assert refs["empty_utt"].text == ""


def test_bad_references_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "refs.jsonl"
    bad.write_text('{"file": "a.wav", "text": "x"}\n{"file": \n', encoding="utf-8")
    with pytest.raises(EvalInputError, match=r"refs\.jsonl:2: not valid JSON"):
        load_references(bad)
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"file": "a.wav", "text": "x"}\n{"file": "b/a.flac", "text": "y"}\n', encoding="utf-8")
    with pytest.raises(EvalInputError, match="reference 'a' appears twice"):
        load_references(dup)
    with pytest.raises(EvalInputError, match="no such reference file"):
        load_references(tmp_path / "nope.jsonl")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(EvalInputError, match=r"latin1\.txt: not UTF-8"):
        load_references(tmp_path / "latin1.txt")


def _transcript(path: str, *texts: str) -> Transcript:
    utts = tuple(Utterance(float(i), i + 0.9, 0, t, speaker="A") for i, t in enumerate(texts))
    return Transcript(CallInfo(Path(path).stem, path, "", 10.0, 8000, 1), utts, "test")


def test_hypotheses_json_wins_over_txt_and_matches_call_path(tmp_path: Path) -> None:
    (tmp_path / "call_a.txt").write_text("[00:00] A: 你好\n", encoding="utf-8")
    (tmp_path / "call_a.json").write_text(_transcript("/rec/call_a.wav", "你好", "请问").to_json(), encoding="utf-8")
    (tmp_path / "out-1.json").write_text(_transcript("/rec/call_b.mp3", "hello").to_json(), encoding="utf-8")
    (tmp_path / "call_c.txt").write_text("plain text from another system\n", encoding="utf-8")
    (tmp_path / "call_a.qa.json").write_text(json.dumps({"call_id": "call_a", "score": 3}), encoding="utf-8")
    hyps = load_hypotheses(tmp_path)
    assert hyps["call_a"].text == "你好请问" and hyps["call_a"].transcript is not None
    assert hyps["call_b"].text == "hello"  # matched by the audio's stem, not the JSON's name
    assert hyps["call_c"].text == "plain text from another system" and hyps["call_c"].transcript is None
    assert "call_a.qa" not in hyps


def test_bad_hypothesis_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(EvalInputError, match=r"broken\.json: not valid JSON"):
        load_hypotheses(tmp_path)
    with pytest.raises(EvalInputError, match="not a folder of hypotheses"):
        load_hypotheses(tmp_path / "broken.json")


def test_glossary_format(tmp_path: Path) -> None:
    text = "# place names\n滨海新区\n冰海星区 => 滨海新区\n\nQwen3-ASR  # model\nrefund => refund policy\n"
    assert parse_glossary(text) == ("滨海新区", "Qwen3-ASR", "refund policy")
    path = tmp_path / "glossary.txt"
    path.write_text(text, encoding="utf-8")
    assert load_glossary(path) == parse_glossary(text)
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(EvalInputError, match=r"empty\.txt: the glossary has no terms"):
        load_glossary(tmp_path / "empty.txt")


def test_hotword_recall_on_real_hotline_item(evalset: Path) -> None:
    refs = load_references(evalset / "manifest.jsonl")
    ref = refs["zh_funasr_llamacpp_sample_hotline"].text
    assert ref is not None
    terms = ("滨海新区", "房", "公积金")  # the last is not in the reference: left out
    whisper_base = "我想问我在冰海星区有房"  # what Whisper-base printed for this file
    score = hotword_recall(terms, ref, whisper_base)
    assert [(t.term, t.in_ref, t.found) for t in score.terms] == [("滨海新区", 1, 0), ("房", 1, 1)]
    assert score.recall == 0.5
    assert hotword_recall(terms, ref, ref).recall == 1.0


def test_hotword_occurrences_and_normalisation() -> None:
    score = hotword_recall(
        ["refund", "Qwen3-ASR"],
        "Refund, refund, REFUND! Ask Qwen3 ASR.",
        "refund and a refunded order, qwen3-asr",
    )
    refund, qwen = score.terms
    assert (refund.in_ref, refund.found, refund.recall) == (3, 1, pytest.approx(1 / 3))
    assert (qwen.in_ref, qwen.found) == (1, 1)
    assert hotword_recall(["refund"], "no such word", "refund").recall is None
