"""The pipeline's clip pool: clips of several calls gathered, sorted into length buckets, each heard exactly once.

Real calls (the example calls and two-party calls built from evalset-dev speech) go through the real decoder, VAD,
speaker stage, clip cutter, coverage check and assembly. Recognition is the reference stand-in engine (each call
"hears" its own reference turns), given a ``batch_size`` so the pipeline treats it as an engine that pads rows.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from speakers_calls import HeardTurn, ReferenceEngine, example_turns

from callscribe import pipeline as pipeline_module
from callscribe.engines.base import Clip, EngineOptions, EngineResult
from callscribe.eval.calls import CallSpec, TurnSpec, build_calls
from callscribe.model import Transcript
from callscribe.pipeline import CallError, Pipeline, _Call

A, C = "agent", "customer"
SPECS = (
    CallSpec("pool_zh_dense", "zh", "mono", 16000,
             (TurnSpec(A, ("cosyvoice",)), TurnSpec(C, ("aishell1",)), TurnSpec(A, ("aishell2",)),
              TurnSpec(C, ("wenetspeech",)), TurnSpec(A, ("cosyvoice",)), TurnSpec(C, ("aishell1",)))),
    CallSpec("pool_zh_long", "zh", "mono", 16000,
             (TurnSpec(A, ("soulx",)), TurnSpec(C, ("fireredtts2:rest",)), TurnSpec(A, ("soulx",)),
              TurnSpec(C, ("fireredtts2", "fireredtts2"), stretch=True), TurnSpec(A, ("soulx",)))),
    CallSpec("pool_zh_stereo", "zh", "stereo", 8000,
             (TurnSpec(C, ("wenetspeech",)), TurnSpec(A, ("cosyvoice",)), TurnSpec(C, ("fireredtts2",)),
              TurnSpec(A, ("soulx",)), TurnSpec(C, ("aishell1",)), TurnSpec(A, ("cosyvoice",))),
             bleed_db=-20.0, bleed_delay_ms=30.0),
    CallSpec("pool_en_stereo", "en", "stereo", 8000,
             (TurnSpec(A, ("librispeech",)), TurnSpec(C, ("timit",)), TurnSpec(A, ("ljspeech",)),
              TurnSpec(C, ("pocketsphinx",)), TurnSpec(A, ("jfk",))), bleed_db=-30.0, bleed_delay_ms=50.0),
    CallSpec("pool_en_mono", "en", "mono", 16000,
             (TurnSpec(C, ("jfk",)), TurnSpec(A, ("librispeech",)), TurnSpec(C, ("jfk",), stretch=True))),
)  # fmt: skip
AGAIN = tuple(replace(spec, id=spec.id + "_again") for spec in SPECS)
N_BUILT = len(SPECS) + len(AGAIN)
EXAMPLE_CALLS = ("zh_billing_stereo_8k.wav", "en_broadband_mono.mp3", "en_callback_mono_8k.wav")
BATCH = 16  # pool factor 1: 32 clips a pool (two batches); the default factor 4: 64


class PerCallReference:
    """The reference stand-in for many calls at once: each clip is heard against its own call's turns."""

    name = "reference"

    def __init__(self, turns: dict[str, Sequence[HeardTurn]], batch_size: int | None = BATCH) -> None:
        self.engines = {call_id: ReferenceEngine(ts) for call_id, ts in turns.items()}
        if batch_size is not None:
            self.batch_size = batch_size
        self.fail_call: str | None = None  # any engine call holding a clip of this call raises

    def transcribe(self, clips: Sequence[Clip], options: EngineOptions) -> list[EngineResult]:
        if self.fail_call is not None and any(c.call_id == self.fail_call for c in clips):
            raise RuntimeError(f"engine refused a clip of {self.fail_call}")
        return [self.engines[c.call_id].transcribe([c], options)[0] for c in clips]

    def describe(self) -> str:
        return "reference turns, per call"


class RecordingPipeline(Pipeline):
    """The real pipeline; each first-pass engine call (what ``_hear`` is given) is written down."""

    def __init__(self, engine: PerCallReference) -> None:
        super().__init__(None, engine=engine)  # type: ignore[arg-type]
        self.groups: list[list[tuple[str, int, int, float]]] = []

    def _hear(self, batch: list[tuple[_Call, Clip]], engine_time: dict[int, float]) -> list:  # type: ignore[override]
        self.groups.append([(c.call_id, c.channel, c.index, c.duration) for _, c in batch])
        return super()._hear(batch, engine_time)


