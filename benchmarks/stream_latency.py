"""Live-stream latency and accuracy: real-time playback to a real ``callscribe serve`` on this machine.

Two-party stereo calls (8 kHz, bleed) are built from evalset-dev speech with known turns
(:mod:`callscribe.eval.calls`). The service runs in a subprocess with the bundled engine; the calls are played to
``/v1/stream`` by the real client (:func:`callscribe.cli_stream.play`) at real time, first one stream at a time, then
N streams at once (staggered by ``STAGGER_S``). For every reference turn:

- *first partial*: the first partial after the turn's speech started (turns that got one), and *first text*: the
  first partial or, when none came, the final;
- *final*: the final that ends the turn, after the turn's last speech (this includes the end-of-turn silence);
- *decode*: the final after the server's own ``turn_end`` (engine wait and decode only); a final decoded ahead at
  a pause (a guess the turn's end confirmed) comes with its ``turn_end`` (*ready at turn end*: within 50 ms).

The streamed finals (the transcript the service stores) are scored against the references with
:func:`callscribe.eval.calls_score.score_call` (CER for Mandarin, WER for English), next to the batch pipeline on the
same files with the same engine. The report says how many concurrent real-time streams keep the p95 final latency
within ``TARGET_P95_S``. The machine's load average is recorded: on a shared machine the numbers move with it.

    python benchmarks/stream_latency.py [--levels 1,2,3,4] [--json FILE] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from callscribe.cli_stream import Playback, load_pcm, play
from callscribe.eval.calls import CallSpec, TurnSpec, load_pieces, write_call
from callscribe.eval.calls_score import CallRef, score_call
from callscribe.model import Transcript

EVALSET = Path(__file__).resolve().parents[2] / "shared" / "evalset-dev"
KEY = "bench-key"
STAGGER_S = 1.7
TARGET_P95_S = 1.5
READY_S = 0.05  # a final this soon after its turn_end was decoded ahead
A, C = "agent", "customer"
CALLS = (
    CallSpec("live_zh_stereo8k", "zh", "stereo", 8000,
             (TurnSpec(A, ("cosyvoice",)), TurnSpec(C, ("fireredtts2",)), TurnSpec(A, ("aishell1",)),
              TurnSpec(C, ("wenetspeech",)), TurnSpec(A, ("soulx",)), TurnSpec(C, ("aishell2",))), bleed_db=-25.0),
    CallSpec("live_en_stereo8k", "en", "stereo", 8000,
             (TurnSpec(A, ("librispeech",)), TurnSpec(C, ("timit",)), TurnSpec(A, ("jfk",)),
              TurnSpec(C, ("pocketsphinx",)), TurnSpec(A, ("ljspeech",))), bleed_db=-25.0),
)  # fmt: skip


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(work: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    cmd = [sys.executable, "-m", "callscribe", "serve", "--engine", "whisper", "--threads", str(threads),
           "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(work / "data"), "--api-key", KEY,
           "--max-streams", "16"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSCRIBE_")}
    log = open(work / "server.log", "wb")  # noqa: SIM115 - the server's lifetime
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server did not start; see {work / 'server.log'}")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, round(q * (len(s) - 1)))], 3)


def turn_latencies(ref: CallRef, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per reference turn: first text, final and decode latency (seconds of stream time)."""
    finals = [e for e in events if e["type"] == "final" and e.get("text")]
    ends = {e["turn"]: e["t_recv"] for e in events if e["type"] == "turn_end"}
    out = []
    for r in ref.turns:
        mine = [f for f in finals if f["channel"] == r.channel and f["start"] < r.end and f["end"] > r.start]
        if not mine:
            out.append({"turn": r.index, "heard": False})
            continue
        turns = {f["turn"] for f in mine}
        texts = [e for e in events if e["type"] in ("partial", "final") and e.get("turn") in turns]
        last = max(mine, key=lambda f: f["end"])
        first_partial = next((e for e in texts if e["type"] == "partial"), None)
        out.append({
            "turn": r.index, "heard": True, "speech_s": round(r.end - r.start, 2),
            "first_text": round(texts[0]["t_recv"] - r.start, 3),
            "first_partial": round(first_partial["t_recv"] - r.start, 3) if first_partial is not None else None,
            "partial_before_final": first_partial is not None and first_partial["t_recv"] <= last["t_recv"],
            "final": round(last["t_recv"] - r.end, 3),
            "decode": round(last["t_recv"] - ends[last["turn"]], 3) if last["turn"] in ends else None,
        })  # fmt: skip
    return out


