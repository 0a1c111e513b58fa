"""``callscribe eval`` end to end through typer's CliRunner, on transcripts written with the data model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate
from typer.testing import CliRunner

from callscribe.cli import app
from callscribe.eval.der import load_rttm
from callscribe.model import CallInfo, Transcript, Utterance

runner = CliRunner()


def _write(folder: Path, audio: str, utts: tuple[Utterance, ...], duration: float = 30.0) -> None:
    call = CallInfo(Path(audio).stem, audio, "", duration, 16000, 1)
    (folder / f"{Path(audio).stem}.json").write_text(Transcript(call, utts, "test").to_json(), encoding="utf-8")


@pytest.fixture
def hyp_dir(tmp_path: Path, evalset: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    # Chinese: one wrong character, traditional script and a numeral written as a digit elsewhere.
    _write(out, "/calls/zh_aishell1_BAC009S0764W0121.wav", (Utterance(0.2, 4.0, 0, "甚至出現交易幾乎停制的情況"),))
    _write(out, "/calls/zh_aishell2_IT0011W0001.wav", (Utterance(0.1, 1.9, 0, "換1首歌"),))
    # English: number words as digits, one wrong word.
    _write(
        out,
        "/calls/en_pocketsphinx_cards_005_numbers.wav",
        (Utterance(0.0, 3.0, 0, "8 of spades, 4 of close,"), Utterance(3.0, 4.0, 0, "7 of hearts.")),
    )
    _write(out, "/calls/en_ljspeech_LJ002-0020_numbers.wav", (Utterance(0.0, 1.5, 0, "In 1813."),))
    # Diarization: the reference turns of the 2-speaker AMI excerpt, relabelled and shifted by 0.5 s.
    ref = load_rttm(evalset / "rttm" / "en_ami_dev00_2spk.rttm")
    turns = tuple(
        Utterance(s.start + 0.5, s.end + 0.5, 0, "words", speaker={"MEE009": "S1", "MEE012": "S2"}[lab])
        for s, _, lab in ref.itertracks(yield_label=True)
    )
    _write(out, "/calls/en_ami_dev00_2spk.wav", turns)
    return out


def _manifest(tmp_path: Path, evalset: Path, stems: set[str]) -> Path:
    rows = []
    for line in (evalset / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if Path(row["file"]).stem in stems:
            if row["rttm"]:
                row["rttm"] = str(evalset / row["rttm"])
            rows.append(json.dumps(row, ensure_ascii=False))
    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_eval_command_writes_scores_as_json(tmp_path: Path, evalset: Path, hyp_dir: Path) -> None:
    stems = {p.stem for p in hyp_dir.glob("*.json")}
    manifest = _manifest(tmp_path, evalset, stems)
    glossary = tmp_path / "glossary.txt"
    glossary.write_text("停滞\nclose => clubs\nhearts\n", encoding="utf-8")
    out_json = tmp_path / "scores" / "eval.json"
    args = ["eval", "--ref", str(manifest), "--hyp", str(hyp_dir), "--json", str(out_json)]
    result = runner.invoke(app, [*args, "--glossary", str(glossary), "--align"])
    assert result.exit_code == 0, result.output
    assert "total" in result.output and "REF:" in result.output

    data = json.loads(out_json.read_text(encoding="utf-8"))
    total = data["total"]
    assert set(total) >= {"cer", "wer", "mer", "der", "jer", "files"}
    assert total["files"] == 5
    # Chinese: 1 error in 13 + 4 characters once 換/幾/況 and 1 are normalised.
    assert total["cer"] == pytest.approx(1 / 17)
    # English: "close" for "clubs" is the only error in 9 + 2 words.
    assert total["wer"] == pytest.approx(1 / 11)
    assert total["mer"] == pytest.approx(2 / 28)
    # Every turn shifted by 0.5 s and relabelled: the same numbers as pyannote.metrics on those turns.
    ref = load_rttm(evalset / "rttm" / "en_ami_dev00_2spk.rttm")
    hyp = Annotation()
    for i, (seg, _, label) in enumerate(ref.itertracks(yield_label=True)):
        hyp[Segment(seg.start + 0.5, seg.end + 0.5), i] = label + "_hyp"
    uem = Timeline([(ref.get_timeline() | hyp.get_timeline()).extent()])
    direct = DiarizationErrorRate(collar=0.0, skip_overlap=False)(ref, hyp.support(), uem=uem, detailed=True)
    ami = next(f for f in data["files"] if f["id"] == "en_ami_dev00_2spk")
    assert ami["text"] is None
    for ours, theirs in (("confusion", "confusion"), ("missed", "missed detection"), ("total", "total")):
        assert ami["diarization"][ours] == pytest.approx(direct[theirs])
    assert total["der"] == pytest.approx(direct["diarization error rate"]) and 0 < total["der"] < 0.3
    assert total["hotword_recall"] == pytest.approx(1 / 3)  # hearts found; 停滞 (停制) and clubs (close) missed
    cards = next(f for f in data["files"] if f["id"] == "en_pocketsphinx_cards_005_numbers")
    assert [a for a in cards["text"]["alignment"] if a["op"] != "equal"] == [
        {"op": "substitute", "ref": "clubs", "hyp": "close"}
    ]


def test_no_normalize_and_missing_hypotheses(tmp_path: Path, evalset: Path, hyp_dir: Path) -> None:
    manifest = evalset / "manifest.jsonl"  # 15 references, 5 hypotheses
    out_json = tmp_path / "raw.json"
    args = ["eval", "--ref", str(manifest), "--hyp", str(hyp_dir), "--json", str(out_json), "--no-normalize"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert data["total"]["files"] == 15 and data["total"]["missing"] == 10
    ljspeech = next(f for f in data["files"] if f["id"] == "en_ljspeech_LJ002-0020_numbers")
    assert ljspeech["text"]["rate"] == 1.0  # "IN EIGHTEEN THIRTEEN" vs "In 1813." unnormalised
    missing = next(f for f in data["files"] if f["id"] == "en_whisper_jfk")
    assert missing["missing"] and missing["text"]["deletions"] == missing["text"]["ref_tokens"] > 0

    skipped = tmp_path / "skip.json"
    result = runner.invoke(app, [*args[:5], "--json", str(skipped), "--skip-missing"])
    assert result.exit_code == 0, result.output
    assert json.loads(skipped.read_text(encoding="utf-8"))["total"]["files"] == 5


def test_txt_hypotheses_and_text_folder_refs(tmp_path: Path) -> None:
    refs, hyps = tmp_path / "refs", tmp_path / "hyps"
    refs.mkdir()
    hyps.mkdir()
    (refs / "a.txt").write_text("嗯，我要查一下余额", encoding="utf-8")
    (hyps / "a.txt").write_text("我要查一下余额", encoding="utf-8")
    out_json = tmp_path / "eval.json"
    base = ["eval", "--ref", str(refs), "--hyp", str(hyps), "--json", str(out_json)]
    assert runner.invoke(app, base).exit_code == 0
    assert json.loads(out_json.read_text(encoding="utf-8"))["total"]["cer"] == pytest.approx(1 / 8)
    assert runner.invoke(app, [*base, "--fillers"]).exit_code == 0
    assert json.loads(out_json.read_text(encoding="utf-8"))["total"]["cer"] == 0.0
    assert not list(tmp_path.glob(".eval.json.*"))  # the atomic write left no temp file


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "hyps").mkdir()
    result = runner.invoke(app, ["eval", "--ref", str(tmp_path / "none.jsonl"), "--hyp", str(tmp_path / "hyps")])
    assert result.exit_code == 2
    assert "none.jsonl: no such reference file or folder" in result.output