@pytest.fixture(scope="module")
def calls(evalset: Path, examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], dict]:
    folder = tmp_path_factory.mktemp("pool-calls")
    built = build_calls(evalset, folder, SPECS) + build_calls(evalset, folder, AGAIN, seed=7)  # other gaps, bleed
    assert len(built) == N_BUILT
    paths = [b.audio_path for b in built] + [examples_dir / name for name in EXAMPLE_CALLS]
    turns = {b.ref.id: [HeardTurn(t.start, t.end, t.text, t.party) for t in b.ref.turns] for b in built}
    turns.update({Path(name).stem: example_turns(examples_dir, name) for name in EXAMPLE_CALLS})
    return paths, turns


def run(paths: list[Path], engine: PerCallReference, **kwargs: object) -> tuple[RecordingPipeline, dict, list[int]]:
    pipe = RecordingPipeline(engine)
    progress: list[int] = []
    out: dict[str, Transcript | CallError] = {}
    for item in pipe.run(((p, "") for p in paths), on_clip_batch=progress.append, **kwargs):  # type: ignore[arg-type]
        out[item.path if isinstance(item, CallError) else item.call.path] = item
    return pipe, out, progress


def padding(groups: list[list[tuple[str, int, int, float]]]) -> float:
    """Share of each batch's longest-clip time that the shorter clips leave empty."""
    longest = sum(max(d for *_, d in g) * len(g) for g in groups)
    return sum(max(d for *_, d in g) - d for g in groups for *_, d in g) / longest


def content(t: Transcript | CallError) -> object:
    return t if isinstance(t, CallError) else replace(t, timings={})


@pytest.fixture(scope="module")
def before_after(calls: tuple[list[Path], dict]) -> tuple:
    paths, turns = calls
    return run(paths, PerCallReference(turns), pool_factor=1), run(paths, PerCallReference(turns))


def test_pool_sorts_clips_of_several_calls_into_length_buckets(before_after: tuple) -> None:
    (one, _, _), (four, _, _) = before_after
    for groups in (one.groups, four.groups):
        assert all(0 < len(g) <= BATCH for g in groups)
    assert sum(len(g) for g in four.groups) > 4 * BATCH  # more than one pool
    # batches mix calls, and within a batch clips come longest first
    assert max(len({call for call, *_ in g}) for g in four.groups) >= 3
    assert all([d for *_, d in g] == sorted((d for *_, d in g), reverse=True) for g in four.groups)
    assert padding(four.groups) < padding(one.groups), (padding(one.groups), padding(four.groups))


def test_every_clip_heard_once_and_outputs_unchanged(before_after: tuple) -> None:
    (one, out_one, progress_one), (four, out_four, progress_four) = before_after
    heard_one = [key[:3] for g in one.groups for key in g]
    heard_four = [key[:3] for g in four.groups for key in g]
    assert len(heard_four) == len(set(heard_four))
    assert sorted(heard_one) == sorted(heard_four)
    assert sum(progress_four) == len(heard_four) and len(progress_four) == len(four.groups)
    assert sum(progress_one) == len(heard_one)
    assert out_one.keys() == out_four.keys() and len(out_four) == N_BUILT + len(EXAMPLE_CALLS)
    assert all(isinstance(t, Transcript) and t.utterances for t in out_four.values())
    for path, t in out_four.items():
        assert content(t) == content(out_one[path]), path


def test_a_failing_call_is_lost_alone(calls: tuple[list[Path], dict], before_after: tuple) -> None:
    paths, turns = calls
    engine = PerCallReference(turns)
    engine.fail_call = "pool_zh_long"
    _, out, _ = run(paths, engine)
    (_, good, _) = before_after[1]
    failed = [p for p, t in out.items() if isinstance(t, CallError)]
    assert [Path(p).stem for p in failed] == ["pool_zh_long"]
    assert out[failed[0]].stage == "engine" and "engine refused" in str(out[failed[0]])
    for path, t in out.items():
        if path not in failed:
            assert content(t) == content(good[path]), path


