"""Mono diarization speed on this machine: seconds of compute per second of audio (real-time factor).

    python benchmarks/diarize_speed.py [--minutes 5] [--threads 2] [--encoder auto|onnx|resemblyzer]

Builds a two-voice espeak-ng dialogue (repeated to the asked length), maps its speech with the product VAD, and
times the mono diarization that ``plan_speakers`` runs (embeddings, clustering, refinement). The encoder is
loaded before timing starts.
``--threads`` bounds torch (resemblyzer) or onnxruntime (the ONNX encoder).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from synth import AGENT_VOICE_EN, CUSTOMER_VOICE_EN, Turn, build_dialogue

from callscribe.audio import prepare_array
from callscribe.options import Options
from callscribe.speakers import embed
from callscribe.speakers.diarize import diarize

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
    ap.add_argument("--encoder", choices=["auto", "onnx", "resemblyzer"], default="auto")
    args = ap.parse_args()
    name = embed.get_encoder(args.encoder).name
    if name == "resemblyzer":
        import torch

        torch.set_num_threads(args.threads)
        encoder: embed.SpeakerEncoder = embed.VoiceEncoder(threads=args.threads)
    else:
        from callscribe.speakers.embed_onnx import OnnxVoiceEncoder

        encoder = OnnxVoiceEncoder(threads=args.threads)
    turns = [
        Turn("agent" if i % 2 == 0 else "customer", line, AGENT_VOICE_EN if i % 2 == 0 else CUSTOMER_VOICE_EN)
        for i, line in enumerate(LINES)
    ]
    piece = build_dialogue(turns).mix
    reps = max(1, int(np.ceil(args.minutes * 60 * 16000 / len(piece))))
    mix = np.tile(piece, reps)
    prepared = prepare_array(mix, 16000, Options())
    started = time.perf_counter()
    result = diarize(prepared.audio.read(0), prepared.speech[0], encoder=encoder)
    elapsed = time.perf_counter() - started
    audio_s = prepared.audio.duration
    print(f"machine: {platform.machine()}, encoder {name}, {args.threads} threads, {platform.processor() or 'cpu'}")
    print(f"audio {audio_s:.1f} s, speech {sum(s.duration for s in prepared.speech[0]):.1f} s")
    print(f"speakers found {result.speakers}, turns {len(result.spans)}")
    print(f"diarization {elapsed:.2f} s -> real-time factor {elapsed / audio_s:.4f}")


if __name__ == "__main__":
    main()
