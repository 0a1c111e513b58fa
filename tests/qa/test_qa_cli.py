"""`callscribe qa OUT_DIR` end to end through typer's CliRunner on a folder of transcripts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers_qa import DATA
from typer.testing import CliRunner

from callscribe.cli import app
from callscribe.model import QAResult


def _folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    for name in ("zh_good", "zh_bad", "en_good"):
        shutil.copy(DATA / f"{name}.json", out / f"{name}.json")
    (out / "old.qa.json").write_text("{}", encoding="utf-8")  # results are never read as transcripts
    (out / "errors.jsonl").write_text('{"file": "x.wav", "error": "decode failed"}\n', encoding="utf-8")
    return out


def test_qa_folder_writes_results_and_table(tmp_path: Path) -> None:
    out = _folder(tmp_path)
    res = CliRunner().invoke(app, ["qa", str(out)], terminal_width=200)
    assert res.exit_code == 0, res.output
    for name in ("zh_good", "zh_bad", "en_good"):
        result = QAResult.from_dict(json.loads((out / f"{name}.qa.json").read_text(encoding="utf-8")))
        assert result.call_id == name
    assert not (out / "old.qa.qa.json").exists() and not list(out.glob(".*tmp"))
    good = QAResult.from_dict(json.loads((out / "zh_good.qa.json").read_text(encoding="utf-8")))
    assert good.score == good.max_score == 80.0
    assert "zh_bad" in res.output and "0/80" in res.output and "80/80" in res.output
    assert "3/3 calls checked, 1 need review" in res.output


def test_bad_file_is_one_line_and_the_rest_go_on(tmp_path: Path) -> None:
    out = _folder(tmp_path)
    (out / "broken.json").write_text('{"call": {"id": "b"', encoding="utf-8")
    (out / "notes.json").write_text('["not", "a", "transcript"]', encoding="utf-8")
    weird = json.loads((DATA / "en_good.json").read_text(encoding="utf-8"))
    weird["utterances"][0]["start"] = "soon"
    (out / "weird.json").write_text(json.dumps(weird), encoding="utf-8")
    res = CliRunner().invoke(app, ["qa", str(out), "--json"])
    assert res.exit_code == 1
    payload = json.loads(res.stdout)
    assert sorted(c["call_id"] for c in payload["calls"]) == ["en_good", "zh_bad", "zh_good"]
    errors = payload["errors"]
    assert len(errors) == 3 and all("\n" not in e for e in errors)
    assert any("broken.json: not readable JSON" in e for e in errors)
    assert any("notes.json: not a transcript" in e for e in errors)
    assert any("weird.json: QA failed" in e for e in errors)
    assert payload["summary"] == {"calls": 6, "checked": 3, "errors": 3, "needs_review": 1, "mean_score_pct": 66.7}
    assert (out / "zh_good.qa.json").exists() and not (out / "broken.qa.json").exists()


def test_scorecard_option(tmp_path: Path) -> None:
    out = _folder(tmp_path)
    res = CliRunner().invoke(app, ["qa", str(out), "--scorecard", str(DATA / "custom_card.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    assert {c["scorecard"] for c in json.loads(res.stdout)["calls"]} == {"custom"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{id: a, check: {phrases: [x]}}]", encoding="utf-8")
    res = CliRunner().invoke(app, ["qa", str(out), "--scorecard", str(bad)])
    assert res.exit_code == 2 and "bad.yaml: rule 'a'" in res.output


def test_missing_folder(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["qa", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a folder" in res.output
