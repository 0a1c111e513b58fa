"""Call metadata from a CSV sidecar and from file names: parsing, matching, precedence, one-line errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from callscribe.callmeta import CallFields, MetadataCsv, MetadataError, MetadataSource, NamePattern


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_by_name_and_by_relative_path(tmp_path: Path) -> None:
    csv_path = write(
        tmp_path / "calls.csv",
        "file,agent_id,call_time,queue,campaign\n"
        "a.wav,A01,2024-05-01T09:30:00,billing,spring\n"
        "site2/a.wav,A02,2024-05-02 10:00:00+08:00,sales,\n"
        "\n"
        "b.mp3,,,,\n",
    )
    meta = MetadataCsv(csv_path)
    # a bare name matches any folder; a path matches only that folder, and the longer match wins
    one = meta.lookup("/data/in/site1/a.wav")
    two = meta.lookup("/data/in/site2/a.wav")
    assert one == CallFields("A01", datetime(2024, 5, 1, 9, 30), "billing", {"campaign": "spring"})
    assert two is not None and two.agent_id == "A02" and two.queue == "sales" and two.extra == {}
    assert two.call_time == datetime(2024, 5, 2, 10, tzinfo=timezone(timedelta(hours=8)))
    assert meta.lookup("x/b.mp3") == CallFields()
    assert meta.lookup("c.wav") is None
    assert meta.lookup("xa.wav") is None  # whole path parts, not string suffixes


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ("file,agent_id,call_time\na.wav,A1,yesterday\n", ":2:", "call_time 'yesterday'"),
        ("file,agent_id\na.wav,A1\nb.wav\n", ":3:", "1 columns where the header has 2"),
        ("file,agent_id\na.wav,A1\na.wav,A2\n", ":3:", "already described on line 2"),
        ("file,agent_id\n,A1\n", ":2:", "file column is empty"),
        ("agent_id,queue\nA1,q\n", ":1:", "needs a 'file' column"),
    ],
)
def test_malformed_csv_is_one_line_naming_file_and_line(tmp_path: Path, body: str, where: str, says: str) -> None:
    path = write(tmp_path / "calls.csv", body)
    with pytest.raises(MetadataError) as info:
        MetadataCsv(path)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert f"{path}{where}" in message and says in message


def test_every_malformed_row_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "calls.csv", "file,call_time\na.wav,nope\nb.wav,2024-05-01\nc.wav,13/2024\n")
    with pytest.raises(MetadataError) as info:
        MetadataCsv(path)
    lines = str(info.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{path}:2", f"{path}:4"]


def test_missing_csv_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="no such file"):
        MetadataCsv(tmp_path / "nope.csv")


def test_name_pattern_with_time_format() -> None:
    pattern = NamePattern("{agent_id}_{call_time:%Y%m%d-%H%M%S}_{queue}")
    got = pattern.match("/rec/A07_20240501-093000_billing.wav")
    assert got == CallFields("A07", datetime(2024, 5, 1, 9, 30), "billing", {})
    # agent ids with underscores: the shortest agent that lets the rest match
    assert pattern.match("x/team_7_20240501-093000_after_hours.mp3") == CallFields(
        "team_7", datetime(2024, 5, 1, 9, 30), "after_hours", {}
    )


def test_name_pattern_iso_time_extra_fields_and_wildcard(caplog: pytest.LogCaptureFixture) -> None:
    pattern = NamePattern("{site}-{_}-{agent_id}@{call_time}")
    got = pattern.match("sz-0001-A3@2024-05-01T08:15:00.wav")
    assert got == CallFields("A3", datetime(2024, 5, 1, 8, 15), None, {"site": "sz"})
    assert pattern.match("nothing-like-it.wav") is None
    assert "does not match --name-pattern" in caplog.text


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("{agent_id}_{call_time:%Q}", "%Q"),
        ("{agent_id}_{agent_id}", "appears twice"),
        ("{agent_id:%Y}", "only call_time takes a format"),
        ("plain-name", "names no field"),
        ("{agent_id}_{queue", "unbalanced"),
    ],
)
def test_bad_name_pattern_is_one_line(pattern: str, says: str) -> None:
    with pytest.raises(MetadataError) as info:
        NamePattern(pattern)
    assert says in str(info.value) and len(str(info.value).splitlines()) == 1


def test_csv_wins_over_the_name(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "calls.csv", "file,agent_id,tier\nA07_20240501-093000_billing.wav,A99,gold\n")
    source = MetadataSource.load(csv_path, "{agent_id}_{call_time:%Y%m%d-%H%M%S}_{queue}")
    got = source.fields("/rec/A07_20240501-093000_billing.wav")
    assert got == CallFields("A99", datetime(2024, 5, 1, 9, 30), "billing", {"tier": "gold"})
    # a file the CSV does not know keeps what its name says
    assert source.fields("/rec/B01_20240601-120000_sales.wav").agent_id == "B01"
    assert not MetadataSource.load(None, None).active
    assert MetadataSource.load(None, None).meta("/rec/x.wav") is None
