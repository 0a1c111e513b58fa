"""Qwen3-ASR on one GPU, per backend: are batched outputs the same as one-by-one, how fast, how much memory.

The published 0.6B and 1.7B architectures are built at random weights (``tests/engines_qwen/tiny_qwen.py`` for the
qwen-asr layout, ``tiny_qwen_hf.py`` for the transformers-native ``-hf`` layout; a backend whose library is missing
is reported as not installed here), saved, and loaded through ``callscribe.engines.create("qwen3", ...)``.

(a) Mixed lengths: real speech clips of 0.3-20 s (evalset-dev, cut by callscribe's own decoder, VAD and clip
    cutter) decoded in one batch and one by one with the same fixed output length; counts of identical and
    differing texts, rows whose logits held a NaN (a hook on the output layer) and outputs made only of "!" (what
    NaN logits decode to), the failure reported upstream for short clips in mixed-length batches. The engine decodes
    a row whose logits turned NaN again alone (flag ``nan-batch``, counted too): NaN rows with no "!" output mean
    that guard held.
(b) Throughput end to end through the engine (features, audio encoder, decoder, text) in audio seconds per second,
    and peak memory (torch.cuda.max_memory_allocated), at each ``--batches`` size, without and with a 50-term
    glossary as context. Random weights never stop on their own, so the output length is forced to
    ``--tokens-per-second`` (default 4, about real speech) as in ``benchmarks/gpu_throughput.py``, whose clip
    loading this reuses. Memory per row is (peak - weights) / batch, next to ``qwen3_batch.bytes_per_row``'s
    estimate for the longest clip and the real prompt length.

qwen-asr and transformers >= 5.13 pin different transformers versions, so one environment runs one backend;
``--other-python`` names the interpreter of the other environment (``.venv-hf/bin/python``): the backend missing
here is run there (this script, same settings) and its rows join the one table.

    python benchmarks/qwen3_gpu_check.py [--sizes 0.6b,1.7b] [--batches 8,32,64] [--minutes 10] [--json FILE]
        [--other-python .venv-hf/bin/python]
    python benchmarks/qwen3_gpu_check.py --tiny        # the tiny test sizes on CPU: checks the script itself
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import itertools
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "engines_qwen"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_throughput import EVALSET, SIZES, speech_clips  # noqa: E402
from tiny_qwen import TINY, Sizes, build_qwen_asr  # noqa: E402

from callscribe.engines import base  # noqa: E402
from callscribe.engines.base import SAMPLE_RATE, Clip, EngineOptions  # noqa: E402
from callscribe.engines.qwen3_batch import bytes_per_row  # noqa: E402

log = logging.getLogger("callscribe")

GOAL_AUDIO_S_PER_S = 2000.0  # 1.7B on one H100/H200, end to end
PAPER_VLLM = 1219.5  # the Qwen3-ASR report's vLLM figure at concurrency 128
CHECK_TOKENS = 24  # output length of the batched vs one-by-one comparison
SHORT_CUTS_S = (0.3, 0.6, 1.0)  # very short clips cut from real speech for (a)
MIX_MINUTES = 5.0  # speech loaded for (a): more than evalset-dev holds, so every clip is there to pick from
# A contact-centre glossary: products, plans, places and procedures (Mandarin and English).
GLOSSARY = (
    "宽带套餐", "光猫", "退款申请", "工单编号", "积分兑换", "话费账单", "流量包", "携号转网", "实名认证", "套餐变更",
    "停机保号", "国际漫游", "副卡", "家庭融合套餐", "千兆宽带", "机顶盒", "营业厅", "客户经理", "投诉升级",
    "满意度回访", "自动续费", "合约期", "违约金", "发票抬头", "电子发票", "充值卡", "余额提醒", "来电显示", "呼叫转移",
    "短信验证码", "景德镇", "美国市场", "陶瓷", "攀岩", "5G 升级包", "云盘", "视频彩铃", "亲情号码", "老年卡",
    "学生套餐", "broadband", "refund", "router", "roaming", "invoice", "contract", "upgrade", "voicemail", "SIM card",
    "eSIM",
)  # fmt: skip
BANG = re.compile(r"^[!！\s]+$")


def forced_length(args: Any) -> dict[str, Any]:
    """Engine extras that force a realistic output length (random weights never stop on their own)."""
    return {"recover": False, "force_length": True, "tokens_per_second": args.tokens_per_second, "token_margin": 0,
            "max_new_tokens": 4096}  # fmt: skip


BACKENDS = ("qwen-asr", "hf")


def backends() -> dict[str, Callable[..., Path] | str]:
    """Each backend's checkpoint builder, or why it cannot run here."""
    found: dict[str, Callable[..., Path] | str] = {}
    found["qwen-asr"] = build_qwen_asr if importlib.util.find_spec("qwen_asr") else "not installed here (qwen-asr)"
    try:
        from tiny_qwen_hf import build_qwen_asr_hf

        has = importlib.util.find_spec("transformers.models.qwen3_asr") is not None
    except (ImportError, ModuleNotFoundError, ValueError):
        build_qwen_asr_hf, has = None, False  # type: ignore[assignment]
    found["hf"] = (
        build_qwen_asr_hf if has and build_qwen_asr_hf else "not installed here (transformers without qwen3_asr)"
    )
    return found


