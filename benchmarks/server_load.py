"""Load on the real service over loopback: many concurrent clients sending short real calls, against the batch CLI.

Builds ``clients x per-client`` distinct short two-party calls from evalset-dev speech (mono 16 kHz and stereo
8 kHz, see ``tests/server/server_short_calls.py``), then, in one run on this machine:

1. ``callscribe transcribe`` (bundled Whisper) on the folder of calls: its own "transcribed in" time (engine
   loaded) and its wall time;
2. ``callscribe serve`` (same engine, SQLite call store) with ``clients`` threads started together, each sending
   its calls one after the other, alternating ``POST /v1/calls`` + polling ``GET /v1/jobs/{id}`` and the OpenAI
   endpoint through the official ``openai`` client (no retries: every error counts). Job latency (send to done),
   p50/p95 per endpoint, throughput in audio seconds per second from the first send to the last answer, the
   server's RSS sampled every 0.5 s (``/proc``), the load average;
3. late arrivals (``--late``): a short call alone, then the same kind of short call sent while a long call is
   being transcribed: how long the late one waits.

    python benchmarks/server_load.py [--clients 50] [--per-client 2] [--late] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
EVALSET = ROOT.parent / "shared" / "evalset-dev"
sys.path.insert(0, str(ROOT / "tests" / "server"))  # the short-call builder the service tests use

from server_short_calls import ZH, ShortCall, build_short_calls  # noqa: E402

KEY = "bench-key-0123456789"
POLL_S = 0.25
RSS_EVERY_S = 0.5
MAX_RSS_SAMPLES = 20_000


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CALLSCRIBE_")}


# -- 1. the batch CLI ---------------------------------------------------------------------------------------------
def run_cli(calls_dir: Path, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "callscribe", "transcribe", str(calls_dir), "-o", str(out), "--engine", "whisper"]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=3600)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"callscribe transcribe failed ({r.returncode}):\n{r.stderr[-2000:]}")
    found = re.search(r"transcribed in ([\d.]+) s", r.stdout + r.stderr)
    done = re.search(r"calls\s+(\d+) \((\d+) transcribed", r.stdout + r.stderr)
    return {
        "seconds": float(found.group(1)) if found else wall,
        "wall_seconds": wall,
        "transcribed": int(done.group(2)) if done else None,
        "load_avg": [load0, os.getloadavg()[0]],
    }


# -- 2. the service -----------------------------------------------------------------------------------------------
class Server:
    def __init__(self, root: Path) -> None:
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "callscribe", "serve", "--engine", "whisper", "--port", str(port),
               "--data-dir", str(root / "data"), "--db", f"sqlite:///{root / 'calls.db'}", "--api-key", KEY,
               "--log-level", "warning"]  # fmt: skip
        self.log = (root / "server.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=clean_env())
        self.rss: list[tuple[float, float]] = []
        self._sampling = threading.Event()

    def wait_ready(self, timeout: float = 300) -> float:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the server was not ready after {timeout:.0f} s")

    def sample_rss(self) -> None:
        def loop() -> None:
            while not self._sampling.wait(RSS_EVERY_S) and len(self.rss) < MAX_RSS_SAMPLES:
                mb = rss_mb(self.proc.pid)
                if mb is not None:
                    self.rss.append((time.time(), mb))

        threading.Thread(target=loop, daemon=True).start()

    def stop(self) -> None:
        self._sampling.set()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def send_call(url: str, call: ShortCall, timeout: float) -> float:
    """``POST /v1/calls`` and poll the job until it is done; seconds from send to done."""
    auth = {"Authorization": f"Bearer {KEY}"}
    t0 = time.perf_counter()
    with httpx.Client(timeout=60) as client:
        with call.path.open("rb") as fh:
            r = client.post(f"{url}/v1/calls", files={"file": (call.path.name, fh)}, headers=auth)
        if r.status_code != 202:
            raise RuntimeError(f"POST /v1/calls {r.status_code}: {r.text[:200]}")
        job_id = r.json()["id"]
        while time.perf_counter() - t0 < timeout:
            job = client.get(f"{url}/v1/jobs/{job_id}", headers=auth).json()
            if job["state"] == "done":
                return time.perf_counter() - t0
            if job["state"] == "failed":
                raise RuntimeError(f"job {job_id} failed: {job['error']}")
            time.sleep(POLL_S)
    raise RuntimeError(f"job {job_id} not done after {timeout:.0f} s")


def send_openai(url: str, call: ShortCall, timeout: float) -> float:
    """The OpenAI endpoint through the official client; seconds from send to answer."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=timeout)
    t0 = time.perf_counter()
    with call.path.open("rb") as fh:
        answer = client.audio.transcriptions.create(model="whisper-1", file=fh)
    seconds = time.perf_counter() - t0
    client.close()
    if not answer.text.strip():
        raise RuntimeError(f"{call.path.name}: empty text")
    return seconds


