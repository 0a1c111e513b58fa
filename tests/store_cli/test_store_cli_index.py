"""``index`` of a folder transcribed without a database, ``transcribe --db`` catching up on such a folder, and call
metadata (CSV sidecar over file-name pattern) landing in the store where search and reports filter on it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from store_cli_calls import (
    ENGINES,
    NAME_PATTERN,
    build,
    check_store_matches_folder,
    fresh_url,
    run_cli,
    transcribe_args,
)
from typer.testing import CliRunner

from callscribe.cli import app
from callscribe.store import Store

pytestmark = pytest.mark.evalset


@dataclass(frozen=True)
class Folder:
    refs: Path
    calls: Path
    out: Path  # transcribed with QA, no database


@pytest.fixture(scope="module")
def folder(evalset: Path, tmp_path_factory: pytest.TempPathFactory) -> Folder:
    tmp = tmp_path_factory.mktemp("index")
    build(evalset, tmp)
    done = run_cli(tmp / "refs", *transcribe_args(tmp / "calls", tmp / "out"))
    assert done.returncode == 0, done.stderr
    return Folder(tmp / "refs", tmp / "calls", tmp / "out")


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_url(request.param, tmp_path) as found:
        yield found


def invoke(*args: str | Path) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, res.stdout, res.stderr


def test_index_imports_a_folder_and_is_idempotent(folder: Folder, url: str) -> None:
    rc, _, stderr = invoke("index", folder.out, "--db", url, "--name-pattern", NAME_PATTERN)
    assert rc == 0, stderr
    assert stderr.strip().endswith(
        "indexed 3 of 3 transcripts from " + str(folder.out) + " (3 new, 0 updated), 0 bad file(s)"
    )
    assert check_store_matches_folder(url, folder.out) == 3
    with Store(url) as store:
        before = {s.sha256: (s.id, s.agent_id, s.call_time) for s in store.calls(limit=None)}
    assert {agent for _, agent, _ in before.values()} == {"A01", "A02"}
    rc, _, stderr = invoke("index", folder.out, "--db", url)  # again, without metadata: kept as stored
    assert rc == 0 and "(0 new, 3 updated), 0 bad file(s)" in stderr
    assert check_store_matches_folder(url, folder.out) == 3
    with Store(url) as store:
        assert {s.sha256: (s.id, s.agent_id, s.call_time) for s in store.calls(limit=None)} == before
    rc, stdout, _ = invoke("search", "景德镇", "--db", url, "--json")
    assert rc == 0 and [json.loads(line)["call_name"] for line in stdout.splitlines()] == ["A02_20240514-141500_sales"]


def test_bad_files_are_one_line_each_and_the_rest_go_on(folder: Folder, url: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(folder.out, out)
    (out / "broken.json").write_text("{not json", encoding="utf-8")
    (out / "other.json").write_text('{"a": 1}', encoding="utf-8")
    (out / "A01_20240506-093000_billing.qa.json").write_text("[]", encoding="utf-8")
    rc, _, stderr = invoke("index", out, "--db", url)
    assert rc == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 4, stderr
    assert any(line.startswith(f"skipped: {out / 'broken.json'}: not a transcript") for line in lines)
    assert any(line.startswith(f"skipped: {out / 'other.json'}: not a transcript") for line in lines)
    assert any(line.startswith(f"no QA: {out / 'A01_20240506-093000_billing.qa.json'}: not a QA") for line in lines)
    assert lines[-1].endswith("(3 new, 0 updated), 3 bad file(s)")
    with Store(url) as store:
        qa = {s.name: s.score for s in store.calls(limit=None)}
    assert qa["A01_20240506-093000_billing"] is None and None not in (qa["A02_20240514-141500_sales"],)


def test_metadata_csv_wins_over_the_name_and_filters_search_and_report(
    folder: Folder, url: str, tmp_path: Path
) -> None:
    sidecar = tmp_path / "calls.csv"
    sidecar.write_text(
        "file,agent_id,call_time,queue,tier\n"
        "calls/A02_20240514-141500_sales.wav,B09,2024-07-01T08:00:00+08:00,vip,gold\n"
        "A01_20240603-110000_sales.wav,,,,silver\n",
        encoding="utf-8",
    )
    rc, _, stderr = invoke("index", folder.out, "--db", url, "--metadata", sidecar, "--name-pattern", NAME_PATTERN)
    assert rc == 0, stderr
    with Store(url) as store:
        got = {s.name: (s.agent_id, s.call_time, s.queue, s.meta) for s in store.calls(limit=None)}
    assert got == {
        "A02_20240514-141500_sales": ("B09", datetime(2024, 7, 1, 0, 0, tzinfo=timezone.utc), "vip", {"tier": "gold"}),
        "A01_20240603-110000_sales": (
            "A01",
            datetime(2024, 6, 3, 11, tzinfo=timezone.utc),
            "sales",
            {"tier": "silver"},
        ),
        "A01_20240506-093000_billing": ("A01", datetime(2024, 5, 6, 9, 30, tzinfo=timezone.utc), "billing", {}),
    }
    hits = lambda *a: invoke("search", "希望", "--db", url, "--json", *a)  # noqa: E731 - said in calls of A01 and B09
    assert [json.loads(x)["agent_id"] for x in hits("--agent", "B09")[1].splitlines()] == ["B09"]
    assert hits("--agent", "A02")[0] == 1
    assert [json.loads(x)["agent_id"] for x in hits("--since", "2024-06-30")[1].splitlines()] == ["B09"]
    rc, stdout, _ = invoke("report", "agents", "--db", url, "--by", "month", "--json")
    rows = [(r["agent"], r["period"], r["calls"]) for r in map(json.loads, stdout.splitlines())]
    assert rows == [("A01", "2024-05", 1), ("A01", "2024-06", 1), ("B09", "2024-07", 1)]


def test_malformed_sidecar_stops_before_any_work(folder: Folder, tmp_path: Path) -> None:
    sidecar = tmp_path / "calls.csv"
    sidecar.write_text("file,agent_id,call_time\na.wav,A1,2024-05-01\nb.wav,A2,05/01/2024\n", encoding="utf-8")
    db = tmp_path / "never.db"
    rc, _, stderr = invoke("index", folder.out, "--db", f"sqlite:///{db}", "--metadata", sidecar)
    assert rc == 2 and stderr.strip().splitlines() == [
        f"error: {sidecar}:3: call_time '05/01/2024' is not an ISO 8601 date-time"
    ]
    assert not db.exists()
    out = tmp_path / "out"
    done = run_cli(folder.refs, *transcribe_args(folder.calls, out, "--db", f"sqlite:///{db}", "--metadata", sidecar))
    assert done.returncode == 2 and f"{sidecar}:3:" in done.stderr and "engine:" not in done.stderr
    assert not db.exists() and not list(out.glob("*.json"))


def test_transcribe_db_stores_a_folder_done_without_it_and_reruns_change_nothing(
    folder: Folder, url: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(folder.out, out)
    args = transcribe_args(folder.calls, out, "--db", url, "--name-pattern", NAME_PATTERN)
    done = run_cli(folder.refs, *args)
    assert done.returncode == 0, done.stderr
    assert "3 (0 transcribed, 3 already done, 0 failed)" in done.stderr  # read back, not transcribed again
    assert "database: 3 calls stored (3 new)" in done.stderr
    assert check_store_matches_folder(url, out) == 3
    again = run_cli(folder.refs, *transcribe_args(folder.calls, out, "--db", url))
    assert again.returncode == 0 and "database: 0 calls stored (0 new)" in again.stderr
    assert check_store_matches_folder(url, out) == 3
