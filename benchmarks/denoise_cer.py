"""Does the spectral-gating denoiser help recognition? CER/WER on evalset-dev, clean and with added noise.

Each recording goes through prepare() and list(iter_clips()) with ``denoise`` off and on, is transcribed by the
bundled Whisper-base (faster-whisper, CPU, int8, beam 5, language given) and scored with jiwer: CER for
Chinese (after converting to simplified and dropping punctuation and spaces), WER for English.

    python benchmarks/denoise_cer.py [--snr 10] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import jiwer
import numpy as np
import opencc
from faster_whisper import WhisperModel

from callscribe.audio import SAMPLE_RATE, iter_clips, prepare, prepare_array
from callscribe.engines.bundled import bundled_model_dir
from callscribe.options import Options

EVALSET = Path(__file__).resolve().parents[2] / "shared" / "evalset-dev"
_PUNCT = re.compile(r"[^\w\s']|_")
_T2S = opencc.OpenCC("t2s")


def normalise(text: str, lang: str) -> str:
    text = _PUNCT.sub(" ", _T2S.convert(text).lower())
    return "".join(text.split()) if lang == "zh" else " ".join(text.split())


def score(ref: str, hyp: str, lang: str) -> float:
    ref, hyp = normalise(ref, lang), normalise(hyp, lang)
    return jiwer.cer(ref, hyp) if lang == "zh" else jiwer.wer(ref, hyp)


def add_noise(samples: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(samples.shape)
    power = np.mean(samples**2) / 10 ** (snr_db / 10)
    return (samples + noise * np.sqrt(power)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snr", type=float, default=10.0, help="SNR of the added white noise, dB")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()

    rows = [json.loads(x) for x in (EVALSET / "manifest.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r["speakers"] == 1 and r["channels"] == 1][: args.limit or None]
    model = WhisperModel(str(bundled_model_dir()), device="cpu", compute_type="int8", cpu_threads=2)
    totals: dict[str, list[float]] = {}
    for i, row in enumerate(rows):
        with prepare(EVALSET / row["file"], Options()) as clean:
            samples = clean.audio.read(0)
        for condition in ("clean", f"noise{args.snr:g}dB"):
            audio = samples if condition == "clean" else add_noise(samples, args.snr, seed=i)
            with prepare_array(audio, SAMPLE_RATE, Options()) as prepared:
                for denoise in (False, True):
                    clips = list(iter_clips(prepared.audio, prepared.speech, call_id=row["file"], denoise=denoise))
                    texts = []
                    for clip in clips:
                        segments, _ = model.transcribe(
                            clip.audio, language=row["lang"], beam_size=5, condition_on_previous_text=False
                        )
                        texts.extend(s.text for s in segments)
                    err = score(row["text"], " ".join(texts), row["lang"])
                    key = f"{row['lang']} {condition} denoise={'on' if denoise else 'off'}"
                    totals.setdefault(key, []).append(err)
                    print(f"{row['file']:60s} {key:28s} {err:.3f}")
    print()
    for key, errs in sorted(totals.items()):
        metric = "CER" if key.startswith("zh") else "WER"
        print(f"{key:28s} mean {metric} {np.mean(errs):.3f} over {len(errs)} recordings")


if __name__ == "__main__":
    main()
