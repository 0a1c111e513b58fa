"""The durable call queue: jobs live in the call store; one runner thread feeds them to the engine worker.

``POST /v1/calls`` keeps the recording under ``<data>/audio/`` and adds a ``queued`` job. The runner claims queued
jobs (atomically: ``Store.claim_job``) while fewer than ``concurrency`` are in the engine worker, so several calls
share engine batches. A finished call is stored (``Store.add``, whose identity is the recording's sha256 plus the
result-affecting options) and its job marked ``done`` with the call id, or ``failed`` with the one-line reason. The
options include the server's glossary as it is when the job starts (:mod:`callscribe.server.glossary`); the key that
names the stored call leaves the store's glossary out, so a recording sent again after a glossary change is still
the duplicate of its call.

Exactly once: at start, jobs left ``running`` by a server that was killed go back to ``queued`` (one server per
database). A claimed job whose call is already stored (the server died between storing and marking the job) is
marked done without transcribing again; storing twice would update the one call in place anyway. A job's webhook
deliveries are recorded in the outbox before the job is marked finished and released after
(:mod:`callscribe.server.webhooks`), once per job and URL, so a job that ends is announced even when the server
dies in between, and a job finished again after such a death is not announced twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callscribe.model import Transcript
from callscribe.options import Options
from callscribe.pipeline import CallError, one_line
from callscribe.server.worker import EngineWorker, RequestOptions, Result, WorkerStopped

if TYPE_CHECKING:
    from callscribe.server.glossary import LiveGlossary
    from callscribe.server.webhooks import Webhooks
    from callscribe.store import Job, Store

log = logging.getLogger("callscribe.server")

KIND = "transcribe"
POLL_S = 2.0
MAX_SCAN = 10_000  # queued or running jobs looked through for a duplicate upload
_WAKE = object()
_STOP = object()


def job_options(payload: dict[str, Any]) -> RequestOptions:
    return RequestOptions(
        language=payload.get("language") or None,
        hotwords=tuple(payload.get("hotwords") or ()),
        corrections=tuple(tuple(pair) for pair in payload.get("corrections") or ()),  # type: ignore[misc]
        channel_roles=tuple(payload.get("channel_roles") or ()),
    )


def job_view(job: Job) -> dict[str, Any]:
    """A job as the API shows it (the payload's file name and metadata, never server paths)."""
    p = job.payload
    return {
        "id": job.id,
        "object": "job",
        "state": job.state,
        "call_id": job.call_id,
        "error": job.error,
        "attempts": job.attempts,
        "file": {"name": p.get("name"), "sha256": p.get("sha256"), "bytes": p.get("bytes")},
        "webhook_url": p.get("webhook_url"),
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


class JobRunner:
    def __init__(
        self,
        store: Store,
        worker: EngineWorker,
        options: Options,
        *,
        concurrency: int = 8,
        webhooks: Webhooks | None = None,
        redacted_dir: Path | None = None,
        glossary: LiveGlossary | None = None,
    ) -> None:
        self.store = store
        self.redacted_dir = redacted_dir  # --redact-audio: make each call's toned copy as it is stored
        self.worker = worker
        self.options = options
        self.concurrency = concurrency
        self.webhooks = webhooks
        self.glossary = glossary  # the store's glossary, read again before each job
        self._inbox: queue.Queue[object] = queue.Queue()
        self._inflight: dict[str, Job] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- the outside --------------------------------------------------------------------------------------------
    def start(self) -> int:
        """Put back what a killed server left running; then start the thread. Returns how many were put back."""
        back = 0
        while True:
            stuck = self.store.jobs(state="running", kind=KIND, limit=100)
            if not stuck:
                break
            for job in stuck:
                self.store.update_job(job.id, "queued")
                back += 1
        if back:
            log.warning("%d call job(s) were running when the server stopped; queued again", back)
        if self.webhooks is not None:
            self.webhooks.start(self.event)
        self._thread = threading.Thread(target=self._main, name="callscribe-jobs", daemon=True)
        self._thread.start()
        return back

    def event(self, job_id: str) -> dict[str, Any] | None:
        """The webhook body of a job that has ended (None while it has not; KeyError when it is gone)."""
        job = self.store.job(job_id)
        if job is None:
            raise KeyError(job_id)
        if job.state not in ("done", "failed"):
            return None
        return {"type": f"job.{job.state}", "job": job_view(job)}

    def wake(self) -> None:
        self._inbox.put(_WAKE)

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping = True
        self._inbox.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)
        for job_id in list(self._inflight):  # still in the engine: the next server takes them
            try:
                self.store.update_job(job_id, "queued")
            except Exception as exc:
                log.error("call job %s left running: %s", job_id, one_line(exc))
        self._inflight.clear()

    def duplicate_of(self, payload: dict[str, Any]) -> tuple[Job | None, int | None]:
        """What the same recording with the same result-affecting options already is: ``(None, call_id)`` when it is
        stored, ``(job, None)`` when a job for it is queued or running, else ``(None, None)``."""
        key = self.call_key(payload)
        stored = self.store.find(payload["sha256"], key)
        if stored is not None:
            return None, stored
        for state in ("queued", "running"):
            for job in self.store.jobs(state=state, kind=KIND, limit=MAX_SCAN):
                same = job.payload.get("sha256") == payload["sha256"]
                if same and self.call_key(job.payload) == key:
                    return job, None
        return None, None

    def call_key(self, payload: dict[str, Any]) -> str:
        """What names the call a job stores, with its recording's sha256: the result-affecting options of the
        server and the request, the store's glossary left out. A glossary entry added in the desk changes how the
        next recordings are heard, not which stored call a recording sent again is: it stays one call."""
        options = job_options(payload)
        if self.glossary is not None:
            options = self.glossary.file_only(options)
        return options.apply(self.options).result_key()

    def _options(self, payload: dict[str, Any]) -> RequestOptions:
        """A job's options with the glossary as it is now (a job is heard with the glossary of when it starts)."""
        options = job_options(payload)
        return options if self.glossary is None else self.glossary.apply(options)

    def finish_stored(self, job: Job, call_id: int) -> Job:
        """End a just-added job whose call is already stored (a duplicate upload): done, announced, not heard."""
        self._close(job, "done", call_id=call_id)
        return self.store.job(job.id) or job

    # -- the thread ---------------------------------------------------------------------------------------------
    def _main(self) -> None:
        while not self.worker.ready.wait(0.5):  # claim nothing before the engine can take it
            if self._stopping or self.worker.load_error is not None:
                return
        while not self._stopping:
            try:
                self._fill()
            except Exception as exc:  # the database went away: try again at the next poll
                log.error("cannot claim call jobs: %s", one_line(exc))
            try:
                message = self._inbox.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if message is _STOP:
                return
            if isinstance(message, tuple):
                self._finish(*message)

    def _fill(self) -> None:
        while len(self._inflight) < self.concurrency and not self._stopping:
            job = self.store.claim_job(kind=KIND)
            if job is None:
                return
            self._begin(job)

    def _begin(self, job: Job) -> None:
        p = job.payload
        options = self._options(p)
        stored = self.store.find(p["sha256"], self.call_key(p))
        if stored is not None:  # stored before a crash, not marked done: finish the job, do not hear it again
            self._close(job, "done", call_id=stored)
            return
        try:
            future = self.worker.submit(p["path"], p["sha256"], options)
        except WorkerStopped as exc:
            if self._stopping:
                self.store.update_job(job.id, "queued")
            else:
                self._close(job, "failed", error=str(exc))
            return
        self._inflight[job.id] = job
        future.add_done_callback(lambda f: self._inbox.put((job, f)))

    def _finish(self, job: Job, future: Future[Result]) -> None:
        self._inflight.pop(job.id, None)
        try:
            result = future.result()
        except WorkerStopped:
            self.store.update_job(job.id, "queued")  # the server is stopping: the next one takes it
            return
        except Exception as exc:
            result = CallError(job.payload["path"], "server", one_line(exc))
        try:
            if isinstance(result, CallError):
                reason = str(result).replace(job.payload["path"], job.payload.get("name") or "upload")
                self._close(job, "failed", error=reason)
            else:
                self._close(job, "done", call_id=self._store(job, result))
        except Exception as exc:  # the store refused: the job stays running and is queued again at restart
            log.error("call job %s not recorded: %s", job.id, one_line(exc))

    def _store(self, job: Job, t: Transcript) -> int:
        from callscribe.callmeta import parse_time
        from callscribe.store import CallMeta

        p = job.payload
        name = Path(p.get("name") or "upload").stem or "upload"
        t = replace(t, call=replace(t.call, id=name))
        qa = None
        if self.options.qa:
            from callscribe.qa import run_qa

            try:
                qa = run_qa(t, self.options.scorecard)
            except Exception as exc:  # the transcript is still worth keeping
                log.warning("quality checks of job %s failed: %s", job.id, one_line(exc))
        when = parse_time(p["call_time"]) if p.get("call_time") else None
        meta = CallMeta(agent_id=p.get("agent_id"), call_time=when, queue=p.get("queue"))
        call_id = self.store.add(t, qa, meta=meta, options_key=self.call_key(p))
        if self.redacted_dir is not None:
            self._redact_audio(call_id, p)
        return call_id

    def _redact_audio(self, call_id: int, p: dict[str, Any]) -> None:
        from callscribe.server import call_audio

        record = self.store.call(call_id)
        try:
            if record is not None and self.redacted_dir is not None:
                spans = call_audio.mask_spans(record.transcript)
                call_audio.redacted_file(self.redacted_dir, p["sha256"], call_id, Path(p["path"]), spans)
        except Exception as exc:  # best effort: made on the first request instead
            log.warning("redacted audio of call %d not made: %s", call_id, one_line(exc))

    def _close(self, job: Job, state: str, *, call_id: int | None = None, error: str | None = None) -> None:
        if self.webhooks is not None:  # recorded before the job is marked: a death in between still announces it
            self.webhooks.enqueue(job.id, self.webhooks.targets(job.payload))
        self.store.update_job(job.id, state, call_id=call_id, error=error)
        log.info("call job %s %s", job.id, state, extra={"job": job.id, "call_id": call_id})
        if self.webhooks is not None:
            self.webhooks.release(job.id)
