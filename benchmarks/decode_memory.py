"""Peak memory and time of decode + VAD + clip cutting on a long call.

Writes a stereo 8 kHz WAV of ``--hours`` hours (default 2) to a temp dir by repeating real speech from
../shared/evalset-dev (each channel in a different order, with pauses), then runs ``prepare()`` and cuts every
clip one at a time, printing peak RSS and wall time. ``--model DIR`` loads a CTranslate2 Whisper model first,
to measure with a model resident beside the audio.

    python benchmarks/decode_memory.py [--hours 2] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import soxr

from callscribe.audio import SAMPLE_RATE, clip_audio, decode, plan_clips, prepare
from callscribe.options import Options

EVALSET = Path(__file__).resolve().parents[2] / "shared" / "evalset-dev"
RATE = 8_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speech_pieces() -> list[np.ndarray]:
    """Every evalset-dev recording, channel 0, at 8 kHz, each followed by a pause."""
    rows = [json.loads(line) for line in (EVALSET / "manifest.jsonl").read_text().splitlines() if line.strip()]
    pieces = []
    for i, row in enumerate(rows):
        with decode(EVALSET / row["file"]) as audio:
            samples = soxr.resample(audio.read(0), SAMPLE_RATE, RATE).astype(np.float32)
        pause = np.zeros(int(RATE * (0.5 + (i % 5) * 0.7)), dtype=np.float32)
        pieces.append(np.concatenate([samples, pause]))
    return pieces


def write_call(path: Path, hours: float) -> None:
    pieces = speech_pieces()
    left = np.concatenate(pieces)
    right = np.concatenate(pieces[::-1])
    length = min(len(left), len(right))
    block = (np.clip(np.stack([left[:length], right[:length]]).T, -1, 1) * 32767).astype("<i2")
    total = int(hours * 3600 * RATE)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        written = 0
        while written < total:
            take = min(length, total - written)
            out.writeframes(block[:take].tobytes())
            written += take


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--model", help="CTranslate2 Whisper model directory to load first")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="callscribe-bench-") as tmp:
        path = Path(tmp) / "long-call.wav"
        write_call(path, args.hours)
        print(f"file: {args.hours:g} h stereo {RATE} Hz s16 wav, {path.stat().st_size / 2**20:.0f} MiB")
        model = None
        if args.model:
            from faster_whisper import WhisperModel

            model = WhisperModel(args.model, device="cpu", compute_type="int8")
            print(f"model loaded: peak RSS {peak_rss_mb():.0f} MiB")
        print(f"before decoding: peak RSS {peak_rss_mb():.0f} MiB")

        started = time.perf_counter()
        with prepare(path, Options()) as prepared:
            prepared_s = time.perf_counter() - started
            print(
                f"prepare: {prepared_s:.1f} s wall ({prepared.timings['decode']:.1f} s decode, "
                f"{prepared.timings['vad']:.1f} s VAD), peak RSS {peak_rss_mb():.0f} MiB"
            )
            for channel, spans in prepared.speech.items():
                print(f"  channel {channel}: {len(spans)} spans, {sum(s.duration for s in spans) / 60:.1f} min speech")
            started = time.perf_counter()
            plans = plan_clips(prepared.audio, prepared.speech)
            clip_seconds = 0.0
            for plan in plans:
                clip_seconds += clip_audio(prepared.audio, plan).duration
            print(
                f"clips: {len(plans)} ({clip_seconds / 60:.1f} min) cut one at a time in "
                f"{time.perf_counter() - started:.1f} s, peak RSS {peak_rss_mb():.0f} MiB"
            )
        del model
        print(f"audio {args.hours * 3600:.0f} s, realtime factor {args.hours * 3600 / prepared_s:.0f}x")


if __name__ == "__main__":
    main()
