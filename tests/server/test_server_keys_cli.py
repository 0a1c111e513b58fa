"""``callscribe keys create`` takes the key's name as an argument or as ``--name``, and refuses none or two."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def keys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    cmd = [sys.executable, "-m", "callscribe", "keys", *args, "--db", db, "--data-dir", str(tmp_path / "data")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_name_as_argument_or_option(tmp_path: Path) -> None:
    by_option = keys(tmp_path, "create", "--name", "crm-bot", "--scope", "ingest")
    assert by_option.returncode == 0, by_option.stderr
    by_argument = keys(tmp_path, "create", "desk", "--scope", "review")
    assert by_argument.returncode == 0, by_argument.stderr
    assert by_option.stdout.strip() != by_argument.stdout.strip()
    listed = keys(tmp_path, "list").stdout
    assert "crm-bot" in listed and "desk" in listed
    assert by_option.stdout.strip() not in listed  # only a prefix is ever shown again


def test_no_name_or_two_names_is_one_line_error(tmp_path: Path) -> None:
    for args, cause in ((("create",), "needs a name"), (("create", "a", "--name", "b"), "two names")):
        r = keys(tmp_path, *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and cause in lines[0], r.stderr
    assert "a" not in keys(tmp_path, "list").stdout.split()
