"""``report agents``, ``insights --db`` and ``db upgrade`` on calls stored by ``transcribe --db``.

The expected figures are worked out here from the transcript and QA files the same run wrote, with the agent and
time read from the file names: the report must agree with the folder.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from store_cli_calls import ENGINES, Stored, folder_calls, stored_calls

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module", params=ENGINES)
def stored(request: pytest.FixtureRequest, evalset: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    with stored_calls(request.param, evalset, tmp_path_factory.mktemp(f"report_{request.param}")) as calls:
        yield calls


def expected(stored: Stored, by: str) -> dict[tuple[str, str], dict]:
    """Per (agent, period): the figures from the folder's files (agent and time from the file names)."""
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for t, qa in folder_calls(stored.out).values():
        agent, stamp, _ = t.call.id.split("_")
        when = datetime.strptime(stamp, "%Y%m%d-%H%M%S")
        iso = when.isocalendar()
        period = f"{iso[0]}-W{iso[1]:02d}" if by == "week" else f"{when.year}-{when.month:02d}"
        groups[(agent, period)].append(qa)
    out = {}
    for key, qas in groups.items():
        rules = {r.id for qa in qas for r in qa.rules if r.graded}
        parties = [qa.metrics["parties"] for qa in qas]
        out[key] = {
            "calls": len(qas),
            "needs_review": sum(qa.needs_review for qa in qas),
            "mean_score_pct": sum(100 * qa.score / qa.max_score for qa in qas) / len(qas),
            "failed_rules": {
                rule: sum(not r.passed for qa in qas for r in qa.rules if r.id == rule and r.graded)
                / sum(r.graded for qa in qas for r in qa.rules if r.id == rule)
                for rule in rules
            },
            "talk_ratio": sum(p["agent"]["talk_time"] for p in parties)
            / sum(p["agent"]["talk_time"] + p["customer"]["talk_time"] for p in parties),
            "customer_sentiment": sum(qa.sentiment["by_party"]["customer"] for qa in qas) / len(qas),
        }
    return out


@pytest.mark.parametrize("by", ["week", "month"])
def test_agent_figures_agree_with_the_folder(stored: Stored, by: str) -> None:
    rc, stdout, stderr = stored.invoke("report", "agents", "--by", by, "--json")
    assert rc == 0, stderr
    rows = [json.loads(line) for line in stdout.splitlines()]
    want = expected(stored, by)
    assert [(r["agent"], r["period"]) for r in rows] == sorted(want)
    assert len({round(w["mean_score_pct"]) for w in want.values()}) == len(want)  # the calls score apart
    for r in rows:
        w = want[(r["agent"], r["period"])]
        assert r["calls"] == r["scored_calls"] == w["calls"]
        assert r["needs_review"] == w["needs_review"]
        assert r["mean_score_pct"] == pytest.approx(w["mean_score_pct"])
        assert r["failed_rules"] == pytest.approx(w["failed_rules"])
        assert r["talk_ratio"] == pytest.approx(w["talk_ratio"], abs=0.01)
        assert r["customer_sentiment"] == pytest.approx(w["customer_sentiment"], abs=1e-6)


def test_report_range_and_files(stored: Stored, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    xlsx, page = tmp_path / "agents.xlsx", tmp_path / "agents.html"
    rc, stdout, stderr = stored.invoke(
        "report", "agents", "--by", "month", "--since", "2024-05-01", "--until", "2024-05-31", "--json",
        "--xlsx", xlsx, "--html", page,
    )  # fmt: skip
    assert rc == 0, stderr
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [(r["agent"], r["period"], r["calls"]) for r in rows] == [("A01", "2024-05", 1), ("A02", "2024-05", 1)]
    sheet = [[c.value for c in row] for row in openpyxl.load_workbook(xlsx).active.iter_rows()]
    assert sheet[0][:3] == ["agent", "month", "calls"] and len(sheet) == 3
    for line, r in zip(sheet[1:], rows, strict=True):
        assert line[:3] == [r["agent"], r["period"], r["calls"]]
        assert line[sheet[0].index("mean_score_pct")] == pytest.approx(r["mean_score_pct"])
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 1 and "<script" not in html and "<link" not in html
    for r in rows:
        assert f"<title>{r['agent']} {r['period']}: {r['mean_score_pct']:.1f}</title>" in html
    # nothing in range: an empty report, still a page
    rc, _, stderr = stored.invoke("report", "agents", "--since", "2030-01-01", "--html", page)
    assert rc == 0 and "no calls in this range" in stderr and "No calls in this range" in page.read_text("utf-8")


def test_insights_from_the_store_match_insights_from_the_folder(stored: Stored, tmp_path: Path) -> None:
    rc, stdout, stderr = stored.invoke("insights", "--out", tmp_path / "db")
    assert rc == 0, stderr
    from typer.testing import CliRunner

    from callscribe.cli import app

    folder = CliRunner().invoke(app, ["insights", str(stored.out), "--out", str(tmp_path / "folder")])
    assert folder.exit_code == 0, folder.stderr
    with (tmp_path / "db" / "calls.csv").open(encoding="utf-8-sig") as fh:
        from_db = {row["call"]: row for row in csv.DictReader(fh)}
    with (tmp_path / "folder" / "calls.csv").open(encoding="utf-8-sig") as fh:
        from_folder = {row["call"]: row for row in csv.DictReader(fh)}
    assert from_db.keys() == from_folder.keys() == {c.ref.id for c in stored.calls}
    for call, row in from_db.items():
        assert row["score_pct"] == from_folder[call]["score_pct"]
        assert row["agent"] == call.split("_")[0]  # the stored agent; the folder alone knows none
    with (tmp_path / "db" / "agents.csv").open(encoding="utf-8-sig") as fh:
        assert {row["agent"]: int(row["calls"]) for row in csv.DictReader(fh)} == {"A01": 2, "A02": 1}
    assert stdout.startswith("3 calls (3 with QA)")


def test_db_upgrade(stored: Stored, tmp_path: Path) -> None:
    rc, _, stderr = stored.invoke("db", "upgrade")
    assert rc == 0 and "schema is up to date" in stderr
    from typer.testing import CliRunner

    from callscribe.cli import app

    res = CliRunner().invoke(app, ["db", "upgrade", "--db", f"sqlite:///{tmp_path / 'new.db'}"])
    assert res.exit_code == 0 and "schema upgraded from empty to" in res.stderr
