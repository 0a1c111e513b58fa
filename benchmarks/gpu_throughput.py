"""Qwen3-ASR throughput of the ``qwen3`` engine's batched path, with the published architectures at random weights.

No download: the 1.7B / 0.6B checkpoints are built from their published dimensions with random weights, saved, and
loaded through the engine's own ``from_pretrained`` path. The clips are real speech cut from ../shared/evalset-dev
by callscribe's decoder, VAD and clip cutter, repeated up to ``--minutes``. Random weights would stop at random
places, so the output length is forced to a realistic rate (``--tokens-per-second``, default 4: min = max new
tokens). Prints audio seconds per second, peak memory and time per stage (features, audio encoder, decoder).

    python benchmarks/gpu_throughput.py --size 1.7b --minutes 10 --batch-size 64          # one GPU, bf16
    python benchmarks/gpu_throughput.py --tiny --minutes 1                                  # CPU smoke figure
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "engines_qwen"))

from tiny_qwen import TINY, Sizes, build_qwen_asr  # noqa: E402

from callscribe.audio import iter_clips, prepare  # noqa: E402
from callscribe.engines import base  # noqa: E402
from callscribe.engines.base import Clip, EngineOptions  # noqa: E402
from callscribe.engines.qwen3 import Qwen3Engine  # noqa: E402
from callscribe.options import Options  # noqa: E402

log = logging.getLogger("callscribe")

EVALSET = ROOT.parent / "shared" / "evalset-dev"
# Published dimensions (config.json of Qwen/Qwen3-ASR-1.7B and Qwen/Qwen3-ASR-0.6B).
SIZES: dict[str, Sizes] = {
    "1.7b": Sizes(
        audio_layers=24,
        audio_width=1024,
        audio_heads=16,
        audio_ffn=4096,
        downsample=480,
        text_layers=28,
        text_width=2048,
        text_heads=16,
        kv_heads=8,
        head_dim=128,
        text_ffn=6144,
        vocab_size=151936,
        mrope_section=(24, 20, 20),
        tie_embeddings=True,
    ),
    "0.6b": Sizes(
        audio_layers=18,
        audio_width=896,
        audio_heads=14,
        audio_ffn=3584,
        downsample=480,
        text_layers=28,
        text_width=1024,
        text_heads=16,
        kv_heads=8,
        head_dim=128,
        text_ffn=3072,
        vocab_size=151936,
        mrope_section=(24, 20, 20),
        tie_embeddings=True,
    ),
}


@dataclass(frozen=True)
class Report:
    model: str
    device: str
    dtype: str
    batch_size: int
    clips: int
    audio_s: float
    wall_s: float
    audio_s_per_s: float
    new_tokens: int
    tokens_per_s: float
    features_s: float
    encoder_s: float
    decoder_s: float
    peak_memory_gib: float
    load_s: float


class EncoderClock:
    """Time spent in the audio encoder, measured with forward hooks (synchronising the GPU around each call)."""

    def __init__(self, engine: Qwen3Engine) -> None:
        import torch

        self.cuda = engine.device.startswith("cuda")
        self.seconds = 0.0
        self._t0 = 0.0
        tower = engine.asr.model.thinker.audio_tower
        self._sync = torch.cuda.synchronize if self.cuda else (lambda: None)
        tower.register_forward_pre_hook(self._start)
        tower.register_forward_hook(self._stop)

    def _start(self, *_: Any) -> None:
        self._sync()
        self._t0 = time.perf_counter()

    def _stop(self, *_: Any) -> None:
        self._sync()
        self.seconds += time.perf_counter() - self._t0


def speech_clips(minutes: float, evalset: Path) -> list[Clip]:
    if not (evalset / "manifest.jsonl").exists():
        raise SystemExit(f"{evalset}: evalset-dev not found (pass --evalset)")
    rows = [json.loads(line) for line in (evalset / "manifest.jsonl").read_text().splitlines() if line.strip()]
    pool: list[Clip] = []
    for row in rows:
        with prepare(evalset / row["file"], Options()) as prepared:
            pool += list(iter_clips(prepared.audio, prepared.speech, call_id=Path(row["file"]).stem))
    if not pool:
        raise SystemExit(f"{evalset}: no speech found")
    clips: list[Clip] = []
    total = 0.0
    while total < minutes * 60:
        for clip in pool:
            clips.append(Clip(f"{clip.call_id}#{len(clips)}", clip.channel, clip.start, clip.audio, index=len(clips)))
            total += clip.duration
            if total >= minutes * 60:
                break
    return clips


def checkpoint(args: argparse.Namespace, device: str) -> tuple[Path, str]:
    name = "tiny" if args.tiny else args.size
    folder = Path(args.workdir or tempfile.gettempdir()) / f"callscribe-qwen3-{name}-random"
    if not (folder / "config.json").is_file():
        dtype = "float32" if args.tiny or device == "cpu" else args.dtype
        log.info("building %s (random weights) in %s", name, folder)
        build_qwen_asr(folder, TINY if args.tiny else SIZES[args.size], device=device, dtype=dtype)
    return folder, name


def run(args: argparse.Namespace) -> Report:
    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    folder, name = checkpoint(args, device)
    started = time.perf_counter()
    engine = base.create(
        "qwen3",
        model=str(folder),
        device=device,
        compute_type="float32" if device == "cpu" else args.dtype,
        batch_size=args.batch_size,
        attn_implementation=args.attn,
    )
    assert isinstance(engine, Qwen3Engine)
    load_s = time.perf_counter() - started
    if args.compile:
        engine.asr.model.thinker.model = torch.compile(engine.asr.model.thinker.model)
    extra: dict[str, Any] = {
        "recover": False,
        "force_length": True,
        "tokens_per_second": args.tokens_per_second,
        "token_margin": 0,
        "max_new_tokens": 4096,
    }
    if args.static_cache:
        extra["cache_implementation"] = "static"
    options = EngineOptions(batch_size=args.batch_size, extra=extra)
    clips = speech_clips(args.minutes, Path(args.evalset))
    engine.transcribe(clips[: args.batch_size], options)  # warm-up: kernels, allocator, compilation
    engine.stats = type(engine.stats)()
    clock = EncoderClock(engine)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    engine.transcribe(clips, options)
    wall = time.perf_counter() - started
    stats = engine.stats
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return Report(
        model=name,
        device=torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
        dtype=str(engine.dtype).replace("torch.", ""),
        batch_size=args.batch_size,
        clips=len(clips),
        audio_s=round(stats.audio_s, 1),
        wall_s=round(wall, 2),
        audio_s_per_s=round(stats.audio_s / wall, 2),
        new_tokens=stats.new_tokens,
        tokens_per_s=round(stats.new_tokens / wall, 1),
        features_s=round(stats.prepare_s, 2),
        encoder_s=round(clock.seconds, 2),
        decoder_s=round(stats.generate_s - clock.seconds, 2),
        peak_memory_gib=round(peak, 2),
        load_s=round(load_s, 1),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="1.7b", help="published architecture to build")
    parser.add_argument("--tiny", action="store_true", help="the 2-layer test model instead (CPU figure)")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of speech to transcribe")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tokens-per-second", type=float, default=4.0, help="forced output rate")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--attn", default="sdpa", help="sdpa | flash_attention_2 | eager")
    parser.add_argument("--static-cache", action="store_true", help="generate with a static KV cache")
    parser.add_argument("--compile", action="store_true", help="torch.compile the text decoder")
    parser.add_argument("--evalset", default=str(EVALSET))
    parser.add_argument("--workdir", default=None, help="where the random checkpoint is built (reused)")
    parser.add_argument("--json", default=None, help="also write the report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = run(args)
    width = max(len(k) for k in asdict(report))
    sys.stdout.write("".join(f"{k:<{width}}  {v}\n" for k, v in asdict(report).items()))
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
