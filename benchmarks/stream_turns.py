"""End of turn for live streams: how long a silence, and does an audio turn-detection model do better?

Two-party calls are built from evalset-dev speech with known turns (:mod:`callscribe.eval.calls`) in two sets:
``mid``, where every turn is one utterance whose own pauses ``stretch`` widens to 0.3-0.8 s (a final before its end
cuts the speaker off), and ``sentences``, where turns are two or three utterances 0.3-0.8 s apart (a final there ends
a sentence). Each call is fed to the live turn tracker (:class:`callscribe.streaming.turns.CallTurns`, crosstalk
gate included; ``--no-bleed-gate`` turns it off) in 100 ms blocks, as a stream, under each end-of-turn policy:

- ``silence S``: the turn ends after S seconds of silence;
- ``smart-turn C/F``: after C seconds of silence the smart-turn v3 model (ONNX, shipped in the ``pipecat-ai`` wheel;
  pass its path with ``--smart-turn``) hears the turn's last 8 s; "complete" ends the turn there, otherwise the turn
  ends after F seconds of silence.

For every reference turn: a *premature final* is a turn the tracker closed before the reference turn's speech ended
(the final would cut the speaker off); the *end latency* is how long after the turn's last speech the tracker
decided (the final's decode comes on top); a *merged* turn is one the tracker did not close before the same
channel's next turn began. Spurious closes (speech the reference does not have: bleed, noise) are counted apart.

    python benchmarks/stream_turns.py [--smart-turn PATH.onnx] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callscribe.audio.decode import SAMPLE_RATE
from callscribe.eval.calls import CallSpec, TurnSpec, build_call, load_pieces
from callscribe.eval.calls_score import RefTurn
from callscribe.streaming import turns as turns_module
from callscribe.streaming.turns import CallTurns, EndOfTurn, SilenceEnd

EVALSET = Path(__file__).resolve().parents[2] / "shared" / "evalset-dev"
BLOCK_S = 0.1
SILENCES = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2)
SMART = ((0.2, 1.0), (0.3, 1.0), (0.2, 2.0))
A, C = "agent", "customer"


def _t(party: str, *pieces: str, stretch: bool = True) -> TurnSpec:
    return TurnSpec(party, pieces, stretch)


# "mid": every turn is one utterance of one source with its own pauses widened to 0.3-0.8 s: every pause is
# inside what the speaker says, so any final before its end cuts them off.
MID: tuple[CallSpec, ...] = (
    CallSpec("eot_mid_zh_stereo", "zh", "stereo", 16000,
             (_t(A, "soulx"), _t(C, "fireredtts2"), _t(A, "cosyvoice"), _t(C, "wenetspeech"), _t(A, "aishell1"),
              _t(C, "fireredtts2"), _t(A, "soulx"), _t(C, "aishell2"))),
    CallSpec("eot_mid_zh_stereo8k", "zh", "stereo", 8000,
             (_t(C, "fireredtts2"), _t(A, "soulx"), _t(C, "aishell1"), _t(A, "cosyvoice"), _t(C, "wenetspeech"),
              _t(A, "soulx"), _t(C, "fireredtts2"))),
    CallSpec("eot_mid_en_stereo", "en", "stereo", 16000,
             (_t(A, "librispeech"), _t(C, "jfk"), _t(A, "timit"), _t(C, "pocketsphinx"), _t(A, "librispeech"),
              _t(C, "jfk"), _t(A, "ljspeech"))),
    CallSpec("eot_mid_zh_mono", "zh", "mono", 16000,
             (_t(A, "soulx"), _t(C, "fireredtts2"), _t(A, "cosyvoice"), _t(C, "aishell1"), _t(A, "soulx"),
              _t(C, "wenetspeech"))),
)  # fmt: skip
# "sentences": turns of two or three utterances 0.3-0.8 s apart, as read: a final at those pauses ends a
# sentence (acceptable: finals per sentence), and the turn's end must still come soon after its last word.
SENTENCES: tuple[CallSpec, ...] = (
    CallSpec("eot_sent_zh_stereo", "zh", "stereo", 16000,
             (_t(A, "cosyvoice", "soulx", stretch=False), _t(C, "aishell1", "wenetspeech", stretch=False),
              _t(A, "aishell2", "cosyvoice", "aishell1", stretch=False), _t(C, "fireredtts2", "aishell2",
              stretch=False))),
    CallSpec("eot_sent_en_stereo", "en", "stereo", 8000,
             (_t(A, "librispeech", "timit", stretch=False), _t(C, "jfk", "pocketsphinx", stretch=False),
              _t(A, "ljspeech", "librispeech", "timit", stretch=False), _t(C, "timit", "jfk", stretch=False))),
)  # fmt: skip
SETS = {"mid": MID, "sentences": SENTENCES}


class SmartTurnEnd:
    """End of turn by smart-turn v3: asked once per pause, after ``candidate_s`` of silence; ``fallback_s`` of
    silence ends the turn whatever it said."""

    def __init__(self, model: SmartTurnModel, candidate_s: float, fallback_s: float) -> None:
        self.model = model
        self.candidate_s = candidate_s
        self.fallback_s = fallback_s
        self._asked = False
        self._last = 0.0

    def ended(self, silence_s: float, audio: Callable[[], np.ndarray]) -> bool:
        if silence_s < self._last:  # a new pause
            self._asked = False
        self._last = silence_s
        if silence_s >= self.fallback_s:
            self._asked = False
            return True
        if silence_s >= self.candidate_s and not self._asked:
            self._asked = True
            if self.model.complete(audio()):
                self._asked = False
                return True
        return False


class SmartTurnModel:
    """smart-turn v3 (ONNX): Whisper-style log-mel of the last 8 s (zero-padded in front) -> P(turn complete)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime
        from transformers import WhisperFeatureExtractor

        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.features = WhisperFeatureExtractor(chunk_length=8)
        self.calls = 0
        self.seconds = 0.0

    def probability(self, audio: np.ndarray) -> float:
        started = time.perf_counter()
        n = 8 * SAMPLE_RATE
        x = audio[-n:] if len(audio) >= n else np.pad(audio, (n - len(audio), 0))
        feats = self.features(x, sampling_rate=SAMPLE_RATE, return_tensors="np", padding="max_length",
                              max_length=n, truncation=True, do_normalize=True).input_features  # fmt: skip
        out = self.session.run(None, {"input_features": feats.astype(np.float32)})[0]
        self.calls += 1
        self.seconds += time.perf_counter() - started
        return float(np.asarray(out).reshape(-1)[0])

    def complete(self, audio: np.ndarray) -> bool:
        return self.probability(audio) > 0.5


