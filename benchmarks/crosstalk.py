"""Crosstalk on split-channel calls: does bleed removal keep every party's own speech and drop only the echo?

    python benchmarks/crosstalk.py [--evalset ../shared/evalset-dev] [--langs zh,en] [--bleed -15,-20,-25,-30]
                                   [--asr] [--strategy plan|all] [--json out.json]

Calls are built with :mod:`callscribe.eval.calls` from evalset-dev voices: agent on channel 0, customer on
channel 1, 8 kHz, each channel carrying the other party as bleed at the setting's level and delay (10-50 ms),
with a barge-in, a back-channel inside the other party's turn (zh) and overlapping turn ends.

Before ASR (``prepare_array`` -> ``plan_speakers``), per party: own speech seconds (the reference turns' VAD
spans) kept on its channel vs lost, the other party's solo speech sent to ASR on this channel (bleed seconds
the engine hears), and double-talk seconds kept on both channels. With ``--asr`` the whole pipeline runs
(bundled Whisper-base, language forced): engine seconds, per-party CER of its channel's text against its turns,
own speech left without text, bleed utterances left (an utterance on one channel whose text repeats a reference
turn of the other party at that time), and overlaps kept (double-talk with an utterance on both channels, both
marked ``overlap``). ``--strategy all`` sends the raw VAD spans of both channels to ASR (no level-based removal;
only the text check after ASR), for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz.distance import LCSseq

from callscribe.audio import prepare_array
from callscribe.eval.calls import CallRef, CallSpec, Piece, TurnSpec, build_call, load_pieces
from callscribe.eval.score import score_text
from callscribe.model import Span, Transcript
from callscribe.options import Options
from callscribe.speakers import SpeakerPlan, plan_speakers

ROOT = Path(__file__).resolve().parents[1]
EVALSET = ROOT.parent / "shared" / "evalset-dev"
# bleed level (dB) -> delay (ms): the four settings span 10-50 ms
SETTINGS = {-15.0: 10.0, -20.0: 23.0, -25.0: 37.0, -30.0: 50.0}
VOICES = {  # agent pieces, customer pieces, customer back-channel (or None)
    "zh": ("soulx", "fireredtts2:rest", "fireredtts2:bc"),
    "en": ("jfk", "librispeech", None),
}
TEXT_MATCH = 0.6  # share of an utterance's characters found in order in the other party's turn: it repeats it


def turns(lang: str) -> tuple[TurnSpec, ...]:
    agent, customer, bc = VOICES[lang]
    out = [
        TurnSpec("agent", (agent,)),
        TurnSpec("customer", (customer,)),
        TurnSpec("agent", (agent,), overlap_s=1.2),  # barge-in: 1.2 s of double-talk
    ]
    if bc:
        out.append(TurnSpec("customer", (bc,), overlap_s=3.0))  # a back-channel inside the agent's turn
    out += [TurnSpec("customer", (customer,), stretch=True), TurnSpec("agent", (agent,), overlap_s=0.8)]
    return tuple(out)


# harder settings: strong bleed arriving late, and a customer line 10 dB quieter than the agent's
HARD = ((-15.0, 50.0, 0.0), (-20.0, 30.0, -10.0))


def specs(langs: list[str], bleeds: list[float], hard: bool = False) -> list[tuple[CallSpec, float]]:
    """``(spec, customer channel gain in dB)`` per call."""
    out = []
    for lang in langs:
        settings = [(db, SETTINGS.get(db, 30.0), 0.0) for db in bleeds] + (list(HARD) if hard else [])
        for db, delay, gain in settings:
            name = f"{lang}_stereo_{-int(db)}db_{int(delay)}ms" + (f"_cust{int(gain)}db" if gain else "")
            spec = CallSpec(name, lang, "stereo", 8000, turns(lang), bleed_db=db, bleed_delay_ms=delay)
            out.append((spec, gain))
    return out


def _spans(pairs: Any) -> list[Span]:
    return [Span(float(a), float(b)) for a, b in pairs]


def _inter(a: list[Span], b: list[Span]) -> list[Span]:
    out = []
    for x in a:
        for y in b:
            lo, hi = max(x.start, y.start), min(x.end, y.end)
            if hi > lo:
                out.append(Span(lo, hi))
    return out


def _minus(a: list[Span], b: list[Span]) -> list[Span]:
    out = list(a)
    for y in b:
        nxt = []
        for x in out:
            if y.end <= x.start or y.start >= x.end:
                nxt.append(x)
                continue
            if y.start > x.start:
                nxt.append(Span(x.start, y.start))
            if y.end < x.end:
                nxt.append(Span(y.end, x.end))
        out = nxt
    return out


def _secs(spans: list[Span]) -> float:
    return sum(s.duration for s in spans)


@dataclass
class PartyTimes:
    own: list[Span]
    other: list[Span]
    overlap: list[Span]


def party_times(ref: CallRef) -> dict[int, PartyTimes]:
    speech = {c: _spans(s for t in ref.turns if t.channel == c for s in t.speech) for c in (0, 1)}
    both = _inter(speech[0], speech[1])
    return {c: PartyTimes(speech[c], _minus(speech[1 - c], speech[c]), both) for c in (0, 1)}


def plan_metrics(ref: CallRef, plan: SpeakerPlan, vad: dict[int, list[Span]]) -> dict[str, Any]:
    times = party_times(ref)
    out: dict[str, Any] = {"mode": plan.mode}
    for c, name in ((0, "agent"), (1, "customer")):
        kept = plan.speech.get(c, [])
        own = _secs(times[c].own)
        got = _secs(_inter(times[c].own, kept))
        out[name] = {
            "own_s": round(own, 2),
            "kept_s": round(got, 2),
            "lost_s": round(own - got, 2),
            "lost_by_vad_s": round(_secs(_minus(times[c].own, vad.get(c, []))), 2),
            "bleed_to_asr_s": round(_secs(_inter(times[c].other, kept)), 2),
            "other_solo_s": round(_secs(times[c].other), 2),
        }
    both = times[0].overlap
    on_both = _inter(_inter(both, plan.speech.get(0, [])), plan.speech.get(1, []))
    out["double_talk_s"] = round(_secs(both), 2)
    out["double_talk_kept_s"] = round(_secs(on_both), 2)
    out["double_talk_flagged_s"] = round(_secs(_inter(both, plan.overlaps)), 2)
    return out


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def asr_metrics(ref: CallRef, t: Transcript) -> dict[str, Any]:
    times = party_times(ref)
    out: dict[str, Any] = {"engine_s": round(t.timings.get("engine", 0.0), 1)}
    bleed_left = []
    for u in t.utterances:
        text = _norm(u.text)
        if len(text) < 3:
            continue
        for turn in ref.turns:
            if turn.channel == u.channel or not u.span.overlaps(Span(turn.start, turn.end)):
                continue
            shared = LCSseq.similarity(text, _norm(turn.text)) / len(text)
            own_time = _secs(_inter([u.span], times[u.channel].own))
            if shared >= TEXT_MATCH and own_time < 0.5 * u.duration:
                bleed_left.append(f"ch{u.channel} {u.start:.1f}-{u.end:.1f}: {u.text[:40]}")
                break
    out["bleed_utterances"] = bleed_left
    for c, name in ((0, "agent"), (1, "customer")):
        mine = [u for u in t.utterances if u.channel == c and u.text.strip()]
        ref_text = " ".join(turn.text for turn in ref.turns if turn.channel == c)
        hyp_text = " ".join(u.text for u in mine)
        score = score_text(ref_text, hyp_text, ref.lang)
        covered = [Span(u.start - 0.3, u.end + 0.3) for u in mine]
        out[name] = {
            "cer": round(score.rate or 0.0, 3),
            "deletions": score.deletions,
            "insertions": score.insertions,
            "own_without_text_s": round(_secs(_minus(times[c].own, covered)), 2),
        }
    kept = 0
    stretches = [s for s in times[0].overlap if s.duration >= 0.3]
    for s in stretches:
        marked = {u.channel for u in t.utterances if u.overlap and u.span.intersection(s) > 0}
        kept += marked == {0, 1}
    out["overlaps"] = f"{kept}/{len(stretches)}"
    return out


def unsplit(plan: SpeakerPlan, speech: dict[int, list[Span]]) -> SpeakerPlan:
    """The plan with the raw VAD spans of every channel: everything goes to ASR, only the text check remains."""
    labels = {c: [f"ch{c}"] * len(s) for c, s in speech.items()}
    return SpeakerPlan(plan.mode, speech, labels, list(plan.notes), levels=plan.levels)


def run_call(
    spec: CallSpec, gain_db: float, pieces: dict[str, Piece], args: argparse.Namespace, engine: Any
) -> dict[str, Any]:
    samples, ref = build_call(spec, pieces)
    samples[1] *= np.float32(10.0 ** (gain_db / 20.0))  # the customer's line level (own voice and bleed alike)
    options = Options(language=spec.lang)
    t0 = time.perf_counter()
    with prepare_array(samples, spec.sample_rate, options) as prepared:
        plan = plan_speakers(prepared.audio, prepared.speech, options)
        vad = prepared.speech
        if args.strategy == "all":
            plan = unsplit(plan, prepared.speech)
    row: dict[str, Any] = {"call": spec.id, "bleed_db": ref.bleed_db, "delay_ms": ref.bleed_delay_ms,
                           "duration_s": ref.duration, "plan_s": round(time.perf_counter() - t0, 2)}  # fmt: skip
    row.update(plan_metrics(ref, plan, vad))
    if args.asr:
        from unittest import mock

        from callscribe.pipeline import Pipeline
        from callscribe.speakers import stage

        pipe = Pipeline(options, engine=engine)
        with mock.patch.object(stage, "plan_speakers", lambda *_a, **_k: plan):
            t = pipe.transcribe(samples, sample_rate=spec.sample_rate)
        row["asr"] = asr_metrics(ref, t)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evalset", type=Path, default=EVALSET)
    ap.add_argument("--langs", default="zh,en")
    ap.add_argument("--bleed", default="-15,-20,-25,-30")
    ap.add_argument("--asr", action="store_true", help="run the whole pipeline with the bundled Whisper-base")
    ap.add_argument("--hard", action="store_true", help="add -15 dB at 50 ms and a customer line 10 dB down")
    ap.add_argument("--strategy", choices=("plan", "all"), default="plan")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    langs = [x for x in args.langs.split(",") if x]
    pieces = load_pieces(args.evalset, langs)
    engine = None
    if args.asr:
        from callscribe.engines.whisper import WhisperEngine

        engine = WhisperEngine()
    bleeds = [float(b) for b in args.bleed.split(",") if b]
    rows = [run_call(spec, gain, pieces, args, engine) for spec, gain in specs(langs, bleeds, args.hard)]
    for r in rows:
        line = f"{r['call']:<30} {r['bleed_db']:>5.0f} dB {r['delay_ms']:>3.0f} ms"
        for name in ("agent", "customer"):
            p = r[name]
            line += (
                f" | {name} kept {p['kept_s']:5.2f}/{p['own_s']:5.2f} s (VAD miss {p['lost_by_vad_s']:.2f}),"
                f" bleed to ASR {p['bleed_to_asr_s']:5.2f}/{p['other_solo_s']:5.2f}"
            )
        line += f" | double-talk on both {r['double_talk_kept_s']:.2f}/{r['double_talk_s']:.2f} s"
        if "asr" in r:
            x = r["asr"]
            line += (
                f"\n    ASR {x['engine_s']:5.1f} s | CER agent {x['agent']['cer']:.3f}"
                f" customer {x['customer']['cer']:.3f}"
                f" | own speech without text {x['agent']['own_without_text_s']:.2f} / "
                f"{x['customer']['own_without_text_s']:.2f} s | bleed utterances {len(x['bleed_utterances'])}"
                f" | overlaps kept {x['overlaps']}"
            )
            line += "".join(f"\n      bleed left: {b}" for b in x["bleed_utterances"])
        print(line)
    if args.json:
        meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "strategy": args.strategy,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
        args.json.write_text(json.dumps({"meta": meta, "calls": rows}, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