def test_engines_without_a_batch_size_keep_arrival_order(calls: tuple[list[Path], dict]) -> None:
    paths, turns = calls
    pipe, out, _ = run(paths, PerCallReference(turns, batch_size=None))
    assert all(len(g) <= pipeline_module.MIN_CLIPS_PER_ENGINE_CALL for g in pipe.groups)
    order = [key[:3] for g in pipe.groups for key in g]
    calls_seen = list(dict.fromkeys(call for call, *_ in order))
    assert calls_seen == [p.stem for p in paths]  # one call after another
    for call in calls_seen:
        mine = [(ch, i) for c, ch, i in order if c == call]
        assert [i for _, i in mine] == sorted(i for _, i in mine)
    assert all(isinstance(t, Transcript) for t in out.values())


class LateFeed:
    """Sources the way the service hands them over: ``StopIteration`` means "nothing now", not "never"."""

    def __init__(self, first: Path) -> None:
        self.ready = [first]
        self.asked_after_empty = 0

    def __iter__(self) -> LateFeed:
        return self

    def __next__(self) -> tuple[Path, str]:
        if not self.ready:
            self.asked_after_empty += 1
            raise StopIteration
        return self.ready.pop(0), ""


def test_a_call_arriving_while_the_run_hears_joins_it(calls: tuple[list[Path], dict]) -> None:
    """A source that turns up after the feed once ran dry is taken into the running run, not left for the next."""
    paths, turns = calls
    first, late = paths[1], paths[0]  # a long call heard over several engine calls, then a short one
    feed = LateFeed(first)
    pipe = RecordingPipeline(PerCallReference(turns))

    def arrived(_clips: int) -> None:
        if len(pipe.groups) == 1:
            feed.ready.append(late)

    out = [item for item in pipe.run(feed, on_clip_batch=arrived)]
    assert len(out) == 2 and all(isinstance(t, Transcript) and t.utterances for t in out)
    assert sorted(t.call.path for t in out if isinstance(t, Transcript)) == sorted([str(first), str(late)])
    assert {call for g in pipe.groups for call, *_ in g} == {first.stem, late.stem}
    alone = run([late], PerCallReference(turns))[1][str(late)]
    late_out = next(t for t in out if isinstance(t, Transcript) and t.call.path == str(late))
    assert content(late_out) == content(alone)


def test_fair_runs_let_a_short_call_in_before_a_long_one_ends(calls: tuple[list[Path], dict]) -> None:
    """``fair`` (the service): calls' clips take turns, so a short call queued behind a long one is not left
    waiting for every clip of it; arrival order (the batch runner) hears the long call first. Same transcripts."""
    paths, turns = calls
    long, short = paths[1], next(p for p in paths if p.stem == "pool_en_mono")  # 6 clips, 3 clips
    short_ready = threading.Event()

    class InOrder(RecordingPipeline):
        def prepare(self, source: Any, **kwargs: Any) -> _Call:  # the short call is prepared first, always
            if Path(source) == long:
                assert short_ready.wait(60)
            call = super().prepare(source, **kwargs)
            if Path(source) == short:
                short_ready.set()
            return call

    runs = {}
    for fair in (False, True):
        short_ready.clear()
        engine = PerCallReference(turns, batch_size=None)
        engine.clips_per_call = 2  # type: ignore[attr-defined]
        pipe = InOrder(engine)
        out = {t.call.path: t for t in pipe.run([(long, ""), (short, "")], fair=fair) if isinstance(t, Transcript)}
        assert len(out) == 2 and all(len(g) <= 2 for g in pipe.groups)
        runs[fair] = out, [{call for call, *_ in g} for g in pipe.groups]
    (plain, plain_groups), (fair_out, fair_groups) = runs[False], runs[True]
    last_long = max(i for i, g in enumerate(fair_groups) if long.stem in g)
    last_short = max(i for i, g in enumerate(fair_groups) if short.stem in g)
    assert last_short < last_long and any(g == {long.stem, short.stem} for g in fair_groups)
    assert max(i for i, g in enumerate(plain_groups) if long.stem in g) < min(
        i for i, g in enumerate(plain_groups) if short.stem in g
    )
    for path, t in fair_out.items():
        assert content(t) == content(plain[path]), path