@dataclass
class Tally:
    turns: int = 0
    premature: int = 0  # reference turns closed early at least once
    premature_closes: int = 0
    merged: int = 0
    spurious: int = 0
    latencies: list[float] = field(default_factory=list)

    def row(self, name: str) -> dict[str, Any]:
        lat = sorted(self.latencies)
        p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))] if lat else None
        return {
            "policy": name,
            "turns": self.turns,
            "premature_turns": self.premature,
            "premature_rate": round(self.premature / max(1, self.turns), 3),
            "premature_closes": self.premature_closes,
            "merged": self.merged,
            "spurious": self.spurious,
            "end_latency_p50": round(statistics.median(lat), 3) if lat else None,
            "end_latency_p95": round(p95, 3) if p95 is not None else None,
        }


def run_call(audio: np.ndarray, policy: Callable[[], EndOfTurn]) -> dict[int, list[tuple[float, float, float]]]:
    """Per channel, ``(speech_start, last_speech, decided_at)`` of every turn the live tracker closed."""
    turns = CallTurns(audio.shape[1], end_of_turn=policy)
    step = round(BLOCK_S * SAMPLE_RATE)
    out: dict[int, list[tuple[float, float, float]]] = {ch: [] for ch in range(audio.shape[1])}
    for first in range(0, len(audio), step):
        last = first + step >= len(audio)
        for kind, turn in turns.push(audio[first : first + step], last=last):
            if kind == "close":
                out[turn.channel].append((turn.speech_start, turn.last_speech, float(turn.closed_at or 0.0)))
    return out


def score(closes: Sequence[tuple[float, float, float]], refs: Sequence[RefTurn], tally: Tally) -> None:
    """The closes overlapping a reference turn: the last one ends it, any before it ended it early."""
    for k, ref in enumerate(refs):
        tally.turns += 1
        nxt = refs[k + 1].start if k + 1 < len(refs) else float("inf")
        over = [c for c in closes if c[0] < ref.end and c[1] > ref.start]
        if not over:
            continue
        early = over[:-1]
        if early:
            tally.premature += 1
            tally.premature_closes += len(early)
        ending = over[-1]
        if ending[1] > nxt:
            tally.merged += 1
        else:
            tally.latencies.append(max(0.0, ending[2] - ref.end))
    for c in closes:
        if not any(c[0] < r.end and r.start < c[1] for r in refs):
            tally.spurious += 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evalset", type=Path, default=EVALSET)
    parser.add_argument("--smart-turn", type=Path, help="smart-turn v3 ONNX (from the pipecat-ai wheel)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-bleed-gate", action="store_true", help="take crosstalk for speech (to measure the gate)")
    args = parser.parse_args(argv)
    if args.no_bleed_gate:
        turns_module.BLEED_GAP_DB = float("inf")
    pieces = load_pieces(args.evalset)
    data: dict[str, list[tuple[str, np.ndarray, list[RefTurn]]]] = {}
    for set_name, specs in SETS.items():
        data[set_name] = []
        for spec in specs:
            mix, ref = build_call(spec, pieces)
            if spec.sample_rate != SAMPLE_RATE:  # the live path hears 16 kHz, as the server resamples
                import soxr

                mix = np.asarray(soxr.resample(mix.T, spec.sample_rate, SAMPLE_RATE), np.float32).T
            data[set_name].append((spec.id, np.ascontiguousarray(mix.T), list(ref.turns)))
    policies: list[tuple[str, Callable[[], EndOfTurn]]] = [
        (f"silence {s:.1f}s", lambda s=s: SilenceEnd(s)) for s in SILENCES
    ]
    model = SmartTurnModel(args.smart_turn) if args.smart_turn else None
    if model is not None:
        for cand, fall in SMART:
            policies.append((f"smart-turn {cand:.1f}/{fall:.1f}s", lambda c=cand, f=fall: SmartTurnEnd(model, c, f)))
    rows = []
    for name, make in policies:
        row: dict[str, Any] = {"policy": name}
        for set_name, calls in data.items():
            tally = Tally()
            for _label, audio, refs in calls:
                for ch, closes in run_call(audio, make).items():
                    score(closes, [t for t in refs if t.channel == ch], tally)
            row[set_name] = tally.row(name)
            row[set_name].pop("policy")
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {
        "sets": {k: [c.id for c in v] for k, v in SETS.items()},
        "turns": {k: rows[0][k]["turns"] for k in SETS} if rows else {},
        "rows": rows,
        "smart_turn_ms_per_call": round(1000 * model.seconds / max(1, model.calls), 1) if model else None,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "loadavg": os.getloadavg()},
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(f"turns: {report['turns']}; smart-turn ms/call: {report['smart_turn_ms_per_call']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
