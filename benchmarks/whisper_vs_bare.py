"""Acceptance for the core: callscribe's whisper path against bare faster-whisper on the same files.

On evalset-dev's items with ``reference_quality == "ground_truth"`` (Mandarin, and English reported apart):

* ``bare``: ``WhisperModel(<bundled model>, device="cpu", compute_type="int8", cpu_threads=2)`` and
  ``.transcribe(path, language=..., vad_filter=True)``, text joined from the segments;
* ``callscribe``: ``Pipeline(engine="whisper", language=..., threads=2, compute_type="int8")`` run over the same
  files, with the pipeline's default speakers stage (mono files are diarized when resemblyzer is installed);
* ``callscribe-1spk``: the same with ``speakers=1``, which skips diarization for a one-speaker file.

Every variant runs in its own fresh Python process (``--variant``), timed the same way: ``load`` is imports +
model load, ``run`` is transcribing every file; ``total = load + run``. Each variant runs ``--repeat`` times and the
median is reported. CER/WER are computed with callscribe.eval after removing only punctuation and spaces
(``Normalizer(("punct", "spaces"))``; for English case too), and, for reference, after the default normaliser too.

    python benchmarks/whisper_vs_bare.py [--repeat 3] [--json results.json]
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

EVALSET = Path(__file__).resolve().parents[2] / "shared" / "evalset-dev"
VARIANTS = ("bare", "callscribe", "callscribe-1spk")
THREADS = 2
# Acceptance: callscribe no slower than this many times bare faster-whisper, and no worse CER.
MAX_TIME_RATIO = 1.10
PUNCT_SPACE_STEPS = ("punct", "spaces")
# English references are upper case in some corpora; case is not a recognition error.
LIGHT_STEPS = {"zh": PUNCT_SPACE_STEPS, "en": ("lower", *PUNCT_SPACE_STEPS)}


@dataclass
class VariantRun:
    """One variant on one language's files, in one fresh process."""

    variant: str
    language: str
    load_s: float
    run_s: float
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.load_s + self.run_s


@dataclass
class VariantSummary:
    variant: str
    language: str
    files: int
    audio_s: float
    error_rate: float  # CER (zh) or WER (en), punctuation and spaces removed only (and case for en)
    error_rate_default_norm: float  # the same with callscribe.eval's default normaliser
    metric: str
    load_s: float  # medians over the repeats
    run_s: float
    total_s: float
    ratio_total: float = 1.0  # this variant's total over bare's
    ratio_run: float = 1.0


def items(language: str) -> list[dict[str, object]]:
    rows = [json.loads(x) for x in (EVALSET / "manifest.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in rows if r.get("reference_quality") == "ground_truth" and r.get("lang") == language]


# -- the measured work, one variant per process ------------------------------------------------------------------
def run_bare(paths: list[Path], language: str) -> VariantRun:
    t0 = time.perf_counter()
    from faster_whisper import WhisperModel

    from callscribe.engines.bundled import bundled_model_dir

    model = WhisperModel(str(bundled_model_dir()), device="cpu", compute_type="int8", cpu_threads=THREADS)
    t1 = time.perf_counter()
    texts = {}
    for path in paths:
        segments, _info = model.transcribe(str(path), language=language, vad_filter=True)
        texts[path.name] = "".join(s.text for s in segments).strip()
    return VariantRun("bare", language, t1 - t0, time.perf_counter() - t1, texts)


def run_callscribe(paths: list[Path], language: str, one_speaker: bool) -> VariantRun:
    t0 = time.perf_counter()
    from callscribe.options import Options
    from callscribe.pipeline import CallError, Pipeline

    options = Options(
        engine="whisper",
        language=language,
        device="cpu",
        compute_type="int8",
        threads=THREADS,
        speakers=1 if one_speaker else None,
    )
    pipeline = Pipeline(options)
    _ = pipeline.engine  # model load
    t1 = time.perf_counter()
    texts = {}
    for item in pipeline.run((p, "") for p in paths):
        if isinstance(item, CallError):
            raise SystemExit(f"callscribe failed: {item}")
        texts[Path(item.call.path).name] = item.text
    name = "callscribe-1spk" if one_speaker else "callscribe"
    return VariantRun(name, language, t1 - t0, time.perf_counter() - t1, texts)


def child(variant: str, language: str, out: Path) -> None:
    paths = [EVALSET / str(r["file"]) for r in items(language)]
    if variant == "bare":
        result = run_bare(paths, language)
    else:
        result = run_callscribe(paths, language, one_speaker=variant == "callscribe-1spk")
    out.write_text(json.dumps(asdict(result), ensure_ascii=False), encoding="utf-8")


def spawn(variant: str, language: str) -> VariantRun:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        cmd = [sys.executable, __file__, "--child", variant, "--language", language, "--child-out", str(out)]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(THREADS)})
        return VariantRun(**json.loads(out.read_text(encoding="utf-8")))


