"""Call store at scale: import speed (``Store.add_many``, ``Store.add``) and search / list / report latency.

    python benchmarks/store.py [--calls 100000] [--engines sqlite,postgresql] [--queries 200] [--json FILE]
                               [--pg-url URL] [--cache DIR] [--seed 7] [--add-calls 3000]

Calls are made by :mod:`store_data` from real transcript text (evalset-dev references and the example calls,
recombined clause by clause; ~10 utterances each, agent and customer, real QA results) and kept in ``--cache``.
Each database gets the same calls through ``Store.add_many(durable=False)``, the path of ``callscribe index``
(batches of calls per transaction; making the calls is not timed), and, into a fresh database, the first
``--add-calls`` through ``Store.add`` (one durable transaction per call: ``transcribe --db``, the server).
SQLite is a file in a temp dir; PostgreSQL a private server started here (:mod:`store_server`) unless
``--pg-url`` names an existing database, in which case a fresh schema is created there and dropped at the end.
Then, per database: the first search of a fresh process (cold: it loads jieba's dictionary and opens the
database), and ``--queries`` warm searches of each kind in :mod:`store_queries` with the default limit (50);
``calls(...)`` with filters and ``agent_report``. One table, ``--json`` for every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import store_data
import store_queries
from sqlalchemy import text
from store_server import private_server

import callscribe.store
from callscribe.store import Store
from callscribe.store.models import Base

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "callscribe-store-bench-cache"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        mem_gib = round(int(mem.split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        mem_gib = 0.0
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "mem_gib": mem_gib,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}  # fmt: skip


def load() -> float:
    return round(os.getloadavg()[0], 2)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def timings(values_s: list[float], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    out = {"n": len(ms), "p50_ms": pct(ms, 0.5), "p95_ms": pct(ms, 0.95), "max_ms": max(ms, default=float("nan"))}
    return out | (extra or {})


@contextmanager
def database(engine: str, args: argparse.Namespace) -> Iterator[str]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="callscribe-bench-") as d:
            yield f"sqlite:///{Path(d) / 'calls.db'}"
        return
    if args.pg_url is None:
        with private_server() as url:
            yield url
        return
    with fresh_schema(args.pg_url) as url:
        yield url


@contextmanager
def fresh_schema(base: str) -> Iterator[str]:
    """A new schema on a PostgreSQL database (dropped afterwards): the URL that uses it."""
    from sqlalchemy import create_engine

    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


def import_calls(store: Store, args: argparse.Namespace, pool: store_data.Pool, texts: Counter[str] | None) -> dict:
    """Every call through ``Store.add_many(durable=False)``, what ``callscribe index`` runs; the time spent making
    or reading the calls (the generator that feeds it) is left out."""
    outside = 0.0  # seconds spent in the source, not in the store
    utterances = 0

    def source() -> Iterator[Any]:
        nonlocal outside, utterances
        t0 = time.perf_counter()
        for call in store_data.cached_calls(args.calls, args.seed, pool, args.cache):
            utterances += len(call.transcript.utterances)
            if texts is not None:
                texts.update(u.text.lower() for u in call.transcript.utterances)
            item = NewCall(call.transcript, call.qa, meta=call.meta) if NewCall else call
            outside += time.perf_counter() - t0
            yield item
            t0 = time.perf_counter()

    start_load, tenth = load(), max(1, args.calls // 10)
    windows: list[float] = []  # calls/s over each tenth of the import (does it slow down as the store grows?)
    done, t_start, mark = 0, time.perf_counter(), 0.0
    for added in stored(store, source()):
        if added.error is not None:
            raise SystemExit(f"call {added.index} not stored: {added.error}")
        done += 1
        if done % tenth == 0:
            spent = time.perf_counter() - t_start - outside
            windows.append(round(tenth / (spent - mark), 1))
            mark = spent
            print(f"  {store.dialect}: {done} calls, {windows[-1]} calls/s, load {load()}", file=sys.stderr)
    total = time.perf_counter() - t_start - outside
    return {
        "path": "Store.add_many(durable=False) (callscribe index)" if NewCall else "Store.add",
        "calls": done,
        "utterances": utterances,
        "seconds": round(total, 1),
        "calls_per_s": round(done / total, 1),
        "utterances_per_s": round(utterances / total, 1),
        "calls_per_s_by_tenth": windows,
        "load": [start_load, load()],
    }


NewCall = getattr(callscribe.store, "NewCall", None)  # None: an older store (PYTHONPATH=old/src)


def stored(store: Store, calls: Iterator[Any]) -> Iterator[Any]:
    """``Store.add_many(durable=False)``; an older store without it: one ``Store.add`` per call."""
    if NewCall is not None:
        yield from store.add_many(calls, durable=False)
        return
    for call in calls:
        store.add(call.transcript, call.qa, meta=call.meta)
        yield SimpleNamespace(error=None, index=0)


def add_import(url: str, engine: str, args: argparse.Namespace, pool: store_data.Pool) -> dict[str, Any]:
    """The first ``--add-calls`` calls into a fresh database one ``Store.add`` (one durable transaction) each, what
    ``transcribe --db`` and the server do for every finished call; only the ``add`` calls are timed."""
    n = min(args.calls, args.add_calls)

    @contextmanager
    def target() -> Iterator[str]:
        if engine == "sqlite":
            with tempfile.TemporaryDirectory(prefix="callscribe-bench-add-") as d:
                yield f"sqlite:///{Path(d) / 'add.db'}"
        else:
            with fresh_schema(url.split("?")[0]) as fresh:
                yield fresh

    took: list[float] = []
    start_load = load()
    with target() as where, Store(where) as store:
        for call in store_data.cached_calls(n, args.seed, pool, args.cache):
            t0 = time.perf_counter()
            store.add(call.transcript, call.qa, meta=call.meta)
            took.append(time.perf_counter() - t0)
    total = sum(took)
    return timings(took) | {
        "path": "Store.add (transcribe --db, server)",
        "calls": n,
        "seconds": round(total, 1),
        "calls_per_s": round(n / total, 1),
        "load": [start_load, load()],
    }


def cold_query(url: str, query: str) -> dict[str, float]:
    """Open the store and search once in a fresh process (jieba's dictionary loads on the first query)."""
    code = (
        "import sys, time, json\n"
        "t0 = time.perf_counter()\n"
        "from callscribe.store import Store\n"
        "s = Store(sys.argv[1]); t1 = time.perf_counter()\n"
        "s.search(sys.argv[2]); t2 = time.perf_counter()\n"
        "s.search(sys.argv[2]); t3 = time.perf_counter()\n"
        "print(json.dumps({'open_ms': (t1 - t0) * 1000, 'first_ms': (t2 - t1) * 1000, 'second_ms': (t3 - t2) * 1000}))"
    )
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code, url, query], capture_output=True, text=True, env=env, check=True)
    return {k: round(v, 1) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def timed(fn: Callable[[], list[Any]]) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = len(fn())
    return time.perf_counter() - t0, n


def run_searches(store: Store, qs: store_queries.QuerySet, texts: Counter[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for kind, queries in qs.queries.items():
        took, hits = [], []
        for q in queries:
            dt, n = timed(lambda q=q: store.search(q))
            took.append(dt)
            hits.append(n)
        words = qs.words[kind]
        found = [store_queries.frequency(texts, w.strip('"')) for w in words if " " not in w.strip('"')] or [0]
        out[kind] = timings(took, {"mean_hits": round(statistics.mean(hits or [0]), 1), "distinct": len(words),
                                   "median_utterances_with_word": statistics.median(found)})  # fmt: skip
    return out


def run_lists(store: Store, qs: store_queries.QuerySet, n: int, seed: int) -> dict[str, dict]:
    """``search`` with call filters, ``calls(...)`` with filters, and ``agent_report``."""
    import random

    rng = random.Random(seed)
    common = qs.words["zh2 common"]
    agents = [f"A{i:03d}" for i in range(store_data.AGENTS)]

    def since() -> tuple[Any, Any]:
        a = store_data.START + timedelta(days=rng.randrange(store_data.DAYS - 30))
        return a, a + timedelta(days=30)

    cases: dict[str, Callable[[], list[Any]]] = {
        "search + role, queue, 30 days": lambda: store.search(
            rng.choice(common), role="customer", queue=rng.choice(store_data.QUEUES), since=since()[0]
        ),
        "calls(agent, 30 days)": lambda: store.calls(agent=rng.choice(agents), since=(w := since())[0], until=w[1]),
        "calls(queue, needs_review)": lambda: store.calls(queue=rng.choice(store_data.QUEUES), needs_review=True),
        "calls(rule_failed, since)": lambda: store.calls(rule_failed="greeting", since=since()[0]),
        "calls(min_score, -score)": lambda: store.calls(min_score=rng.choice((40, 60, 80)), order_by="-score"),
        "calls(q=word)": lambda: store.calls(q=rng.choice(common)),
        "agent_report(month, agent)": lambda: store.agent_report(by="month", agent=rng.choice(agents)),
    }
    out: dict[str, dict] = {}
    cases["agent_report(week, all)"] = lambda: store.agent_report(by="week")
    for name, fn in cases.items():
        try:  # one failing operation is recorded, the others still measured
            runs = [timed(fn) for _ in range(3 if name == "agent_report(week, all)" else n)]
        except Exception as exc:
            print(f"  {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            out[name] = {"error": f"{type(exc).__name__}: {exc}", "p50_ms": float("nan"), "p95_ms": float("nan")}
            continue
        out[name] = timings([r[0] for r in runs], {"mean_rows": round(statistics.mean(r[1] for r in runs), 1)})
    return out


def bench_engine(engine: str, args: argparse.Namespace, pool: store_data.Pool, texts: Counter[str]) -> dict:
    with database(engine, args) as url:
        result: dict[str, Any] = {}
        with Store(url) as store:
            print(f"{engine}: importing {args.calls} calls", file=sys.stderr)
            result["import"] = import_calls(store, args, pool, texts if not texts else None)
            if engine == "postgresql":  # what autovacuum does after bulk changes, done now rather than during the
                t0 = time.perf_counter()  # searches (it also moves the GIN index's pending entries into the index)
                with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE " + ", ".join(sorted(Base.metadata.tables))))
                result["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)
            qs = store_queries.build(pool, texts, args.queries, args.seed)
            result["counts"] = store.counts()
            result["cold"] = cold_query(url, qs.words["zh2 common"][0])
            result["search_load"] = [load()]
            result["search"] = run_searches(store, qs, texts)
            result["lists"] = run_lists(store, qs, max(10, args.queries // 4), args.seed)
            result["search_load"].append(load())
        if args.add_calls > 0:
            result["add"] = add_import(url, engine, args, pool)
        if engine == "sqlite":
            result["db_mib"] = round(sum(p.stat().st_size for p in Path(url[10:]).parent.iterdir()) / 2**20)
        return result


def table(results: dict[str, dict]) -> str:
    engines = list(results)
    head = "| operation | " + " | ".join(f"{e} p50 ms | {e} p95 ms" for e in engines) + " | rows (mean) |"
    lines = [head, "|" + "---|" * (2 + 2 * len(engines))]
    first = results[engines[0]]
    for section, label in (("search", "search: "), ("lists", "")):
        for kind, row in first[section].items():
            cells = [f"{results[e][section][kind]['p50_ms']:.1f} | {results[e][section][kind]['p95_ms']:.1f}"
                     for e in engines]  # fmt: skip
            rows = row.get("mean_hits", row.get("mean_rows"))
            lines.append(f"| {label}{kind} | " + " | ".join(cells) + f" | {rows} |")
    cold = [f"{results[e]['cold']['first_ms']:.0f} | (open {results[e]['cold']['open_ms']:.0f})" for e in engines]
    lines.append("| first search in a fresh process | " + " | ".join(cold) + " | |")
    imp = [f"{results[e]['import']['calls_per_s']} calls/s | {results[e]['import']['utterances_per_s']} utt/s"
           for e in engines]  # fmt: skip
    lines.append(f"| import via {results[engines[0]]['import']['path']} | " + " | ".join(imp) + " | |")
    if all("add" in results[e] for e in engines):
        n = results[engines[0]]["add"]["calls"]
        rate = [f"{results[e]['add']['calls_per_s']} calls/s | " for e in engines]
        lines.append(f"| import via Store.add, first {n} calls | " + " | ".join(rate) + " | |")
        add = [f"{results[e]['add']['p50_ms']:.1f} | {results[e]['add']['p95_ms']:.1f}" for e in engines]
        lines.append("| one Store.add | " + " | ".join(add) + " | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--queries", type=int, default=200, help="searches of each kind")
    ap.add_argument("--pg-url", default=None, help="an existing PostgreSQL database (a fresh schema is used)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where generated calls are kept")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--add-calls", type=int, default=3000, help="calls imported one Store.add each (0: skip)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if bad := [e for e in engines if e not in ("sqlite", "postgresql")]:
        ap.error(f"--engines: unknown {', '.join(bad)} (sqlite, postgresql)")
    pool = store_data.load_pool(args.seed)
    texts: Counter[str] = Counter()
    info = machine() | {"calls": args.calls, "load_at_start": load(), "text_pool_clauses": pool.size()}
    print(f"{info}", file=sys.stderr)
    results = {e: bench_engine(e, args, pool, texts) for e in engines}
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
