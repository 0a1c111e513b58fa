"""Peak memory and wall time of a full ``callscribe transcribe`` on one long stereo call.

Writes a stereo 8 kHz WAV of ``--minutes`` minutes (default 120) into a temp dir with
``benchmarks/decode_memory.py``'s generator (real evalset-dev speech, a different order per channel, so each
channel is a different party), then runs ``callscribe transcribe`` on it in a subprocess with the bundled
Whisper-base (CPU, int8) and reports that process's peak RSS (``getrusage(RUSAGE_CHILDREN)``) and wall time.
Acceptance: peak RSS <= 1.5 GB.

    python benchmarks/long_call.py [--minutes 120] [--threads 2] [--json result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode_memory import RATE, write_call

MAX_RSS_MB = 1536.0


@dataclass
class LongCallResult:
    minutes: float
    file_mb: float
    wall_s: float
    peak_rss_mb: float
    utterances: int
    exit_code: int

    @property
    def speed(self) -> float:
        return self.minutes * 60 / self.wall_s if self.wall_s else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="callscribe-long-") as tmp:
        wav = Path(tmp) / "long-call.wav"
        write_call(wav, args.minutes / 60)
        out = Path(tmp) / "out"
        cmd = [
            sys.executable, "-m", "callscribe", "transcribe", str(wav), "-o", str(out),
            "--engine", "whisper", "--compute-type", "int8", "--device", "cpu", "--threads", str(args.threads),
        ]  # fmt: skip
        sys.stdout.write(f"{args.minutes:g} min stereo {RATE} Hz wav, {wav.stat().st_size / 2**20:.0f} MiB\n")
        sys.stdout.write(" ".join(cmd) + "\n")
        sys.stdout.flush()
        started = time.perf_counter()
        proc = subprocess.run(cmd, check=False)
        wall = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        transcript = out / "long-call.json"
        utterances = (
            len(json.loads(transcript.read_text(encoding="utf-8"))["utterances"]) if transcript.is_file() else 0
        )
        result = LongCallResult(
            args.minutes,
            round(wav.stat().st_size / 2**20, 1),
            round(wall, 1),
            round(peak, 1),
            utterances,
            proc.returncode,
        )
    verdict = "ok" if result.peak_rss_mb <= MAX_RSS_MB and proc.returncode == 0 else "FAIL"
    sys.stdout.write(
        f"wall {result.wall_s:.0f} s ({result.speed:.1f}x real time), peak RSS {result.peak_rss_mb:.0f} MiB "
        f"(limit {MAX_RSS_MB:.0f}), {result.utterances} utterances, exit {result.exit_code}: {verdict}\n"
    )
    if args.json:
        tmp_json = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp_json.write_text(json.dumps({**asdict(result), "speed": round(result.speed, 2)}, indent=2) + "\n")
        os.replace(tmp_json, args.json)


if __name__ == "__main__":
    main()
