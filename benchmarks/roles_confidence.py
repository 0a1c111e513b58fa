"""Role decisions and their confidence through the real pipeline: example calls and customer-first calls.

    python benchmarks/roles_confidence.py                  # transcribe (bundled Whisper-base) and score
    python benchmarks/roles_confidence.py --saved DIR      # re-score transcripts saved by an earlier run

For each call: are agent and customer right (each speaker's role against the reference speaker it shares most
time with), the confidence, and whether the decision is unsure. Then the same decision on every prefix of the
call (its first k utterances) as a harder set: short, cue-poor calls show how confidence relates to being right.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "speakers"))

from roles_calls import CUSTOMER_FIRST, EN_NO_CUES, HELD_OUT  # noqa: E402
from speakers_calls import MONO_TURNS  # noqa: E402
from synth import build_dialogue, resample, write_wav  # noqa: E402

import callscribe  # noqa: E402
from callscribe.model import Span, Transcript  # noqa: E402
from callscribe.speakers.roles import assign_roles, load_patterns  # noqa: E402

EXAMPLES = ROOT / "examples" / "calls"


def truth(t: Transcript, turns: list[dict]) -> dict[str, str]:
    """Each speaker id -> the reference speaker it shares most time with."""
    share: dict[tuple[str, str], float] = {}
    for u in t.utterances:
        for r in turns:
            key = (u.speaker or "", r["speaker"])
            share[key] = share.get(key, 0.0) + u.span.intersection(Span(r["start"], r["end"]))
    best: dict[str, tuple[float, str]] = {}
    for (s, role), v in share.items():
        if v > best.get(s, (-1.0, ""))[0]:
            best[s] = (v, role)
    return {s: role for s, (_, role) in best.items()}


def decide(t: Transcript, turns: list[dict], k: int | None = None) -> tuple[bool, float, bool]:
    utts = list(t.utterances[:k] if k else t.utterances)
    ids = list(dict.fromkeys(u.speaker for u in utts if u.speaker))
    d = assign_roles(utts, ids, load_patterns())
    ref = truth(t, turns)
    right = all(d[s].role == ref.get(s) for s in ids if d[s].role in ("agent", "customer"))
    conf = max((x.confidence for x in d.values() if x.role in ("agent", "customer")), default=0.0)
    return right, conf, any(x.unsure for x in d.values())


def calls() -> list[tuple[str, str, str | None, list[dict], object]]:
    """(name, language, audio path or None, reference turns, turns to synthesise or None)."""
    out: list = []
    for line in (EXAMPLES / "refs.jsonl").read_text(encoding="utf-8").splitlines():
        ref = json.loads(line)
        out.append((ref["file"], ref["lang"], str(EXAMPLES / ref["file"]), ref["turns"], None))
    synthetic = {"en_hold_first": ("en", MONO_TURNS), **CUSTOMER_FIRST, "en_no_cues": ("en", EN_NO_CUES), **HELD_OUT}
    for name, (lang, script) in synthetic.items():
        out.append((name, lang, None, [], script))
    return out


def transcribe_all(save: Path, only: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, lang, path, turns, script in calls():
            if only and name not in only:
                continue
            if script is not None:
                d = build_dialogue(script)
                path = str(Path(tmp) / f"{name}.wav")
                write_wav(path, resample(d.mix, d.sample_rate, 8000), 8000)
                turns = [{"start": r.start, "end": r.end, "speaker": r.speaker} for r in d.turns]
            t = callscribe.transcribe(path, engine="whisper", language=lang)
            (save / f"{name}.json").write_text(t.to_json(), encoding="utf-8")
            (save / f"{name}.turns.json").write_text(json.dumps(turns), encoding="utf-8")
            print(f"transcribed {name}", file=sys.stderr)


def report(saved: Path) -> None:
    print("| call | roles right | confidence | unsure | prefixes: right/confidence |")
    print("|---|---|---|---|---|")
    points: list[tuple[float, bool]] = []
    for name, *_ in calls():
        if not (saved / f"{name}.json").exists():
            continue
        t = Transcript.from_json((saved / f"{name}.json").read_text(encoding="utf-8"))
        turns = json.loads((saved / f"{name}.turns.json").read_text(encoding="utf-8"))
        right, conf, unsure = decide(t, turns)
        pre = []
        for k in range(1, len(t.utterances)):
            r, c, _ = decide(t, turns, k)
            points.append((c, r))
            pre.append(f"{'ok' if r else 'WRONG'} {c:.2f}")
        print(f"| {name} | {'yes' if right else 'NO'} | {conf:.3f} | {'yes' if unsure else 'no'} | {', '.join(pre)} |")
    print()
    print("| confidence of prefix decisions | decisions | right |")
    print("|---|---|---|")
    for lo, hi in ((0.0, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.99), (0.99, 1.01)):
        got = [r for c, r in points if lo <= c < hi]
        print(f"| [{lo:.2f}, {min(hi, 1.0):.2f}) | {len(got)} | {sum(got)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--saved", type=Path, help="score transcripts saved in this folder instead of transcribing")
    ap.add_argument("--save", type=Path, default=Path(tempfile.gettempdir()) / "callscribe_roles", help="transcripts")
    ap.add_argument("--only", nargs="*", default=[], help="transcribe only these calls (names as in the table)")
    args = ap.parse_args()
    folder = args.saved
    if folder is None:
        folder = args.save
        folder.mkdir(parents=True, exist_ok=True)
        transcribe_all(folder, args.only)
    report(folder)


if __name__ == "__main__":
    main()