def load(server: Server, calls: list[ShortCall], clients: int, timeout: float) -> dict[str, Any]:
    per_client = len(calls) // clients
    results: list[tuple[str, float, float]] = []  # endpoint, latency, audio seconds
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    ends: list[float] = []

    def client(i: int) -> None:
        start.wait()
        for j in range(per_client):
            call = calls[i * per_client + j]
            kind, send = ("calls", send_call) if (i + j) % 2 == 0 else ("openai", send_openai)
            try:
                seconds = send(server.url, call, timeout)
                with lock:
                    results.append((kind, seconds, call.seconds))
                    ends.append(time.perf_counter())
            except Exception as exc:
                with lock:
                    errors.append(f"{kind} {call.path.name}: {' '.join(str(exc).split())[:200]}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    load0 = os.getloadavg()[0]
    rss_before = rss_mb(server.proc.pid)
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout)
    t_end = max(ends) if ends else time.perf_counter()
    audio = sum(a for _, _, a in results)
    lat = {k: [s for kind, s, _ in results if kind == k] for k in ("calls", "openai")}
    rss = [mb for _, mb in server.rss]
    return {
        "requests": len(results) + len(errors),
        "ok": len(results),
        "errors": errors,
        "audio_seconds": audio,
        "seconds": t_end - t0,
        "throughput": audio / (t_end - t0) if results else 0.0,
        "p50": {k: pct(v, 0.5) for k, v in lat.items()} | {"all": pct([s for _, s, _ in results], 0.5)},
        "p95": {k: pct(v, 0.95) for k, v in lat.items()} | {"all": pct([s for _, s, _ in results], 0.95)},
        "rss_mb": {"idle": rss_before, "peak": max(rss) if rss else None, "after": rss_mb(server.proc.pid)},
        "rss_samples": len(rss),
        "load_avg": [load0, os.getloadavg()[0]],
    }


# -- 3. late arrivals -------------------------------------------------------------------------------------------
def late(server: Server, long_call: ShortCall, shorts: list[ShortCall], delay: float) -> dict[str, Any]:
    """A short call alone; a long call; another short call ``delay`` s after the long one was sent."""
    alone = send_openai(server.url, shorts[0], 1800)
    box: dict[str, float] = {}

    def timed(name: str, call: ShortCall) -> Callable[[], None]:
        def go() -> None:
            box[f"{name}_sent"] = time.perf_counter()
            box[name] = send_openai(server.url, call, 1800)
            box[f"{name}_done"] = time.perf_counter()

        return go

    long_thread = threading.Thread(target=timed("long", long_call))
    long_thread.start()
    time.sleep(delay)
    timed("late", shorts[1])()
    long_thread.join(1800)
    return {
        "short_alone_s": alone,
        "long_audio_s": long_call.seconds,
        "long_latency_s": box["long"],
        "late_sent_after_s": box["late_sent"] - box["long_sent"],
        "late_latency_s": box["late"],
        "late_done_minus_long_done_s": box["late_done"] - box["long_done"],
    }


def build_long(evalset: Path, out: Path, seconds: float) -> ShortCall:
    import hashlib

    from callscribe.eval.calls import CallSpec, TurnSpec, build_calls

    turns = max(2, int(seconds / 3.3))
    said = tuple(TurnSpec(("agent", "customer")[i % 2], (ZH[i % len(ZH)],)) for i in range(turns))
    spec = CallSpec("long_zh", "zh", "mono", 16000, said)
    (built,) = build_calls(evalset, out, [spec])
    sha = hashlib.sha256(built.audio_path.read_bytes()).hexdigest()
    return ShortCall(built.audio_path, built.ref.duration, sha, "zh")


# -- main ---------------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--per-client", type=int, default=2)
    ap.add_argument("--evalset", type=Path, default=EVALSET)
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temp folder)")
    ap.add_argument("--late", action="store_true", help="also measure late arrivals")
    ap.add_argument("--late-seconds", type=float, default=120.0, help="length of the long call")
    ap.add_argument("--timeout", type=float, default=1800.0, help="bound on each phase (s)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not (args.evalset / "manifest.jsonl").exists():
        raise SystemExit(f"{args.evalset}: no evalset-dev here (pass --evalset)")
    root = args.out or Path(tempfile.mkdtemp(prefix="callscribe-load-"))
    n = args.clients * args.per_client
    calls = build_short_calls(args.evalset, root / "built", n + 2, forms=("mono", "stereo"))
    spare, calls = calls[n:], calls[:n]
    for extra in spare:  # the late-arrival calls stay out of the CLI's folder
        extra.path.rename(root / extra.path.name)
    spare = [ShortCall(root / c.path.name, c.seconds, c.sha256, c.lang) for c in spare]
    audio = sum(c.seconds for c in calls)
    say(f"{n} calls, {audio:.0f} s of audio, in {root}")

    cli = run_cli(root / "built" / "calls", root / "cli-out")
    cli["throughput"] = audio / cli["seconds"]
    say(f"CLI: {cli}")
    server = Server(root)
    try:
        ready = server.wait_ready()
        server.sample_rss()
        served = load(server, calls, args.clients, args.timeout)
        say(f"server: { {k: v for k, v in served.items() if k != 'errors'} }; errors: {served['errors'][:5]}")
        lateness = None
        if args.late:
            long_call = build_long(args.evalset, root / "long", args.late_seconds)
            lateness = late(server, long_call, spare, delay=3.0)
            say(f"late: {lateness}")
    finally:
        server.stop()
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "clients": args.clients,
        "per_client": args.per_client,
        "calls": n,
        "audio_seconds": audio,
        "cli": cli,
        "server_ready_s": ready,
        "server": served,
        "ratio": served["throughput"] / cli["throughput"],
        "late": lateness,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    say(
        f"\n| | audio-s/s | p50 s | p95 s |\n|---|---|---|---|\n"
        f"| batch CLI | {cli['throughput']:.2f} | | |\n"
        f"| server, {args.clients} clients | {served['throughput']:.2f} | {served['p50']['all']:.1f} "
        f"| {served['p95']['all']:.1f} |\nratio {report['ratio']:.2f}; errors {len(served['errors'])}; "
        f"RSS {served['rss_mb']}; load {served['load_avg']}"
    )
    if served["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
