"""Prepared calls shipped between processes (no Ray needed): a call prepared, pickled, unpacked and heard by a
``ShippedPipeline`` comes out exactly as the local executor makes it, spooled or in memory; a bad file fails with
the local executor's own line."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest
import ray_exec_engine
from ray_exec_calls import ZH_CALLS, build

from callscribe.executors import shipped
from callscribe.executors.shipped import ShippedPipeline, prepare_call
from callscribe.model import Transcript
from callscribe.options import Options
from callscribe.pipeline import CallError, Pipeline

pytestmark = pytest.mark.evalset


def _options(refs: Path) -> Options:
    return Options.build(
        {"engine": ray_exec_engine.ENGINE, "model": str(refs), "language": "zh", "channel_roles": ("agent", "customer")}
    )


def _same(a: Transcript | CallError, b: Transcript | CallError) -> None:
    assert type(a) is type(b)
    if isinstance(a, Transcript) and isinstance(b, Transcript):
        assert replace(a, timings={}) == replace(b, timings={})
        assert set(a.timings) == set(b.timings)
    else:
        assert a == b


@pytest.fixture(scope="module")
def calls(evalset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("shipped")
    refs = build(evalset, root, ZH_CALLS[:3])
    bad = root / "calls" / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    return refs, [*sorted((root / "calls").glob("call_*.wav")), bad]


@pytest.mark.parametrize("spool_after_s", [None, 1.0])
def test_shipped_calls_match_local(
    calls: tuple[Path, list[Path]], monkeypatch: pytest.MonkeyPatch, spool_after_s: float | None
) -> None:
    refs, paths = calls
    options = _options(refs)
    local = {(r.call.path if isinstance(r, Transcript) else r.path): r for r in Pipeline(options).run(
        [(str(p), f"sha-{p.stem}") for p in paths])}  # fmt: skip
    prepped = [prepare_call(Pipeline(options), str(p), f"sha-{p.stem}") for p in paths]
    headers = [h for h, _ in prepped]
    assert [h.error is None for h in headers] == [True, True, True, False]
    assert headers[-1].error == local[str(paths[-1])]  # same stage, same one line
    assert all(h.clips > 0 and h.duration > 3 and h.nbytes > 0 for h in headers[:-1])
    travelled = [pickle.loads(pickle.dumps(c)) for _, c in prepped if c is not None]
    if spool_after_s is not None:  # the engine side spools long calls to temp files, as decoding does
        monkeypatch.setattr(shipped, "SPOOL_AFTER_S", spool_after_s)
        assert shipped.unpack(travelled[0], options).audio.spooled
    results = ShippedPipeline(options).run_shipped(travelled)
    assert len(results) == 3
    for result in results:
        assert isinstance(result, Transcript)
        assert result.utterances and {u.role for u in result.utterances} == {"agent", "customer"}
        _same(result, local[result.call.path])


def test_unshipped_source_is_prepared_here(calls: tuple[Path, list[Path]]) -> None:
    refs, paths = calls
    pipeline = ShippedPipeline(_options(refs))
    (result,) = list(pipeline.run([(str(paths[0]), "sha")]))
    assert isinstance(result, Transcript) and result.call.path == str(paths[0])
