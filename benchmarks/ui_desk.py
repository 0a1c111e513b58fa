"""The review desk's speed: a 30-minute call's page in Chromium, and the calls page over a 100k-call store.

    python benchmarks/ui_desk.py [--minutes 30] [--loads 7] [--engine reference|whisper] [--calls 100000]
                                 [--calls-db FILE] [--cache DIR] [--json FILE]

1. A two-party stereo 8 kHz call of ``--minutes`` built from evalset-dev speech (:mod:`callscribe.eval.calls`,
   turns drawn in a fixed order from the Mandarin pieces), transcribed by the real pipeline with the reference-text
   engine (decoding, VAD, bleed removal, clips and roles real; each turn's reference text as what was heard) or,
   with ``--engine whisper``, by the bundled Whisper with word timestamps (every word a highlightable span); with
   QA; stored, its recording in the server's data folder, its waveform peaks computed once (the first request, timed
   apart) and kept. Then ``callscribe serve`` starts and headless Chromium (Debian's, through chromium-driver)
   loads the call's page ``--loads`` times: navigation to ``DOMContentLoaded``, to ``load``, and to the waveform
   drawn (peaks fetched, wavesurfer ready, markers placed). The first load is a warm-up; the median of the rest is
   reported, with the HTML's size.
2. The calls page over ``--calls`` synthetic calls (:mod:`store_data`, as the store benchmark makes them; kept in
   ``--calls-db``, built once): time to the first byte and total for the first page, a deep page, a search, filters
   and the customer-sentiment scan.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
for extra in ("tests/speakers", "tests/server", "tests/ui", "scripts", "benchmarks"):
    sys.path.insert(0, str(ROOT / extra))

from callscribe.store import CallMeta, Store  # noqa: E402

EVALSET = ROOT.parent / "shared" / "evalset-dev"
LIST_QUERIES = (
    ("first page", "/"),
    ("page 200 (offset 9950)", "/?offset=9950"),
    ("search 话费", "/?q=%E8%AF%9D%E8%B4%B9"),
    ("search 景德镇 -市场, agent", "/?q=%E6%99%AF%E5%BE%B7%E9%95%87+-%E5%B8%82%E5%9C%BA&agent=A007"),
    ("agent + needs review", "/?agent=A007&review=yes"),
    ("failed rule, by score", "/?rule=greeting&sort=score"),
    ("date range + score range", "/?since=2026-02-01&until=2026-02-14&min_score=50&max_score=80"),
    ("customer mood negative (scan)", "/?mood=negative"),
)


def cached_long_call(minutes: float, cache: Path, engine: str) -> tuple[Any, Any, Path]:
    """:func:`build_long_call`, kept in ``cache`` (the Whisper transcript of 30 minutes takes a while on a CPU)."""
    from callscribe.model import QAResult, Transcript

    stem = cache / f"long-{minutes:g}min-{engine}"
    paths = [stem.with_suffix(x) for x in (".json", ".qa.json", ".wav")]
    if not all(p.exists() for p in paths):
        transcript, qa, audio = build_long_call(minutes, cache / "built", engine)
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(audio, paths[2])
        paths[1].write_text(json.dumps(qa.to_dict(), ensure_ascii=False), encoding="utf-8")
        paths[0].write_text(transcript.to_json(), encoding="utf-8")
    transcript = Transcript.from_json(paths[0].read_text(encoding="utf-8"))
    return transcript, QAResult.from_dict(json.loads(paths[1].read_text(encoding="utf-8"))), paths[2]


def build_long_call(minutes: float, out: Path, engine: str = "reference") -> tuple[Any, Any, Path]:
    """A long stereo call from evalset-dev speech, through the pipeline with the reference-text engine (or the
    bundled Whisper with word timestamps)."""
    from speakers_calls import HeardTurn, ReferenceEngine

    import callscribe
    from callscribe.eval.calls import CallSpec, TurnSpec, load_pieces, write_call
    from callscribe.qa import run_qa

    pieces = load_pieces(EVALSET, ("zh",))
    keys = sorted(pieces)
    turns, seconds, k = [], 0.0, 0
    while seconds < minutes * 60:
        key = keys[k % len(keys)]
        turns.append(TurnSpec("agent" if k % 2 == 0 else "customer", (key,)))
        seconds += len(pieces[key].audio) / 16000 + 0.8
        k += 1
    spec = CallSpec("long_call", "zh", "stereo", 8000, tuple(turns), bleed_db=-30.0)
    built = write_call(spec, pieces, out)
    heard = tuple(HeardTurn(t.start, t.end, t.text, t.party) for t in built.ref.turns)
    t0 = time.perf_counter()
    options: dict[str, Any] = {"language": "zh", "channel_roles": ("agent", "customer")}
    if engine == "whisper":  # real recognition with word times: the page then carries every word
        options |= {"engine": "whisper", "timestamps": "word"}
        transcript = callscribe.Pipeline(options).transcribe(built.audio_path)
    else:
        transcript = callscribe.Pipeline(options, engine=ReferenceEngine(heard)).transcribe(built.audio_path)
    print(f"transcribed {transcript.call.duration / 60:.1f} min in {time.perf_counter() - t0:.0f} s: "
          f"{len(transcript.utterances)} utterances", file=sys.stderr)  # fmt: skip
    return transcript, run_qa(transcript), built.audio_path


def page_loads(url: str, key: str, path: str, loads: int) -> dict[str, Any]:
    from ui_desk_fixtures import chrome, sign_in, wait_for

    driver = chrome()
    try:
        sign_in(driver, url, key)
        rows = []
        for _ in range(loads):
            driver.get(url + path)
            wait_for(driver, lambda d: d.execute_script("return document.body.dataset.waveReady === '1'"), "wave", 60)
            rows.append(driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "const w = performance.getEntriesByName('desk-wave-ready')[0];"
                "return {ttfb: n.responseStart, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,"
                " wave: w ? w.startTime : null, html_bytes: n.transferSize,"
                " turns: document.querySelectorAll('#transcript .turn').length};"
            ))  # fmt: skip
    finally:
        driver.quit()
    warm = rows[1:] or rows
    return {k: round(statistics.median(r[k] for r in warm), 1) for k in ("ttfb", "dcl", "load", "wave")} | {
        "html_bytes": rows[-1]["html_bytes"], "turns": rows[-1]["turns"], "loads": len(warm),
        "all_ms": [{k: round(r[k], 1) for k in ("dcl", "load", "wave")} for r in rows]}  # fmt: skip


def bench_long_call(args: argparse.Namespace) -> dict[str, Any]:
    from server_fixtures import API_KEY, start_server, stop_server

    tmp = Path(tempfile.mkdtemp(prefix="callscribe-ui-bench-"))
    try:
        transcript, qa, audio = cached_long_call(args.minutes, args.cache, args.engine)
        db = f"sqlite:///{tmp / 'desk.db'}"
        with Store(db) as store:
            call_id = store.add(transcript, qa, meta=CallMeta("A1", None, "billing"))
        (tmp / "data" / "audio").mkdir(parents=True)
        shutil.copyfile(audio, tmp / "data" / "audio" / f"{transcript.call.sha256}.wav")
        server = start_server(tmp, "--db", db)
        try:
            h = {"Authorization": f"Bearer {API_KEY}"}
            t0 = time.perf_counter()
            peaks = httpx.get(f"{server.url}/ui/api/calls/{call_id}/peaks", headers=h, timeout=600)
            first_peaks = time.perf_counter() - t0
            t0 = time.perf_counter()
            httpx.get(f"{server.url}/ui/api/calls/{call_id}/peaks", headers=h, timeout=60)
            cached_peaks = time.perf_counter() - t0
            result = page_loads(server.url, API_KEY, f"/calls/{call_id}", args.loads)
        finally:
            stop_server(server)
        words = sum(len(u.words) for u in transcript.utterances)
        return {"engine": args.engine, "minutes": round(transcript.call.duration / 60, 1),
                "utterances": len(transcript.utterances), "words": words,
                "peaks_first_s": round(first_peaks, 2), "peaks_cached_ms": round(cached_peaks * 1000, 1),
                "peaks_bytes": len(peaks.content), **result}  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_calls_db(path: Path, calls: int) -> None:
    import store_data

    with Store(f"sqlite:///{path}") as store:
        have = store.counts()["calls"]
        if have >= calls:
            return
        pool = store_data.load_pool(7)
        t0 = time.perf_counter()
        for i, c in enumerate(store_data.cached_calls(calls, 7, pool, store_data_cache())):
            if i < have:
                continue
            store.add(c.transcript, c.qa, meta=c.meta)
            if i % 5000 == 0:
                print(f"  {i} calls stored ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


def store_data_cache() -> Path:
    return Path(tempfile.gettempdir()) / "callscribe-store-bench-cache"


def bench_list(args: argparse.Namespace) -> dict[str, Any]:
    from server_fixtures import API_KEY, start_server, stop_server

    db_path = Path(args.calls_db)
    ensure_calls_db(db_path, args.calls)
    tmp = Path(tempfile.mkdtemp(prefix="callscribe-ui-list-"))
    server = start_server(tmp, "--db", f"sqlite:///{db_path}")
    out: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120) as c:
            for name, path in LIST_QUERIES:
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    r = c.get(path)
                    times.append(time.perf_counter() - t0)
                    assert r.status_code == 200, (path, r.status_code)
                rows = r.text.count('<tr data-call="')
                out[name] = {"median_ms": round(statistics.median(times) * 1000, 1),
                             "first_ms": round(times[0] * 1000, 1), "rows": rows}  # fmt: skip
    finally:
        stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--loads", type=int, default=7)
    p.add_argument("--engine", choices=("reference", "whisper"), default="reference")
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--calls-db", default=str(Path(tempfile.gettempdir()) / "callscribe-ui-bench-100k.db"))
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--skip", choices=("call", "list"), action="append", default=[])
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "callscribe-ui-bench-cache")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if not (EVALSET / "manifest.jsonl").exists():
        raise SystemExit(f"{EVALSET}: evalset-dev is needed")
    result: dict[str, Any] = {}
    if "call" not in args.skip:
        result["long_call"] = bench_long_call(args)
        print(json.dumps(result["long_call"], indent=1))
    if "list" not in args.skip:
        result["calls_page"] = bench_list(args)
        print(json.dumps(result["calls_page"], indent=1, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
