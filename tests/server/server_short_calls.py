"""Short two-party calls from real evalset-dev speech, each a distinct recording (for the service's load and fault
tests, and ``benchmarks/server_load.py``).

Each call is two or three turns of short evalset-dev utterances (AISHELL-1/2, WenetSpeech, CosyVoice prompt in
Mandarin; LJSpeech, TIMIT, PocketSphinx in English), built by :mod:`callscribe.eval.calls` with random gaps and a
-65 dBFS noise floor drawn from a seed per call id, so no two files are the same bytes (checked).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from callscribe.eval.calls import CallSpec, TurnSpec, build_calls, load_pieces

ZH = ("aishell1", "aishell2", "wenetspeech", "cosyvoice")
EN = ("ljspeech", "timit", "pocketsphinx")
PARTIES = ("agent", "customer", "agent")


@dataclass(frozen=True)
class ShortCall:
    path: Path
    seconds: float
    sha256: str
    lang: str


def short_specs(n: int, *, forms: tuple[str, ...] = ("mono",), turns: int = 2) -> list[CallSpec]:
    """``n`` call specs: two of every three in Mandarin; the pieces and form rotate with the index."""
    specs = []
    seen = {"zh": 0, "en": 0}
    for i in range(n):
        lang, names = ("en", EN) if i % 3 == 2 else ("zh", ZH)
        k = seen[lang]
        seen[lang] += 1
        picked = [names[(k + j * (1 + k // len(names))) % len(names)] for j in range(turns)]
        form = forms[i % len(forms)]
        rate = 8000 if form == "stereo" else 16000
        specs.append(
            CallSpec(f"short{i:03d}_{lang}_{form}", lang, form, rate,
                     tuple(TurnSpec(PARTIES[j], (name,)) for j, name in enumerate(picked)), gap_s=(0.3, 0.8))
        )  # fmt: skip
    return specs


def build_short_calls(
    evalset: Path, out_dir: Path, n: int, *, forms: tuple[str, ...] = ("mono",), turns: int = 2
) -> list[ShortCall]:
    """Write ``n`` distinct short calls under ``out_dir/calls``; their paths, lengths and sha256."""
    specs = short_specs(n, forms=forms, turns=turns)
    pieces = load_pieces(evalset, {"zh", "en"})
    built = build_calls(evalset, out_dir, specs, pieces=pieces)
    if len(built) != n:
        raise RuntimeError(f"built {len(built)} of {n} calls: evalset-dev lacks some pieces ({', '.join(ZH + EN)})")
    calls = [
        ShortCall(b.audio_path, b.ref.duration, hashlib.sha256(b.audio_path.read_bytes()).hexdigest(), b.ref.lang)
        for b in built
    ]
    if len({c.sha256 for c in calls}) != n:
        raise RuntimeError("two short calls came out the same bytes")
    return calls