def run_level(url: str, calls: list[tuple[Path, CallRef]], n: int) -> list[tuple[CallRef, Playback]]:
    """``n`` streams at once, real time, staggered; each plays calls[i % len(calls)]."""
    results: list[tuple[CallRef, Playback] | None] = [None] * n

    def one(i: int) -> None:
        path, ref = calls[i % len(calls)]
        pcm, rate = load_pcm(path)
        time.sleep(i * STAGGER_S)
        start = {"language": ref.lang, "roles": [A, C], "metadata": {"call_id": f"{ref.id}-{n}-{i}"}}
        results[i] = (ref, play(f"{url.replace('http', 'ws')}/v1/stream", pcm, rate, api_key=KEY, start=start))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return [r for r in results if r is not None]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    heard = [r for r in rows if r["heard"]]
    first, final = [r["first_text"] for r in heard], [r["final"] for r in heard]
    partial = [r["first_partial"] for r in heard if r["first_partial"] is not None]
    decode = [r["decode"] for r in heard if r["decode"] is not None]
    return {
        "turns": len(rows), "heard": len(heard),
        "partial_before_final": round(sum(r["partial_before_final"] for r in heard) / max(1, len(heard)), 3),
        "first_partial_p50": _pct(partial, 0.5), "first_partial_p95": _pct(partial, 0.95),
        "first_text_p50": _pct(first, 0.5), "first_text_p95": _pct(first, 0.95),
        "final_p50": _pct(final, 0.5), "final_p95": _pct(final, 0.95),
        "decode_p50": _pct(decode, 0.5), "decode_p95": _pct(decode, 0.95),
        "ready_at_turn_end": round(sum(d <= READY_S for d in decode) / max(1, len(decode)), 3),
    }  # fmt: skip


def batch_rates(calls: list[tuple[Path, CallRef]], threads: int) -> dict[str, float | None]:
    from callscribe.pipeline import Pipeline

    out = {}
    for path, ref in calls:
        t = Pipeline({"engine": "whisper", "language": ref.lang, "threads": threads}).transcribe(path)
        out[ref.id] = score_call(ref, t, with_der=False).rate
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--evalset", type=Path, default=EVALSET)
    parser.add_argument("--levels", default="1,2,3,4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="stream-latency-"))
    pieces = load_pieces(args.evalset)
    calls = [(b.audio_path, b.ref) for b in (write_call(spec, pieces, work) for spec in CALLS)]
    load_before = os.getloadavg()
    proc, url = start_server(work, args.threads)
    report: dict[str, Any] = {"calls": {ref.id: round(ref.duration, 1) for _, ref in calls}, "levels": {}}
    try:
        for n in [int(x) for x in args.levels.split(",")]:
            played: list[tuple[CallRef, Playback]] = []
            if n == 1:  # one at a time
                for call in calls:
                    played += run_level(url, [call], 1)
            else:
                played = run_level(url, calls, n)
            rows = [row for ref, pb in played for row in turn_latencies(ref, pb.events)]
            level = summarize(rows)
            level["loadavg"] = os.getloadavg()
            level["errors"] = [e for _, pb in played for e in pb.errors]
            if n == 1:
                level["live_rates"] = {}
                for ref, pb in played:
                    done = pb.call_done or {}
                    t = Transcript.from_json((work / "data" / "streams" / done["transcript"]).read_text())
                    level["live_rates"][ref.id] = score_call(ref, t, with_der=False).rate
            report["levels"][n] = level
            report.setdefault("turns", {})[n] = rows
            print(json.dumps({"streams": n, **level}), flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    report["batch_rates"] = batch_rates(calls, args.threads)
    one = report["levels"].get(1, {})
    if "live_rates" in one:
        report["rate_gap"] = {k: round(one["live_rates"][k] - v, 4) for k, v in report["batch_rates"].items()
                              if one["live_rates"].get(k) is not None and v is not None}  # fmt: skip
    held = 0  # the most streams at which this level and every smaller one kept the p95 final within the target
    for n, lv in sorted(report["levels"].items()):
        if lv["final_p95"] is None or lv["final_p95"] > TARGET_P95_S:
            break
        held = n
    report["streams_within_target"] = held
    report["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "threads": args.threads,
                         "loadavg_before": load_before, "loadavg_after": os.getloadavg()}  # fmt: skip
    print(json.dumps({k: v for k, v in report.items() if k not in ("levels", "turns")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
