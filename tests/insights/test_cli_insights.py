"""`callscribe redact` and `callscribe insights` end to end through typer's CliRunner."""

from __future__ import annotations

import csv
from pathlib import Path

from insights_callgen import make_calls
from typer.testing import CliRunner

from callscribe.cli import app


def test_redact_reads_stdin_line_by_line() -> None:
    text = "您好，我的手机是138 0013 8000\n订单号13800138000，邮箱 li@qq.com\ncall me at (555) 123-4567\n"
    result = CliRunner().invoke(app, ["redact"], input=text)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "您好，我的手机是[PHONE]",
        "订单号13800138000，邮箱 [EMAIL]",
        "call me at [PHONE]",
    ]


def test_redact_a_file_with_a_mask(tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("身份证11010519491231002X\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["redact", str(src), "--mask", "<{kind}>"])
    assert result.exit_code == 0
    assert result.stdout == "身份证<ID>\n"
    missing = CliRunner().invoke(app, ["redact", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 2 and "nope.txt: no such file" in missing.output


def test_insights_command_writes_csv_xlsx_html(tmp_path: Path) -> None:
    out = tmp_path / "out"
    exp = make_calls(out, n=20)
    agents = tmp_path / "agents.csv"
    agents.write_text("".join(f"{p.stem},T{k % 2}\n" for k, p in enumerate(sorted(out.glob("A0*_???.json")))))
    result = CliRunner().invoke(app, ["insights", str(out), "--agents", str(agents), "--top", "5"])
    assert result.exit_code == 0, result.output
    assert "20 calls (20 with QA)" in result.stdout and f"{exp.needs_review} need review" in result.stdout
    folder = out / "insights"
    assert (folder / "report.html").exists() and (folder / "insights.xlsx").exists()
    with (folder / "agents.csv").open(encoding="utf-8-sig") as f:
        rows = {r["agent"]: int(r["calls"]) for r in csv.DictReader(f)}
    assert rows == {"T0": 10, "T1": 10}
    with (folder / "keywords.csv").open(encoding="utf-8-sig") as f:
        kinds = [(r["role"], r["kind"]) for r in csv.DictReader(f)]
    assert kinds.count(("customer", "word")) == 5


def test_insights_command_reports_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["insights", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "missing: not a folder" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["insights", str(empty)])
    assert result.exit_code == 1 and "no transcripts" in result.output
    make_calls(empty, n=2)
    (empty / "bad.json").write_text("[]", encoding="utf-8")
    result = CliRunner().invoke(app, ["insights", str(empty), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "bad.json" in result.output
    assert (tmp_path / "r" / "report.html").exists()
