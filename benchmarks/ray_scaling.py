"""Ray executor vs local executor on the same calls: what Ray costs on one machine.

Builds two-party stereo 8 kHz calls from evalset-dev speech (``callscribe.eval.calls``), then transcribes them with
``--executor local`` and ``--executor ray`` (a local Ray), each run in a fresh process, interleaved, ``--repeats``
times, and reports medians: the run itself (engine loaded, Ray up), model load, Ray start, and the ratio
ray / local for the run alone and end to end. Every Ray run's transcripts are compared with the local run's (JSON,
timings aside): the executors group clips into engine calls differently, so any difference shows an engine whose
reading of a clip depends on the clips heard with it.

    python benchmarks/ray_scaling.py --calls 8 --repeats 3                      # CPU, bundled Whisper-base
    python benchmarks/ray_scaling.py --gpu --engine qwen3 --model DIR --calls 64  # 1 GPU actor vs local on the GPU

``--gpu`` runs the engine on CUDA in both executors (Ray: one engine actor holding the GPU, the other cores
decoding); give a checkpoint folder with ``--model`` (``benchmarks/qwen3_gpu_check.py --workdir`` builds
random-weight ones of the published sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVALSET = ROOT.parent / "shared" / "evalset-dev"
# (agent, customer, agent) pieces of evalset-dev's Mandarin speech; calls beyond these reuse them with other seeds.
TURNS = (
    ("cosyvoice", "aishell1", "wenetspeech"),
    ("soulx", "aishell2", "cosyvoice"),
    ("fireredtts2_podcast_S1:bc", "wenetspeech", "aishell2"),
    ("aishell1", "soulx", "fireredtts2_podcast_S1:rest"),
)


def build_calls(evalset: Path, work: Path, n: int) -> Path:
    from callscribe.eval.calls import CallSpec, TurnSpec, load_pieces, write_call

    pieces = load_pieces(evalset, ("zh",))
    for i in range(n):
        a1, c1, a2 = TURNS[i % len(TURNS)]
        turns = (TurnSpec("agent", (a1,)), TurnSpec("customer", (c1,)), TurnSpec("agent", (a2,)))
        spec = CallSpec(f"call{i:03d}", "zh", "stereo", 8000, turns, bleed_db=-25.0)
        write_call(spec, pieces, work, seed=1000 + i)
    return work / "calls"


def options(args: argparse.Namespace) -> Any:
    from callscribe.options import Options

    return Options.build({
        "engine": args.engine, "model": args.model, "language": "zh", "threads": args.threads,
        "device": "cuda" if args.gpu else "cpu", "channel_roles": ("agent", "customer"), "formats": ("json",),
    })  # fmt: skip


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    """One measured run in this process (the child side)."""
    from callscribe.batch import run_batch
    from callscribe.pipeline import Pipeline

    opts = options(args)
    calls, out = Path(args.work) / "calls", Path(args.out)
    t0 = time.perf_counter()
    if args.variant == "local":
        pipeline = Pipeline(opts)
        pipeline.engine  # noqa: B018 - load the model before the clock starts
        t1, t2 = t0, time.perf_counter()  # no Ray to start
        summary = run_batch([calls], out, opts, pipeline=pipeline)
    else:
        from callscribe.executors.ray_cluster import connect
        from callscribe.executors.ray_exec import RayExecutor

        connect(None, args.cpu_workers)
        t1 = time.perf_counter()
        executor = RayExecutor(opts, gpus_per_engine=1.0 if args.gpu else 0.0, cpu_workers=args.cpu_workers)
        executor.start()
        t2 = time.perf_counter()
        summary = run_batch([calls], out, opts, pipeline=executor)
    t3 = time.perf_counter()
    if args.variant == "ray":
        executor.close()
    assert summary.failed == 0, summary.errors
    return {"variant": args.variant, "ray_start": t1 - t0, "engine_load": t2 - t1, "run": t3 - t2,
            "total": t3 - t0, "audio": summary.audio_seconds, "calls": summary.done}  # fmt: skip


def differing_calls(a: Path, b: Path) -> list[str]:
    """Transcripts of ``a`` and ``b`` that differ (timings aside)."""

    def load(folder: Path) -> dict[str, Any]:
        found = {}
        for path in sorted(folder.glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            data.pop("timings", None)
            found[path.name] = data
        return found

    left, right = load(a), load(b)
    return sorted(name for name in left.keys() | right.keys() if left.get(name) != right.get(name))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work or tempfile.mkdtemp(prefix="ray-scaling-"))
    if not (work / "calls").is_dir():
        build_calls(Path(args.evalset), work, args.calls)
    child = [sys.executable, __file__, "--work", str(work), "--engine", args.engine, "--threads", str(args.threads),
             "--cpu-workers", str(args.cpu_workers), *(["--model", args.model] if args.model else []),
             *(["--gpu"] if args.gpu else [])]  # fmt: skip
    runs: list[dict[str, Any]] = []
    differing: set[str] = set()
    for r in range(args.repeats):
        outs = {}
        for variant in ("local", "ray"):
            out = work / f"out-{variant}-{r}"
            done = subprocess.run([*child, "--variant", variant, "--out", str(out)], capture_output=True, text=True,
                                  check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"{variant} run failed:\n{done.stderr[-3000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            outs[variant] = out
            print(f"repeat {r + 1} {variant}: {runs[-1]}", file=sys.stderr)
        differing.update(differing_calls(outs["local"], outs["ray"]))
    return {"runs": runs, "differing": sorted(differing), "work": str(work), "load": os.getloadavg()}


def table(report: dict[str, Any]) -> str:
    def med(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in report["runs"] if r["variant"] == variant)

    audio = med("local", "audio")
    lines = ["| executor | Ray start | engine load | run | end to end | audio s/s (run) |", "|---|---|---|---|---|---|"]
    for v in ("local", "ray"):
        lines.append(f"| {v} | {med(v, 'ray_start'):.1f} s | {med(v, 'engine_load'):.1f} s | {med(v, 'run'):.1f} s | "
                     f"{med(v, 'total'):.1f} s | {audio / med(v, 'run'):.1f} |")  # fmt: skip
    run_ratio = med("ray", "run") / med("local", "run")
    total_ratio = med("ray", "total") / med("local", "total")
    load = ", ".join(f"{x:.1f}" for x in report["load"])
    lines.append("")
    lines.append(f"calls {int(med('local', 'calls'))}, audio {audio:.0f} s; ratio ray/local: run {run_ratio:.2f}×, "
                 f"end to end {total_ratio:.2f}×; transcripts differing from local: {len(report['differing'])} "
                 f"{report['differing'] or ''}; "
                 f"load average {load}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engine", default="whisper")
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=2, help="engine CPU threads")
    parser.add_argument("--cpu-workers", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray")
    parser.add_argument("--gpu", action="store_true", help="engine on CUDA: one GPU actor vs local on the GPU")
    parser.add_argument("--evalset", default=str(EVALSET))
    parser.add_argument("--work", default=None, help="work folder (calls are built once and reused)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--variant", choices=("local", "ray"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(one_run(args)))
        return
    report = measure(args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(table(report))


if __name__ == "__main__":
    main()
