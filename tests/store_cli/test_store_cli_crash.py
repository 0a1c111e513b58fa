"""``kill -9`` in the middle of ``transcribe --db`` and of ``index``, then run again: the store ends up holding exactly
the calls of the folder, each once and whole (every utterance, its QA), and after each kill it holds only whole
calls whose files are in the folder."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from store_cli_calls import (
    CALLS,
    ENGINES,
    build,
    check_store_matches_folder,
    command,
    count_calls,
    environment,
    folder_calls,
    fresh_url,
    run_cli,
    transcribe_args,
)

pytestmark = pytest.mark.evalset

# Eight calls: the three test calls' turns under other names (other seeds: other audio, other hashes).
MANY = tuple((f"A0{i % 3 + 1}_202405{i + 10:02d}-0900{i:02d}_q{i % 2}", CALLS[i % 3][1]) for i in range(8))
INDEX_CALLS = 240


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_url(request.param, tmp_path) as found:
        yield found


def kill_when(cmd: list[str], env: dict[str, str], ready: Callable[[], bool], timeout: float = 300) -> None:
    """Start ``cmd``, SIGKILL it as soon as ``ready()`` holds, and check it was still running then."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, (
                f"finished before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
            )
            assert time.monotonic() < deadline, "never got far enough to be killed"
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -9


def test_kill_transcribe_db_mid_run(evalset: Path, tmp_path: Path, url: str) -> None:
    build(evalset, tmp_path, MANY)
    out = tmp_path / "out"
    cmd = [*command(tmp_path / "refs", *transcribe_args(tmp_path / "calls", out, "--db", url))]
    env = environment(delay=0.3)
    # first kill: as soon as a call's files are in the folder (its store write may or may not have happened)
    kill_when(cmd, env, lambda: any(out.glob("*.qa.json")))
    stored = check_store_matches_folder(url, out, complete=False)
    assert stored < len(MANY)
    # second kill: once the store holds more calls than before
    kill_when(cmd, env, lambda: count_calls(url) > stored)
    assert check_store_matches_folder(url, out, complete=False) < len(MANY)
    done = run_cli(tmp_path / "refs", *transcribe_args(tmp_path / "calls", out, "--db", url))
    assert done.returncode == 0, done.stderr
    assert check_store_matches_folder(url, out) == len(MANY)


def copies(src: Path, out: Path, n: int) -> None:
    """``n`` transcripts (and QA results) made from the real ones of ``src``, each another recording."""
    out.mkdir()
    found = list(folder_calls(src).values())
    for i in range(n):
        t, qa = found[i % len(found)]
        name = f"copy{i:04d}_{t.call.id}"
        sha = hashlib.sha256(f"{i}:{t.call.sha256}".encode()).hexdigest()
        call = dataclasses.replace(t.call, id=name, sha256=sha, path=str(Path(t.call.path).with_name(name + ".wav")))
        (out / f"{name}.json").write_text(dataclasses.replace(t, call=call).to_json(), encoding="utf-8")
        assert qa is not None
        qa_text = dataclasses.replace(qa, call_id=name).to_dict()
        (out / f"{name}.qa.json").write_text(json.dumps(qa_text, ensure_ascii=False), encoding="utf-8")


def test_kill_index_mid_run(evalset: Path, tmp_path: Path, url: str) -> None:
    build(evalset, tmp_path)
    done = run_cli(tmp_path / "refs", *transcribe_args(tmp_path / "calls", tmp_path / "done"))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    copies(tmp_path / "done", out, INDEX_CALLS)
    cmd = command(tmp_path / "refs", "index", out, "--db", url)
    kill_when(cmd, environment(), lambda: count_calls(url) >= 20)
    first = check_store_matches_folder(url, out, complete=False)
    assert 20 <= first < INDEX_CALLS
    kill_when(cmd, environment(), lambda: count_calls(url) >= first + 40)
    assert check_store_matches_folder(url, out, complete=False) < INDEX_CALLS
    again = run_cli(tmp_path / "refs", "index", out, "--db", url)
    assert again.returncode == 0, again.stderr
    assert f"indexed {INDEX_CALLS} of {INDEX_CALLS} transcripts" in again.stderr
    assert check_store_matches_folder(url, out) == INDEX_CALLS
