"""Length buckets across calls: padding, rows per batch and wall time of the qwen3 engine inside the pipeline.

Whole two-party calls built from evalset-dev speech (``benchmarks/calls.py``'s calls, ``--copies`` times with other
gaps and bleed) go through ``callscribe.Pipeline`` with the ``qwen3`` engine on the tiny random-weight Qwen3-ASR
(``tests/engines_qwen/tiny_qwen.py``, CPU), three ways:

- ``before``: a pool of one engine call as before (``max(32, batch)`` clips in arrival order, sorted by the engine);
- ``engine``: a pool of ``POOL_FACTOR`` batches handed to the engine in one call (the engine sorts it);
- ``pipeline``: the same pool sorted by the pipeline and heard one batch per engine call (the default).

What the model saw is read with hooks on the real model (nothing in the engine is changed): every prompt pass gives
the batch's rows and each row's mel frames. Padded frames per batch = sum over batches of (longest - own) mel frames
(100 a second), over the batches; padded audio = the same sum / sum of longest; decoder row-steps = rows x steps,
summed (every row decodes until its batch's budget runs out, since the random model never stops and the output
length is forced from the longest clip: ``--tokens-per-second``, default 12 characters a second for the tiny
byte-level tokenizer, about 4 real Qwen tokens). Second decodes the pipeline asks for (coverage) are counted apart.
Call latency = when each call came out of ``run()``, from the start. Engine-thread CPU = CPU time of the thread that
runs ``run()`` and the engine (decoding and VAD run in other threads): on a shared machine it is steadier than wall
time.

    python benchmarks/qwen3_bucketing.py [--batch-sizes 16,32] [--copies 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "engines_qwen"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from calls import CALLS  # noqa: E402
from tiny_qwen import build_qwen_asr  # noqa: E402

from callscribe import pipeline as pipeline_module  # noqa: E402
from callscribe.engines import base  # noqa: E402
from callscribe.eval.calls import DEFAULT_SEED, build_calls, load_pieces  # noqa: E402
from callscribe.pipeline import CallError, Pipeline  # noqa: E402

EVALSET = ROOT.parent / "shared" / "evalset-dev"
MODES = ("before", "engine", "pipeline")
FEATURE_MASKS = ("feature_attention_mask", "input_features_mask", "feature_mask")


def torch_model(engine: Any) -> Any:
    """The torch module the qwen3 engine generates with (qwen-asr or transformers-native backend)."""
    backend = getattr(engine, "backend", None)
    model = getattr(backend, "model", None)
    if model is None:
        model = engine.asr.model
    return model


class BatchSpy:
    """Hooks on the model's prompt pass and decode steps: rows, mel frames per row and steps of every batch."""

    def __init__(self, engine: Any) -> None:
        model = torch_model(engine)
        self.module = getattr(model, "thinker", model)  # the module whose forward gets the audio features
        self.batches: list[dict[str, Any]] = []
        self.second = False  # set while the pipeline runs a second decode
        self._hook = self.module.register_forward_pre_hook(self._forward, with_kwargs=True)

    def _forward(self, _module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        features = kwargs.get("input_features")
        if features is None:
            if self.batches:
                self.batches[-1]["steps"] += 1
            return
        mask = next((kwargs[k] for k in FEATURE_MASKS if kwargs.get(k) is not None), None)
        lens = [int(x) for x in mask.sum(-1).tolist()] if mask is not None else []
        rows = int(kwargs["input_ids"].shape[0]) if kwargs.get("input_ids") is not None else len(lens)
        self.batches.append({"rows": rows, "frames": lens, "steps": 1, "second": self.second})

    def reset(self) -> None:
        self.batches = []

    def close(self) -> None:
        self._hook.remove()


class SpyPipeline(Pipeline):
    """The real pipeline; second decodes (coverage) are marked so their batches are counted apart."""

    spy: BatchSpy | None = None

    def _hear_again(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.spy is not None:
            self.spy.second = True
        try:
            return super()._hear_again(*args, **kwargs)
        finally:
            if self.spy is not None:
                self.spy.second = False


def summarize(batches: list[dict[str, Any]]) -> dict[str, Any]:
    first = [b for b in batches if not b["second"]]
    longest = sum(max(b["frames"]) * len(b["frames"]) for b in first if b["frames"])
    padded = sum(max(b["frames"]) - f for b in first if b["frames"] for f in b["frames"])
    rows = [b["rows"] for b in first]
    return {
        "batches": len(first),
        "rows_per_batch": round(sum(rows) / len(rows), 2) if rows else 0.0,
        "padded_audio": round(padded / longest, 4) if longest else 0.0,
        "padded_frames_per_batch": round(padded / len(first), 1) if first else 0.0,
        "decode_steps": sum(b["steps"] for b in first),
        "row_steps": sum(b["rows"] * b["steps"] for b in first),
        "second_decode_batches": len(batches) - len(first),
    }


@contextmanager
def mode_settings(mode: str) -> Iterator[int | None]:
    """The pool factor for ``mode`` (and the pipeline-or-engine switch while it runs)."""
    saved = pipeline_module.BUCKETS_IN_PIPELINE
    pipeline_module.BUCKETS_IN_PIPELINE = mode != "engine"
    try:
        yield 1 if mode == "before" else None
    finally:
        pipeline_module.BUCKETS_IN_PIPELINE = saved


def run_mode(engine: Any, spy: BatchSpy, files: list[Path], batch: int, mode: str, args: Any) -> dict[str, Any]:
    extra = {"recover": False, "force_length": True, "tokens_per_second": args.tokens_per_second, "token_margin": 0}
    pipe = SpyPipeline({"engine": "qwen3", "batch_size": batch, "extra": extra}, engine=engine)
    pipe.spy = spy
    spy.reset()
    done: list[float] = []
    failed = 0
    heard = 0

    def progress(n: int) -> None:
        nonlocal heard
        heard += n

    started, cpu0, main0 = time.perf_counter(), time.process_time(), time.thread_time()
    with mode_settings(mode) as factor:
        for item in pipe.run(((f, "") for f in files), on_clip_batch=progress, pool_factor=factor):
            done.append(time.perf_counter() - started)
            failed += isinstance(item, CallError)
    wall = time.perf_counter() - started
    cpu, main_cpu = time.process_time() - cpu0, time.thread_time() - main0
    done.sort()
    return {
        "batch_size": batch,
        "mode": mode,
        "calls": len(done),
        "failed": failed,
        "clips": heard,
        **summarize(spy.batches),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "engine_thread_cpu_s": round(main_cpu, 2),
        "first_call_s": round(done[0], 2) if done else None,
        "mean_call_s": round(sum(done) / len(done), 2) if done else None,
        "last_call_s": round(done[-1], 2) if done else None,
    }


def build(args: Any, work: Path) -> tuple[list[Path], Path]:
    if not (Path(args.evalset) / "manifest.jsonl").is_file():
        raise SystemExit(f"{args.evalset}: evalset-dev not found (pass --evalset)")
    pieces = load_pieces(args.evalset, {s.lang for s in CALLS})
    files: list[Path] = []
    for k in range(args.copies):
        specs = [replace(s, id=f"{s.id}_{k}") for s in CALLS]
        files += [b.audio_path for b in build_calls(args.evalset, work / "calls", specs, DEFAULT_SEED + k, pieces)]
    model = work / "tiny-qwen3"
    if not (model / "config.json").is_file():
        build_qwen_asr(model)
    return files, model


HEADER = ("batch", "mode", "calls", "clips", "batches", "rows/batch", "padded frames/batch", "padded audio %",
          "decode steps", "row-steps",
          "2nd-decode batches", "engine-thread CPU s", "wall s", "first call s", "mean call s",
          "last call s")  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        cells = [r["batch_size"], r["mode"], r["calls"], r["clips"], r["batches"], r["rows_per_batch"],
                 r["padded_frames_per_batch"], f"{100 * r['padded_audio']:.1f}", r["decode_steps"], r["row_steps"],
                 r["second_decode_batches"],
                 r["engine_thread_cpu_s"], r["wall_s"], r["first_call_s"], r["mean_call_s"],
                 r["last_call_s"]]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", default="16,32")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--copies", type=int, default=3, help="each call built this many times (other seeds)")
    parser.add_argument("--tokens-per-second", type=float, default=12.0, help="forced output rate (tiny tokenizer)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared CPU)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per mode, interleaved; the least CPU is kept")
    parser.add_argument("--evalset", default=str(EVALSET))
    parser.add_argument("--workdir", default=None, help="where calls and the tiny model are built (default: temp)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if set(modes) - set(MODES):
        parser.error(f"modes: choose from {', '.join(MODES)}")
    with tempfile.TemporaryDirectory(prefix="callscribe-bucketing-") as tmp:
        work = Path(args.workdir or tmp)
        files, model = build(args, work)
        rows = []
        for batch in [int(b) for b in args.batch_sizes.split(",") if b]:
            engine = base.create("qwen3", model=str(model), device="cpu", threads=args.threads, batch_size=batch)
            spy = BatchSpy(engine)
            run_mode(engine, spy, files[:2], batch, "pipeline", args)  # warm-up
            best: dict[str, dict[str, Any]] = {}
            for _ in range(max(1, args.repeats)):
                for mode in modes:
                    row = run_mode(engine, spy, files, batch, mode, args)
                    sys.stdout.write(f"{row}\n")
                    if mode not in best or row["engine_thread_cpu_s"] < best[mode]["engine_thread_cpu_s"]:
                        best[mode] = row
            rows += [best[mode] for mode in modes]
            spy.close()
    sys.stdout.write(table(rows) + "\n")
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "command": " ".join(sys.argv),
        "pool_factor": pipeline_module.POOL_FACTOR,
        "rows": rows,
    }
    if args.json:
        path = Path(args.json)
        tmp_path = path.with_suffix(path.suffix + ".tmp")
        tmp_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp_path, path)


if __name__ == "__main__":
    main()