# -- scoring and reporting ---------------------------------------------------------------------------------------
def summarize(runs: list[VariantRun], language: str) -> VariantSummary:
    from callscribe.eval import ErrorCounts, Normalizer, score_text

    rows = items(language)
    first = runs[0]
    metric = "cer" if language == "zh" else "wer"
    pairs = [(str(r["text"]), first.texts[Path(str(r["file"])).name]) for r in rows]
    light = Normalizer(LIGHT_STEPS.get(language, PUNCT_SPACE_STEPS))
    light_counts = ErrorCounts.total(
        score_text(ref, hyp, language, normalize=light, metric=metric) for ref, hyp in pairs
    )
    default_counts = ErrorCounts.total(score_text(ref, hyp, language, metric=metric) for ref, hyp in pairs)
    return VariantSummary(
        variant=first.variant,
        language=language,
        files=len(rows),
        audio_s=round(sum(float(str(r["duration_s"])) for r in rows), 2),
        error_rate=round(light_counts.rate or 0.0, 4),
        error_rate_default_norm=round(default_counts.rate or 0.0, 4),
        metric=metric,
        load_s=round(statistics.median(r.load_s for r in runs), 3),
        run_s=round(statistics.median(r.run_s for r in runs), 3),
        total_s=round(statistics.median(r.total_s for r in runs), 3),
    )


def markdown(summaries: list[VariantSummary]) -> str:
    lines = [
        "| lang | variant | files | audio s | metric | error (punct/space[/case] norm) | error (default norm) "
        "| load s | run s | total s | ratio total | ratio run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.language} | {s.variant} | {s.files} | {s.audio_s:.1f} | {s.metric.upper()} | {s.error_rate:.2%} "
            f"| {s.error_rate_default_norm:.2%} | {s.load_s:.2f} | {s.run_s:.2f} | {s.total_s:.2f} "
            f"| {s.ratio_total:.2f} | {s.ratio_run:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--languages", default="zh,en")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--language", default="zh", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.language, args.child_out)
        return
    if not (EVALSET / "manifest.jsonl").is_file():
        raise SystemExit(f"{EVALSET}: evalset-dev not found")
    summaries: list[VariantSummary] = []
    texts: dict[str, dict[str, str]] = {}
    for language in args.languages.split(","):
        runs: dict[str, list[VariantRun]] = {v: [] for v in VARIANTS}
        for _ in range(args.repeat):  # interleave the variants so drift in machine load hits all of them alike
            for variant in VARIANTS:
                runs[variant].append(spawn(variant, language))
        group = [summarize(runs[v], language) for v in VARIANTS]
        for s in group:
            s.ratio_total = round(s.total_s / group[0].total_s, 3)
            s.ratio_run = round(s.run_s / group[0].run_s, 3)
            texts[f"{language}/{s.variant}"] = runs[s.variant][0].texts
        summaries += group
    table = markdown(summaries)
    sys.stdout.write(table + "\n")
    for s in summaries:
        if s.variant == "bare":
            continue
        bare = next(b for b in summaries if b.variant == "bare" and b.language == s.language)
        ok_err = s.error_rate <= bare.error_rate
        ok_time = s.ratio_total <= MAX_TIME_RATIO
        sys.stdout.write(
            f"{s.language} {s.variant}: error {'ok' if ok_err else 'WORSE'} "
            f"({s.error_rate:.2%} vs {bare.error_rate:.2%}),"
            f" time {'ok' if ok_time else 'SLOWER'} ({s.ratio_total:.2f}x total, {s.ratio_run:.2f}x run)\n"
        )
    if args.json:
        payload = {"summaries": [asdict(s) for s in summaries], "texts": texts}
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
