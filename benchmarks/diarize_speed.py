"""Mono diarization speed on this machine: seconds of compute per second of audio (real-time factor).

    python benchmarks/diarize_speed.py [--minutes 5] [--threads 2]

Builds a two-voice espeak-ng dialogue (repeated to the asked length), maps its speech with the product VAD, and
times plan_speakers (embeddings, clustering, refinement). The encoder is loaded before timing starts.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from synth import AGENT_VOICE_EN, CUSTOMER_VOICE_EN, Turn, build_dialogue

from callscribe.audio import prepare_array
from callscribe.options import Options
from callscribe.speakers import plan_speakers
from callscribe.speakers.embed import get_encoder

LINES = (
    "Thank you for calling Acme support, my name is Jane, how can I help you today?",
    "Hi, I am calling about my bill, it looks wrong this month.",
    "I am sorry to hear that, let me check your account for you.",
    "Sure, my account number is five five five one two.",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    turns = [
        Turn("agent" if i % 2 == 0 else "customer", line, AGENT_VOICE_EN if i % 2 == 0 else CUSTOMER_VOICE_EN)
        for i, line in enumerate(LINES)
    ]
    piece = build_dialogue(turns).mix
    reps = max(1, int(np.ceil(args.minutes * 60 * 16000 / len(piece))))
    mix = np.tile(piece, reps)
    prepared = prepare_array(mix, 16000, Options())
    get_encoder()
    started = time.perf_counter()
    plan = plan_speakers(prepared.audio, prepared.speech, Options())
    elapsed = time.perf_counter() - started
    audio_s = prepared.audio.duration
    print(f"machine: {platform.machine()}, {args.threads} torch threads, {platform.processor() or 'cpu'}")
    print(f"audio {audio_s:.1f} s, speech {sum(s.duration for s in prepared.speech[0]):.1f} s")
    print(f"speakers found {len(set(plan.labels[0]))}, turns {len(plan.speech[0])}")
    print(f"diarization {elapsed:.2f} s -> real-time factor {elapsed / audio_s:.4f}")


if __name__ == "__main__":
    main()
