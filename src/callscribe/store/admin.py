"""Review corrections and verdicts, durable jobs and API keys: the tables with a minimal API.

Jobs move ``queued -> running -> done | failed`` (or ``cancelled``); :meth:`AdminMixin.claim_job` takes the oldest
queued job atomically (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite). API keys are random
tokens shown once by :meth:`AdminMixin.create_key`; only their sha256 is kept.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from callscribe.store.connect import db_errors
from callscribe.store.models import ApiKeyRow, CallRow, CorrectionRow, JobRow, VerdictRow, utcnow
from callscribe.store.records import ApiKey, Correction, Job, Verdict

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
KEY_PREFIX = "cs_"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _job(r: JobRow) -> Job:
    return Job(
        r.id,
        r.kind,
        r.state,
        dict(r.payload or {}),
        r.attempts,
        r.error,
        r.call_id,
        r.created_at,
        r.updated_at,
        r.started_at,
        r.finished_at,
    )


def _key(r: ApiKeyRow) -> ApiKey:
    return ApiKey(r.id, r.name, r.prefix, r.scope, r.revoked, r.created_at, r.revoked_at)


def _correction(r: CorrectionRow) -> Correction:
    return Correction(r.id, r.call_id, r.utterance, r.field, r.before, r.after, r.author, r.created_at)


def _verdict(r: VerdictRow) -> Verdict:
    return Verdict(r.id, r.call_id, r.rule_id, r.verdict, r.reviewer, r.note, r.created_at)


class AdminMixin:
    url: Any
    timeout: float
    dialect: str

    def _session(self, write: bool = False) -> AbstractContextManager[Session]:  # pragma: no cover - Store's
        raise NotImplementedError

    @staticmethod
    def _need_call(s: Session, call_id: int) -> None:
        if s.get(CallRow, call_id) is None:
            raise KeyError(f"no call {call_id} in the store")

    # -- review -----------------------------------------------------------------------------------------------
    @db_errors
    def add_correction(
        self,
        call_id: int,
        before: str,
        after: str,
        *,
        author: str = "",
        utterance: int | None = None,
        field: str = "text",
    ) -> Correction:
        """Record a reviewer's change (the stored transcript is not changed by this)."""
        with self._session(write=True) as s:
            self._need_call(s, call_id)
            row = CorrectionRow(
                call_id=call_id,
                utterance=utterance,
                field=field,
                before=before,
                after=after,
                author=author,
                created_at=utcnow(),
            )
            s.add(row)
            s.flush()
            return _correction(row)

    @db_errors
    def corrections(self, call_id: int) -> list[Correction]:
        with self._session() as s:
            rows = s.scalars(select(CorrectionRow).where(CorrectionRow.call_id == call_id).order_by(CorrectionRow.id))
            return [_correction(r) for r in rows]

    @db_errors
    def add_verdict(
        self, call_id: int, verdict: str, *, reviewer: str = "", rule_id: str | None = None, note: str = ""
    ) -> Verdict:
        """Record a reviewer's verdict on a call, or on one of its rules (``rule_id``)."""
        with self._session(write=True) as s:
            self._need_call(s, call_id)
            row = VerdictRow(
                call_id=call_id, rule_id=rule_id, verdict=verdict, reviewer=reviewer, note=note, created_at=utcnow()
            )
            s.add(row)
            s.flush()
            return _verdict(row)

    @db_errors
    def verdicts(self, call_id: int) -> list[Verdict]:
        with self._session() as s:
            rows = s.scalars(select(VerdictRow).where(VerdictRow.call_id == call_id).order_by(VerdictRow.id))
            return [_verdict(r) for r in rows]

    # -- jobs -------------------------------------------------------------------------------------------------
    @db_errors
    def add_job(self, payload: dict[str, Any], *, kind: str = "transcribe") -> Job:
        """Queue a job; its id is a random hex string."""
        now = utcnow()
        row = JobRow(
            id=uuid.uuid4().hex,
            kind=kind,
            state="queued",
            payload=dict(payload),
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        with self._session(write=True) as s:
            s.add(row)
        return _job(row)

    @db_errors
    def job(self, job_id: str) -> Job | None:
        with self._session() as s:
            row = s.get(JobRow, job_id)
            return _job(row) if row else None

    @db_errors
    def jobs(self, *, state: str | None = None, kind: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs, oldest first."""
        stmt = select(JobRow).order_by(JobRow.created_at, JobRow.id).limit(limit)
        if state is not None:
            stmt = stmt.where(JobRow.state == state)
        if kind is not None:
            stmt = stmt.where(JobRow.kind == kind)
        with self._session() as s:
            return [_job(r) for r in s.scalars(stmt)]

    @db_errors
    def job_counts(self, *, kind: str | None = None) -> dict[str, int]:
        """Jobs by state (every state of :data:`JOB_STATES`, 0 for none), in one grouped query."""
        stmt = select(JobRow.state, func.count()).group_by(JobRow.state)
        if kind is not None:
            stmt = stmt.where(JobRow.kind == kind)
        with self._session() as s:
            found = {state: int(n) for state, n in s.execute(stmt)}
        return {state: found.get(state, 0) for state in JOB_STATES} | found

    @db_errors
    def claim_job(self, *, kind: str | None = None) -> Job | None:
        """Take the oldest queued job: it becomes ``running``, its attempts go up by one. None when none waits."""
        stmt = select(JobRow).where(JobRow.state == "queued").order_by(JobRow.created_at, JobRow.id).limit(1)
        if kind is not None:
            stmt = stmt.where(JobRow.kind == kind)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        with self._session(write=True) as s:
            row = s.scalar(stmt)
            if row is None:
                return None
            now = utcnow()
            row.state, row.attempts, row.started_at, row.updated_at = "running", row.attempts + 1, now, now
            row.finished_at, row.error = None, None
            s.flush()
            return _job(row)

    @db_errors
    def update_job(
        self,
        job_id: str,
        state: str,
        *,
        error: str | None = None,
        call_id: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> Job:
        """Set a job's state (``done``/``failed``/``cancelled`` finish it, ``queued`` puts it back)."""
        if state not in JOB_STATES:
            raise ValueError(f"job state {state!r} is not one of {', '.join(JOB_STATES)}")
        with self._session(write=True) as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise KeyError(f"no job {job_id} in the store")
            now = utcnow()
            row.state, row.error, row.updated_at = state, error, now
            row.finished_at = now if state in ("done", "failed", "cancelled") else None
            if call_id is not None:
                row.call_id = call_id
            if payload is not None:
                row.payload = dict(payload)
            s.flush()
            return _job(row)

    # -- API keys ---------------------------------------------------------------------------------------------
    @db_errors
    def create_key(self, name: str, *, scope: str = "read") -> tuple[ApiKey, str]:
        """A new API key: its record and the key itself (shown this once; only its hash is stored)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self._session(write=True) as s:
            if s.scalar(select(ApiKeyRow.id).where(ApiKeyRow.name == name)) is not None:
                raise ValueError(f"an API key named {name!r} exists")
            row = ApiKeyRow(
                name=name, key_hash=key_hash(key), prefix=key[:10], scope=scope, revoked=False, created_at=utcnow()
            )
            s.add(row)
            s.flush()
            return _key(row), key

    @db_errors
    def verify_key(self, key: str) -> ApiKey | None:
        """The key's record when it exists and is not revoked, else None."""
        with self._session() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash(key)))
            return _key(row) if row is not None and not row.revoked else None

    @db_errors
    def api_keys(self) -> list[ApiKey]:
        with self._session() as s:
            return [_key(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))]

    @db_errors
    def revoke_key(self, name: str) -> bool:
        """Revoke a key by name; False when there is no such key or it was revoked already."""
        with self._session(write=True) as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name))
            if row is None or row.revoked:
                return False
            row.revoked, row.revoked_at = True, utcnow()
            return True
