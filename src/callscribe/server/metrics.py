"""Prometheus metrics for one app (its own registry, so several apps in one process never collide).

callscribe_http_requests_total{method,route,status}    requests answered
callscribe_http_request_seconds{method,route}          time to answer (to the first byte of a streamed answer)
callscribe_jobs{state}                                 work in the engine worker now: queued | running
callscribe_jobs_finished_total{state}                  work finished: done | failed
callscribe_store_jobs{state}                           jobs in the store (--db) now: queued | running | done |
                                                       failed | cancelled (one grouped query per scrape)
callscribe_queue_depth                                 items waiting for the engine
callscribe_audio_seconds_total                         seconds of audio transcribed
callscribe_engine_seconds_total                        engine time spent on them (rate ratio = real-time factor)
callscribe_engine_rtf                                  engine seconds per audio second, per call (histogram)
callscribe_job_wait_seconds                            time from queued to handed to the engine
callscribe_engine_ready                                1 once the engine is loaded
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from callscribe.model import Transcript

if TYPE_CHECKING:
    from callscribe.server.worker import EngineWorker, Result

log = logging.getLogger("callscribe.server")

RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "callscribe_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "callscribe_http_request_seconds", "Time to answer an HTTP request", ["method", "route"], registry=r
        )
        self.jobs = Gauge("callscribe_jobs", "Work in the engine worker now, by state", ["state"], registry=r)
        self.finished = Counter("callscribe_jobs_finished", "Work finished, by state", ["state"], registry=r)
        self.queue_depth = Gauge("callscribe_queue_depth", "Items waiting for the engine", registry=r)
        self.audio_seconds = Counter("callscribe_audio_seconds", "Seconds of audio transcribed", registry=r)
        self.engine_seconds = Counter("callscribe_engine_seconds", "Engine time spent on that audio", registry=r)
        self.rtf = Histogram(
            "callscribe_engine_rtf", "Engine seconds per audio second, per call", buckets=RTF_BUCKETS, registry=r
        )
        self.wait = Histogram("callscribe_job_wait_seconds", "Time from queued to handed to the engine", registry=r)
        self.ready = Gauge("callscribe_engine_ready", "1 once the engine is loaded", registry=r)
        for state in ("done", "failed"):
            self.finished.labels(state)

    def watch(self, worker: EngineWorker) -> None:
        """Read the worker's queue and readiness at scrape time."""
        self.queue_depth.set_function(worker.depth)
        self.jobs.labels("queued").set_function(worker.depth)
        self.jobs.labels("running").set_function(worker.running)
        self.ready.set_function(lambda: 1.0 if worker.ready.is_set() else 0.0)

    def watch_store(self, counts: Callable[[], dict[str, int]]) -> None:
        """Report the store's jobs by state, read at scrape time (``counts``: e.g. ``Store.job_counts``)."""
        self.registry.register(_StoreJobs(counts))

    def on_worker_event(self, kind: str, result: Result | None, seconds: float) -> None:
        if kind == "started":
            self.wait.observe(seconds)
        elif kind in ("done", "failed"):
            self.finished.labels(kind).inc()
            if isinstance(result, Transcript) and result.call.duration > 0:
                engine = float(result.timings.get("engine", 0.0))
                self.audio_seconds.inc(result.call.duration)
                self.engine_seconds.inc(engine)
                self.rtf.observe(engine / result.call.duration)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreJobs(Collector):
    """``callscribe_store_jobs{state}``: the store's job table by state, one query per scrape (nothing when the
    database cannot be read: the scrape still answers)."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("callscribe_store_jobs", "Jobs in the store, by state", labels=["state"])]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("callscribe_store_jobs", "Jobs in the store, by state", labels=["state"])
        try:
            counts = self.counts()
        except Exception as exc:
            log.warning("store jobs not counted for /metrics: %s", " ".join(str(exc).split()))
            return
        for state, n in counts.items():
            family.add_metric([state], float(n))
        yield family