def torch_model(engine: Any) -> Any:
    """The torch module the engine generates with (either backend; no import of the bucketing benchmark, whose
    call builder needs the eval extra that the -hf environment may lack)."""
    return engine.backend.model


class NanSpy:
    """Rows whose next-token logits held a NaN during generation (the prompt pass's padded positions are unused)."""

    def __init__(self, engine: Any) -> None:
        model = torch_model(engine)
        head = next(m for name, m in model.named_modules() if name.endswith("lm_head"))
        self.rows: set[int] = set()
        self._hook = head.register_forward_hook(self._seen)

    def _seen(self, _module: Any, _args: Any, out: Any) -> None:
        import torch

        last = out[:, -1, :] if out.dim() == 3 else out  # the position that picks the next token
        bad = torch.isnan(last.float()).any(-1)
        self.rows.update(int(i) for i in torch.nonzero(bad).flatten().tolist())

    def take(self) -> int:
        n, self.rows = len(self.rows), set()
        return n

    def close(self) -> None:
        self._hook.remove()


def mixed_clips(clips: list[Clip], n: int) -> list[Clip]:
    """``n`` clips spread over the length range, plus very short cuts of real speech."""
    distinct = {id(c.audio): c for c in clips}  # speech_clips repeats its clips to fill the minutes
    ordered = sorted(distinct.values(), key=lambda c: c.duration)
    spots = sorted({round(k * (len(ordered) - 1) / max(1, n - 1)) for k in range(n)})
    picked = [ordered[i] for i in spots]
    source = ordered[len(ordered) // 2]
    short = [Clip(f"short{s}", 0, 0.0, source.audio[: int(s * SAMPLE_RATE)].copy()) for s in SHORT_CUTS_S]
    return [*short, *picked]


def compare(engine: Any, clips: list[Clip], spy: NanSpy) -> dict[str, Any]:
    extra = {"recover": False, "force_length": True, "tokens_per_second": 0, "token_margin": CHECK_TOKENS}
    batched = engine.transcribe(clips, EngineOptions(batch_size=len(clips), extra=extra))
    nan_batched = spy.take()
    alone = [engine.transcribe([c], EngineOptions(batch_size=1, extra=extra))[0] for c in clips]
    nan_alone = spy.take()
    same = [a.text == b.text for a, b in zip(batched, alone, strict=True)]
    return {
        "clips": len(clips),
        "shortest_s": round(min(c.duration for c in clips), 2),
        "longest_s": round(max(c.duration for c in clips), 2),
        "identical": sum(same),
        "differs": len(clips) - sum(same),
        "differs_s": [round(c.duration, 2) for c, ok in zip(clips, same, strict=True) if not ok],
        "nan_rows_batched": nan_batched,
        "nan_rows_alone": nan_alone,
        "bang_batched": sum(bool(BANG.match(r.text)) for r in batched),
        "bang_alone": sum(bool(BANG.match(r.text)) for r in alone),
        "nan_batch_flags": sum("nan-batch" in r.flags for r in batched),
    }


def prompt_tokens(engine: Any, hotwords: tuple[str, ...]) -> int:
    prompt = engine.prompt(", ".join(hotwords), None)
    return len(engine.backend.processor.tokenizer(prompt)["input_ids"])


def throughput(engine: Any, clips: list[Clip], batch: int, hotwords: tuple[str, ...], args: Any) -> dict[str, Any]:
    import torch

    cuda = engine.device.startswith("cuda")
    extra = forced_length(args)
    options = EngineOptions(batch_size=batch, hotwords=hotwords, extra=extra)
    row: dict[str, Any] = {"batch": batch, "glossary_terms": len(hotwords)}
    try:
        engine.transcribe(clips[:batch], options)  # warm-up at this batch size
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        weights = torch.cuda.memory_allocated() if cuda else 0
        started = time.perf_counter()
        engine.transcribe(clips, options)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    except torch.OutOfMemoryError:
        row["error"] = "out of memory"
        return row
    finally:
        gc.collect()
    audio_s = sum(c.duration for c in clips)
    row.update(audio_s=round(audio_s, 1), wall_s=round(wall, 2), audio_s_per_s=round(audio_s / wall, 1))
    longest = max(c.duration for c in clips)
    estimate = bytes_per_row(
        engine.batch_config(),
        engine.budget(longest, extra),
        longest,
        prompt_tokens=prompt_tokens(engine, hotwords),
        dtype_bytes=int(getattr(engine.dtype, "itemsize", 2)),
    )
    row["estimate_mib_per_row"] = round(estimate / 2**20, 1)
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        row.update(peak_gib=round(peak / 2**30, 2), mib_per_row=round((peak - weights) / batch / 2**20, 1))
    return row


def checkpoint(builder: Callable[..., Path], backend: str, name: str, sizes: Sizes, device: str, args: Any) -> Path:
    folder = Path(args.workdir) / f"callscribe-qwen3-{backend}-{name}-random"
    if not (folder / "config.json").is_file():
        dtype = "float32" if device == "cpu" else args.dtype
        log.info("building %s %s (random weights) in %s", backend, name, folder)
        builder(folder, sizes, device=device, dtype=dtype)
    return folder


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    sizes = {"tiny": TINY} if args.tiny else {s: SIZES[s] for s in args.sizes.split(",") if s}
    every = speech_clips(max(args.minutes, MIX_MINUTES), Path(args.evalset))  # every distinct clip at least once
    mixed = mixed_clips(every, args.check_clips)
    ends = itertools.accumulate(c.duration for c in every)
    clips = [c for c, end in zip(every, ends, strict=True) if end - c.duration < args.minutes * 60]
    batches = [int(b) for b in args.batches.split(",") if b]
    report: dict[str, Any] = {"device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
                              "skipped": {}, "checks": [], "throughput": []}  # fmt: skip
    wanted = [b for b in args.backends.split(",") if b]
    for backend, builder in backends().items():
        if backend not in wanted:
            continue
        if isinstance(builder, str):
            report["skipped"][backend] = builder
            continue
        for name, size in sizes.items():
            folder = checkpoint(builder, backend, name, size, device, args)
            compute = "float32" if device == "cpu" else args.dtype
            engine = base.create("qwen3", model=str(folder), device=device, compute_type=compute, batch_size=8)
            spy = NanSpy(engine)
            report["checks"].append({"backend": backend, "model": name, **compare(engine, mixed, spy)})
            engine.transcribe(
                clips, EngineOptions(batch_size=batches[0], extra=forced_length(args))
            )  # warm-up: all shapes
            for batch in batches:
                for terms in ((), GLOSSARY[: args.glossary_terms]):
                    row = throughput(engine, clips, batch, terms, args)
                    report["throughput"].append({"backend": backend, "model": name, **row})
                    log.info("%s", report["throughput"][-1])
            spy.close()
            del engine, spy
            gc.collect()
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    return report


def forwarded(args: argparse.Namespace) -> list[str]:
    """The settings of this run as arguments, for the same script under another interpreter."""
    out = ["--sizes", args.sizes, "--batches", args.batches, "--minutes", str(args.minutes),
           "--glossary-terms", str(args.glossary_terms), "--check-clips", str(args.check_clips),
           "--tokens-per-second", str(args.tokens_per_second), "--device", args.device, "--dtype", args.dtype,
           "--evalset", args.evalset]  # fmt: skip
    return [*out, "--tiny"] if args.tiny else out


def run_elsewhere(python: str, backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """``backend`` run by this script under ``python`` (another environment): its report, or why it failed."""
    out = workdir / f"report-{backend}.json"
    command = [python, str(Path(__file__).resolve()), *forwarded(args), "--backends", backend, "--json", str(out)]
    log.info("running the %s backend under %s", backend, python)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.is_file():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": {backend: f"failed under {python} (exit {done.returncode}): {tail}"}}
    return dict(json.loads(out.read_text(encoding="utf-8")))


def merge(report: dict[str, Any], other: dict[str, Any], python: str) -> None:
    """Rows another environment measured join this report (a backend run there is no longer skipped here)."""
    for key in ("checks", "throughput"):
        rows = [{**row, "python": python} for row in other.get(key, [])]
        report[key] += rows
        for row in rows:
            report["skipped"].pop(row["backend"], None)
    for backend, why in other.get("skipped", {}).items():
        report["skipped"][backend] = f"{report['skipped'].get(backend, 'not installed here')}; {why}"


def tables(report: dict[str, Any]) -> str:
    out = [f"device: {report['device']}"]
    out += [f"backend {b}: {why}" for b, why in report["skipped"].items()]
    out += ["", "(a) batched vs one by one, mixed lengths", "",
            "| backend | model | clips | s | identical | differs (clip s) | NaN rows batched / alone "
            "| heard again alone | '!' outputs batched / alone |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in report["checks"]:
        differs = f"{c['differs']} ({', '.join(map(str, c['differs_s'])) or '-'})"
        out.append(f"| {c['backend']} | {c['model']} | {c['clips']} | {c['shortest_s']}-{c['longest_s']} | "
                   f"{c['identical']} | {differs} | {c['nan_rows_batched']} / {c['nan_rows_alone']} | "
                   f"{c.get('nan_batch_flags', 0)} | {c['bang_batched']} / {c['bang_alone']} |")  # fmt: skip
    out += ["", "(b) throughput end to end through the engine", "",
            "| backend | model | batch | glossary | audio s | wall s | audio-s/s | peak GiB | MiB/row | est. MiB/row |",
            "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["throughput"]:
        if "error" in r:
            out.append(f"| {r['backend']} | {r['model']} | {r['batch']} | {r['glossary_terms']} | {r['error']} |||||")
            continue
        out.append(f"| {r['backend']} | {r['model']} | {r['batch']} | {r['glossary_terms']} | {r['audio_s']} | "
                   f"{r['wall_s']} | {r['audio_s_per_s']} | {r.get('peak_gib', '-')} | {r.get('mib_per_row', '-')} | "
                   f"{r['estimate_mib_per_row']} |")  # fmt: skip
    best = max((r["audio_s_per_s"] for r in report["throughput"] if r.get("model") == "1.7b" and "error" not in r),
               default=None)  # fmt: skip
    out += ["", f"goal: >= {GOAL_AUDIO_S_PER_S:,.0f} audio-s/s for 1.7B on one H100/H200 end to end "
                f"(the paper's vLLM figure: {PAPER_VLLM:,} at concurrency 128); "
                + ("1.7B not measured here" if best is None else
                   f"best 1.7B here: {best:,.1f} ({'met' if best >= GOAL_AUDIO_S_PER_S else 'not met'})")]  # fmt: skip
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0.6b,1.7b", help=f"published architectures: {', '.join(SIZES)}")
    parser.add_argument("--tiny", action="store_true", help="the tiny test sizes instead (runs on CPU)")
    parser.add_argument("--batches", default="8,32,64")
    parser.add_argument("--minutes", type=float, default=None, help="speech per throughput run (10; tiny: 0.5)")
    parser.add_argument("--glossary-terms", type=int, default=50)
    parser.add_argument("--check-clips", type=int, default=13, help="clips of (a) besides the very short cuts")
    parser.add_argument("--tokens-per-second", type=float, default=4.0, help="forced output rate")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--evalset", default=str(EVALSET))
    parser.add_argument("--workdir", default=None, help="where random checkpoints are built (reused)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--backends", default=",".join(BACKENDS), help="which backends to run")
    parser.add_argument("--other-python", default=None, help="interpreter of the environment with the other backend")
    args = parser.parse_args(argv)
    if set(args.backends.split(",")) - set(BACKENDS) - {""}:
        parser.error(f"--backends: choose from {', '.join(BACKENDS)}")
    if not 0 <= args.glossary_terms <= len(GLOSSARY):
        parser.error(f"--glossary-terms: 0 to {len(GLOSSARY)}")
    args.minutes = args.minutes if args.minutes is not None else (0.5 if args.tiny else 10.0)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="callscribe-gpu-check-") as tmp:
        args.workdir = args.workdir or tmp
        started = time.perf_counter()
        report = run(args)
        if args.other_python:
            for backend in [b for b in BACKENDS if b in report["skipped"]]:
                merge(report, run_elsewhere(args.other_python, backend, args, Path(tmp)), args.other_python)
    report.update(date=datetime.now(timezone.utc).isoformat(timespec="seconds"), command=" ".join(sys.argv),
                  machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                  total_s=round(time.perf_counter() - started, 1), goal_audio_s_per_s=GOAL_AUDIO_S_PER_S,
                  paper_vllm_audio_s_per_s=PAPER_VLLM)  # fmt: skip
    sys.stdout.write(tables(report))
    if args.json:
        path = Path(args.json)
        tmp_path = path.with_suffix(path.suffix + ".tmp")
        tmp_path.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp_path, path)


if __name__ == "__main__":
    main()
