"""Whole two-party calls built from real evalset-dev speech: does callscribe lose or invent anything?

Builds the calls below (mono mixdowns and stereo 8 kHz with bleed; see :mod:`callscribe.eval.calls` for what the
references are), transcribes them with the ``callscribe`` CLI in a subprocess for each option set, and scores
every transcript with :mod:`callscribe.eval.calls_score`: CER (WER for English), deletions and insertions per
reference token, speech seconds no utterance covers, the worst turn's share of deleted characters and the turns
over 15 %, role accuracy and DER. Next to each line: the same engine on each piece of the call heard alone
(``--speakers 1``, same sample rate, no bleed, no noise), scored the same way.

Option sets: ``default``; ``hotwords`` (``--hotwords`` with a glossary of which half the terms are spoken in the
calls and half never are: recall of the spoken ones, and any unspoken one that shows up); ``speakers2``
(``--speakers 2``, mono calls only). Every run uses ``--language`` of the call unless ``--auto-language``.

    python benchmarks/calls.py [--out DIR] [--calls N] [--options default,hotwords,speakers2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from callscribe.eval.calls import DEFAULT_SEED, BuiltCall, CallSpec, TurnSpec, build_calls, load_pieces, write_alone
from callscribe.eval.calls_score import CallRef, CallScore, check_glossary, score_alone, score_call
from callscribe.model import Transcript

EVALSET = Path(__file__).resolve().parents[2] / "shared" / "evalset-dev"
OPTION_SETS = ("default", "hotwords", "speakers2")
A, C = "agent", "customer"
FIRERED, SOULX = "fireredtts2", "soulx"


def _t(party: str, *pieces: str, stretch: bool = False, overlap_s: float = 0.0) -> TurnSpec:
    return TurnSpec(party, pieces, stretch, overlap_s)


CALLS: tuple[CallSpec, ...] = (
    CallSpec(
        "zh_mono16k_dense30", "zh", "mono", 16000,
        (_t(A, "cosyvoice"), _t(C, "aishell1"), _t(A, "aishell2"), _t(C, "wenetspeech"), _t(A, "cosyvoice"),
         _t(C, "wenetspeech"), _t(A, "aishell2"), _t(C, "aishell1"), _t(A, "cosyvoice"), _t(C, "aishell1")),
        gap_s=(0.3, 0.45),
        note="ten utterances in about 30 s with 0.3-0.45 s gaps: VAD and clipping make one clip of about 29 s",
    ),
    CallSpec(
        "zh_mono16k_97s", "zh", "mono", 16000,
        (_t(A, SOULX), _t(C, f"{FIRERED}:rest"), _t(A, SOULX), _t(C, FIRERED, FIRERED, stretch=True),
         _t(A, SOULX), _t(C, f"{FIRERED}:bc"), _t(A, SOULX), _t(C, FIRERED)),
        note="eight turns, one voice per party, a customer turn of about 25 s (a sentence pair said twice)",
    ),
    CallSpec(
        "zh_stereo8k_long_turn", "zh", "stereo", 8000,
        (_t(C, "wenetspeech"), _t(A, "cosyvoice"), _t(C, FIRERED, FIRERED, stretch=True), _t(A, SOULX),
         _t(C, f"{FIRERED}:bc", overlap_s=5.0), _t(C, "aishell1"), _t(A, "cosyvoice")),
        bleed_db=-20.0, bleed_delay_ms=30.0,
        note="customer first, a customer turn of about 25 s with pauses, a customer back-channel inside an agent turn",
    ),
    CallSpec(
        "zh_stereo8k_bleed15", "zh", "stereo", 8000,
        (_t(A, SOULX), _t(C, "aishell1"), _t(A, "cosyvoice"), _t(C, f"{FIRERED}:rest", overlap_s=0.4),
         _t(A, "aishell2"), _t(C, "wenetspeech"), _t(A, "cosyvoice")),
        bleed_db=-15.0, bleed_delay_ms=10.0,
        note="strong bleed (-15 dB, 10 ms), the customer barges in 0.4 s before the agent ends",
    ),
    CallSpec(
        "zh_mono8k_customer_first", "zh", "mono", 8000,
        (_t(C, SOULX), _t(A, "aishell1"), _t(C, SOULX), _t(A, "aishell1", overlap_s=0.3)),
        note="8 kHz mono, customer first, one voice per party, a 0.3 s overlap",
    ),
    CallSpec(
        "en_stereo8k", "en", "stereo", 8000,
        (_t(A, "librispeech"), _t(C, "timit"), _t(A, "ljspeech"), _t(C, "pocketsphinx"), _t(A, "jfk")),
        bleed_db=-30.0, bleed_delay_ms=50.0,
        note="English, weak bleed (-30 dB, 50 ms)",
    ),
    CallSpec(
        "en_mono16k", "en", "mono", 16000,
        (_t(C, "jfk"), _t(A, "librispeech"), _t(C, "jfk", stretch=True)),
        note="English mono, customer first, one voice per party",
    ),
)  # fmt: skip

# Glossary: terms said in the calls (kept only when a built call's reference has them) and terms never said.
SPOKEN_TERMS = ("美国市场", "景德镇", "陶瓷", "攀岩", "交易", "考察", "Americans", "cotton")
UNSPOKEN_TERMS = ("宽带套餐", "退款申请", "工单编号", "光猫", "积分兑换", "话费账单", "broadband", "refund")


@dataclass
class Run:
    option: str
    group: str
    command: list[str]
    wall_s: float
    cpu_s: float
    returncode: int
    stderr_tail: str


def transcribe(files: Sequence[Path], out: Path, lang: str | None, extra: Sequence[str], args: Any) -> Run:
    """Transcribe ``files`` into ``out/<stem>.json`` in a fresh process: the CLI, or the Python API (``api``)."""
    language = ["--language", lang] if lang else []
    common = ["--engine", args.engine, "--threads", str(args.threads), *language, *extra]
    if args.runner == "cli":
        cmd = [sys.executable, "-m", "callscribe", "transcribe", *map(str, files), "-o", str(out), "-f", "json"]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "api-transcribe", "-o", str(out), *map(str, files)]
    cmd += common
    started, cpu0 = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu0
    return Run("", "", cmd, round(wall, 1), round(cpu, 1), proc.returncode, proc.stderr[-2000:])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def api_transcribe(argv: Sequence[str]) -> int:
    """``calls.py api-transcribe -o OUT FILES... [flags]``: callscribe.Pipeline over the files, one JSON each."""
    from callscribe.pipeline import CallError, Pipeline
    from callscribe.text.glossary import Glossary

    parser = argparse.ArgumentParser(prog="calls.py api-transcribe")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--engine", default="whisper")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--language", default=None)
    parser.add_argument("--hotwords", type=Path, default=None)
    parser.add_argument("--speakers", type=int, default=None)
    a = parser.parse_args(argv)
    opts: dict[str, Any] = {"engine": a.engine, "threads": a.threads, "language": a.language, "speakers": a.speakers}
    if a.hotwords is not None:
        glossary = Glossary.load(str(a.hotwords))
        opts.update(hotwords=glossary.terms, corrections=glossary.corrections)
    a.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for item in Pipeline(opts).run((f, "") for f in a.files):
        if isinstance(item, CallError):
            sys.stderr.write(f"{item}\n")
            failed += 1
            continue
        (a.out / f"{Path(item.call.path).stem}.json").write_text(item.to_json(), encoding="utf-8")
    return 1 if failed else 0


def option_args(option: str, out: Path) -> list[str]:
    if option == "hotwords":
        return ["--hotwords", str(out / "glossary.txt")]
    if option == "speakers2":
        return ["--speakers", "2"]
    return []


def load_transcript(path: Path) -> Transcript | None:
    return Transcript.from_json(path.read_text(encoding="utf-8")) if path.is_file() else None


def make_glossary(refs: Sequence[CallRef], path: Path) -> tuple[list[str], list[str]]:
    all_text = " ".join(r.text for r in refs)
    spoken = [t for t in SPOKEN_TERMS if check_glossary([t], [], all_text, "").spoken.in_ref]
    unspoken = [t for t in UNSPOKEN_TERMS if not check_glossary([], [t], "", all_text).invented]
    n = min(len(spoken), len(unspoken))
    spoken, unspoken = spoken[:n], unspoken[:n]
    path.write_text("\n".join(spoken + unspoken) + "\n", encoding="utf-8")
    return spoken, unspoken


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir, removed)")
    parser.add_argument("--calls", type=int, default=None, help="only the first N calls")
    parser.add_argument("--options", default="default,hotwords,speakers2")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--engine", default="whisper")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--auto-language", action="store_true", help="let the engine detect the language")
    parser.add_argument("--reuse", action="store_true", help="keep transcripts already in --out (resume)")
    parser.add_argument("--runner", choices=("api", "cli"), default="api",
                        help="callscribe.Pipeline in a subprocess (api) or the callscribe CLI (cli)")  # fmt: skip
    parser.add_argument("--evalset", type=Path, default=EVALSET)
    args = parser.parse_args()
    options = [o.strip() for o in args.options.split(",") if o.strip()]
    unknown = sorted(set(options) - set(OPTION_SETS))
    if unknown:
        parser.error(f"unknown option set(s): {', '.join(unknown)}; choose from {', '.join(OPTION_SETS)}")
    if not (args.evalset / "manifest.jsonl").is_file():
        parser.error(f"{args.evalset} has no manifest.jsonl")
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="callscribe-calls-")
        args.out = Path(tmp.name)
    try:
        report = run(args, options)
    finally:
        if tmp is not None:
            tmp.cleanup()
    if args.json:
        tmp_json = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp_json.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp_json, args.json)


def run(args: Any, options: list[str]) -> dict[str, Any]:
    out: Path = args.out
    specs = CALLS[: args.calls] if args.calls else CALLS
    pieces = load_pieces(args.evalset, {s.lang for s in specs})
    built = build_calls(args.evalset, out, specs, args.seed, pieces)
    refs = [b.ref for b in built]
    spoken, unspoken = make_glossary(refs, out / "glossary.txt")
    say(f"{len(built)} calls, {sum(r.duration for r in refs):.0f} s of audio in {out}; seed {args.seed}")
    say(f"glossary: spoken {spoken}, never spoken {unspoken}")
    runs: list[Run] = []
    if not args.reuse:  # transcripts of an earlier run in --out would be scored as if they were this run's
        shutil.rmtree(out / "hyp", ignore_errors=True)

    def go(option: str, group: str, files: list[Path], hyp: Path, lang: str, extra: Sequence[str]) -> None:
        files = [f for f in files if not (hyp / f"{f.stem}.json").is_file()]
        if not files:
            return
        r = transcribe(files, hyp, None if args.auto_language else lang, extra, args)
        r.option, r.group = option, group
        runs.append(r)
        took = f"wall {r.wall_s:6.1f} s  cpu {r.cpu_s:6.1f} s"
        say(f"  {option:9s} {group:9s} {len(files):2d} files  {took}  exit {r.returncode}")
        if r.returncode:
            say("    " + r.stderr_tail.strip().replace("\n", "\n    "))

    # Each piece alone, at every (language, rate) a call plays it.
    alone: dict[tuple[str, int], dict[str, str]] = {}
    for lang, rate in sorted({(r.lang, r.sample_rate) for r in refs}):
        keys = {k for r in refs if (r.lang, r.sample_rate) == (lang, rate) for t in r.turns for k in t.pieces}
        files = write_alone(keys, pieces, rate, out / "alone" / f"{lang}-{rate}")
        hyp = out / "hyp" / "alone" / f"{lang}-{rate}"
        go("alone", f"{lang}-{rate}", list(files.values()), hyp, lang, ("--speakers", "1"))
        texts = {k: t.text for k, p in files.items() if (t := load_transcript(hyp / f"{p.stem}.json"))}
        alone[(lang, rate)] = texts
    for option in options:
        for lang in sorted({r.lang for r in refs}):
            chosen = [b for b in built if b.ref.lang == lang and (option != "speakers2" or b.ref.form == "mono")]
            if not chosen:
                continue
            go(option, lang, [b.audio_path for b in chosen], out / "hyp" / option, lang, option_args(option, out))
    results = score_all(built, options, out, alone, spoken, unspoken)
    print_tables(built, options, results)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "command": " ".join(sys.argv),
        "seed": args.seed,
        "glossary": {"spoken": spoken, "unspoken": unspoken},
        "calls": [b.ref.to_dict() for b in built],
        "runs": [vars(r) for r in runs],
        "results": results,
    }


def score_all(built: list[BuiltCall], options: list[str], out: Path, alone: dict[tuple[str, int], dict[str, str]],
              spoken: list[str], unspoken: list[str]) -> list[dict[str, Any]]:  # fmt: skip
    results = []
    for b in built:
        ref = b.ref
        alone_texts = alone.get((ref.lang, ref.sample_rate), {})
        base = score_alone(ref, alone_texts)
        for option in options:
            transcript = load_transcript(out / "hyp" / option / f"{ref.id}.json")
            row: dict[str, Any] = {"call": ref.id, "option": option, "form": ref.form, "duration": ref.duration}
            row["alone"] = None if base is None else {"rate": base.rate, "deletion_rate": _share(base.deletions,
                                                      base.ref_tokens), "ref_tokens": base.ref_tokens}  # fmt: skip
            if option == "speakers2" and ref.form != "mono":
                row["skipped"] = "stereo: one party per channel"
            elif transcript is None:
                row["missing"] = True
            else:
                score: CallScore = score_call(ref, transcript, alone=alone_texts)
                row["score"] = score.to_dict()
                g = check_glossary(spoken, unspoken, ref.text, transcript.text)
                row["glossary"] = {"recall": g.spoken.recall, "found": g.spoken.found, "in_ref": g.spoken.in_ref,
                                   "invented": list(g.invented)}  # fmt: skip
            results.append(row)
    return results


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


HEADER = (
    "call", "s", "option", "CER/WER %", "del %", "ins %", "uncovered s / speech s", "worst turn loss %",
    "turns lost (vs alone)", "role acc %", "DER %", "alone CER/WER %", "alone del %",
)  # fmt: skip


def table_row(row: dict[str, Any]) -> list[str]:
    a = row["alone"] or {}
    cells = [row["call"], f"{row['duration']:.0f}", row["option"]]
    alone = [pct(a.get("rate")), pct(a.get("deletion_rate"))]
    if "score" not in row:
        return [*cells, row.get("skipped") or "no transcript", *[""] * 7, *alone]
    s = row["score"]
    return [
        *cells,
        pct(s["rate"]),
        pct(s["deletion_rate"]),
        pct(s["insertion_rate"]),
        f"{num(s['uncovered_s'], '.1f')} / {num(s['speech_s'], '.0f')}",
        pct(s["worst_turn_loss"]),
        f"{s['turns_lost']}/{len(s['turns'])} ({s['turns_lost_vs_alone']})",
        pct(s["role_accuracy"]),
        pct(s["der"]),
        *alone,
    ]


def print_tables(built: list[BuiltCall], options: list[str], results: list[dict[str, Any]]) -> None:
    say("\n| " + " | ".join(HEADER) + " |")
    say("|" + "---|" * len(HEADER))
    for row in results:
        say("| " + " | ".join(table_row(row)) + " |")
    say("\n| call | option | spoken terms recognised | unspoken terms in the text |")
    say("|---|---|---|---|")
    for row in results:
        g = row.get("glossary")
        if g and row["option"] in ("default", "hotwords"):
            say(f"| {row['call']} | {row['option']} | {g['found']}/{g['in_ref']} | {', '.join(g['invented']) or '-'} |")
    say("\nLost turns (over 15 % of the turn's characters not recovered; alone: its pieces heard alone):")
    refs = {b.ref.id: b.ref for b in built}
    for row in results:
        for t in row.get("score", {}).get("turns", []):
            if t["loss"] is not None and t["loss"] > 0.15:
                ref_text = refs[row["call"]].turns[t["index"]].text
                where = f"turn {t['index']} {t['party']} {t['start']:.1f}-{t['end']:.1f} s"
                loss = f"loss {pct(t['loss'])} % (alone {pct(t['alone_loss'])} %), uncovered {t['uncovered_s']:.1f} s"
                say(f"- {row['call']} [{row['option']}] {where}, {loss}: ref「{ref_text}」 hyp「{t['hyp_text']}」")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:2] == ["api-transcribe"]:
        sys.exit(api_transcribe(sys.argv[2:]))
    main()
