"""Insights across 60 generated calls: the CSV, XLSX and HTML carry the totals counted from the plan."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from insights_callgen import AGENTS, Expected, make_calls
from openpyxl import load_workbook

from callscribe.model import CallInfo, Transcript, Utterance
from callscribe.outputs.report import write_report
from callscribe.qa.insights import CallData, compute_insights, load_calls, read_agent_map
from callscribe.qa.insights_export import write_tables
from callscribe.qa.mining import is_complaint, tokenize, topics_of
from callscribe.qa.mining_words import STOPWORDS

PATTERN = r"(?P<agent>A\d+)_"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    root = tmp_path_factory.mktemp("insights")
    exp = make_calls(root / "out", n=60)
    calls, errors = load_calls(root / "out", agent_pattern=PATTERN)
    assert errors == []
    ins = compute_insights(calls)
    write_tables(ins, root / "report")
    write_report(ins, root / "report" / "report.html", title="Test centre")
    return root / "report", exp


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def test_summary_and_calls(built: tuple[Path, Expected]) -> None:
    folder, exp = built
    summary = {r["figure"]: r["value"] for r in _csv(folder / "summary.csv")}
    assert int(summary["calls"]) == exp.calls == 60
    assert int(summary["calls_with_qa"]) == 60
    assert int(summary["needs_review"]) == exp.needs_review
    assert int(summary["complaints"]) == exp.complaints
    assert int(summary["calls_with_complaints"]) == exp.calls_with_complaints
    assert float(summary["mean_score_pct"]) == pytest.approx(sum(exp.scores) / len(exp.scores), abs=0.05)
    calls = _csv(folder / "calls.csv")
    assert len(calls) == 60
    assert {r["call"] for r in calls if r["needs_review"] == "True"} == exp.review_calls
    review = _csv(folder / "review.csv")
    assert {r["call"] for r in review} == exp.review_calls
    assert all("escalation" in r["review_reasons"] for r in review)


def test_rules_histogram_topics_agents(built: tuple[Path, Expected]) -> None:
    folder, exp = built
    rules = {r["rule"]: r for r in _csv(folder / "rules.csv")}
    assert {k: int(r["passed"]) for k, r in rules.items()} == dict(exp.rule_passed)
    assert float(rules["greeting"]["pass_rate"]) == pytest.approx(exp.rule_passed["greeting"] / 60, abs=1e-3)
    bins = _csv(folder / "score_histogram.csv")
    assert sum(int(b["calls"]) for b in bins) == 60
    top = next(b for b in bins if float(b["low"]) == 90.0)
    assert int(top["calls"]) == sum(s >= 90 for s in exp.scores)
    topics = {r["topic"]: r for r in _csv(folder / "topics.csv")}
    assert {k: int(r["complaints"]) for k, r in topics.items()} == dict(exp.topics)
    assert {k: int(r["calls"]) for k, r in topics.items()} == dict(exp.topic_calls)
    assert topics["billing"]["label"] == "Billing / 费用"
    agents = {r["agent"]: r for r in _csv(folder / "agents.csv")}
    assert sorted(agents) == list(AGENTS)
    for agent in AGENTS:
        scores = exp.agent_scores[agent]
        assert int(agents[agent]["calls"]) == exp.agent_calls[agent]
        assert float(agents[agent]["mean_score_pct"]) == pytest.approx(sum(scores) / len(scores), abs=0.05)


def test_keywords_are_segmented_and_free_of_stopwords(built: tuple[Path, Expected]) -> None:
    folder, _ = built
    rows = _csv(folder / "keywords.csv")
    customer = [r["term"] for r in rows if r["role"] == "customer" and r["kind"] == "word"]
    agent = [r["term"] for r in rows if r["role"] == "agent" and r["kind"] == "word"]
    assert customer and agent
    assert not set(customer + agent) & STOPWORDS
    # jieba words, not whole clauses or single characters
    zh = [t for t in customer if re.search(r"[\u4e00-\u9fff]", t)]
    assert zh and all(2 <= len(t) <= 4 for t in zh)
    assert {"多扣", "收货", "地址"} & set(customer)
    assert {"package", "arrived", "frustrated"} & set(customer)
    phrases = [r["term"] for r in rows if r["role"] == "agent" and r["kind"] == "phrase"]
    assert "anything else" in phrases and "客服工号" in phrases


def test_xlsx_has_every_table(built: tuple[Path, Expected]) -> None:
    folder, exp = built
    wb = load_workbook(folder / "insights.xlsx", read_only=True)
    assert {"summary", "calls", "rules", "score_histogram", "review", "topics", "agents", "keywords"} <= set(
        wb.sheetnames
    )
    summary = {row[0]: row[1] for row in wb["summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["complaints"] == exp.complaints
    topics = {row[0]: row[2] for row in wb["topics"].iter_rows(min_row=2, values_only=True)}
    assert topics == dict(exp.topics)


def test_html_is_self_contained_and_has_the_charts(built: tuple[Path, Expected]) -> None:
    folder, exp = built
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<title>Test centre</title>" in page
    assert page.count("<svg") == 4
    for section in ("score-histogram", "rule-pass-rates", "complaint-topics", "sentiment-trajectory", "agents"):
        assert f'id="{section}"' in page
    # nothing fetched from elsewhere: the only URL is the SVG namespace
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "<script" not in page and "<link" not in page and "@import" not in page
    for call in exp.review_calls:
        assert call in page
    assert f"{exp.topics['delivery']} in {exp.topic_calls['delivery']}" in page


def test_complaint_and_topic_detection() -> None:
    assert is_complaint("我这个月话费怎么多扣了五十块，太不合理了")
    assert topics_of("我这个月话费怎么多扣了五十块") == ["billing"]
    assert topics_of("My package still hasn't arrived") == ["delivery"]
    assert not is_complaint("好的，谢谢", 0.5)
    assert is_complaint("I'll report you to the regulator", -0.7)
    assert tokenize("我想查一下[PHONE]的话费") == ["我想查", "话费"]


def test_agents_from_csv_and_metadata(tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_calls(out, n=6, write_qa=True)
    names = sorted(p.name[: -len(".json")] for p in out.glob("*.json") if not p.name.endswith(".qa.json"))
    # one call carries its agent in its metadata; a CSV maps two others
    meta_path = out / f"{names[0]}.json"
    t = Transcript.from_json(meta_path.read_text(encoding="utf-8"))
    data = t.to_dict()
    data["call"]["metadata"] = {"agent_id": "Z9"}
    meta_path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    sidecar = tmp_path / "agents.csv"
    sidecar.write_text(f"call,agent\n{names[1]},B7\n{names[2]}.json,B8\n", encoding="utf-8")
    assert read_agent_map(sidecar) == {names[1]: "B7", f"{names[2]}.json": "B8"}
    calls, _ = load_calls(out, agents=sidecar)
    by_stem = {c.stem: c.agent for c in calls}
    assert by_stem[names[0]] == "Z9" and by_stem[names[1]] == "B7"
    assert by_stem[names[3]] is None
    calls, _ = load_calls(out, agents=sidecar, agent_pattern=PATTERN)
    assert {c.stem: c.agent for c in calls}[names[3]] == names[3][:3]


def test_bad_files_are_reported_and_skipped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_calls(out, n=3)
    (out / "broken.json").write_text("{not json", encoding="utf-8")
    (out / "errors.jsonl").write_text("{}\n", encoding="utf-8")
    calls, errors = load_calls(out)
    assert len(calls) == 3
    assert len(errors) == 1 and "broken.json" in errors[0]
    with pytest.raises(ValueError, match="not a folder"):
        load_calls(tmp_path / "missing")
    with pytest.raises(ValueError, match="agent-pattern"):
        load_calls(out, agent_pattern="(?P<agent")


def test_missing_qa_uses_run_qa_when_available(tmp_path: Path) -> None:
    out = tmp_path / "out"
    make_calls(out, n=4, write_qa=False)
    calls, errors = load_calls(out)
    import callscribe.qa as qa_package

    if hasattr(qa_package, "run_qa"):
        assert all(c.qa is not None for c in calls), errors
    else:
        assert all(c.qa is None for c in calls)
        ins = compute_insights(calls)
        assert ins.summary.calls_with_qa == 0 and ins.summary.mean_score_pct is None
        assert ins.rules == [] and sum(b.calls for b in ins.histogram) == 0


def test_empty_call_text_still_reports(tmp_path: Path) -> None:
    info = CallInfo("silent", "/calls/silent.wav", "0" * 64, 12.0, 8000, 1)
    t = Transcript(info, (Utterance(0.5, 1.0, 0, "", role="agent"),), "whisper", language="zh")
    ins = compute_insights([CallData("silent", t, None, None)])
    assert ins.summary.calls == 1 and ins.topics == [] and ins.summary.complaints == 0
