"""Calls in the store: ``POST /v1/calls`` (a durable job), ``GET /v1/jobs/{id}``, ``GET /v1/calls[?q=]``,
``GET /v1/calls/{id}``, ``GET /v1/calls/{id}/audio`` (HTTP range requests), ``DELETE /v1/calls/{id}``.

Scopes: ``ingest`` sends calls and follows their jobs, ``review`` reads transcripts and searches, ``pii`` fetches the
recordings (unredacted speech; ``review`` gets them with a tone over the PII), ``admin`` deletes.
"""

from __future__ import annotations

import dataclasses
import mimetypes
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from callscribe.server.auth import Principal, require
from callscribe.server.errors import ApiError
from callscribe.server.forms import read_form
from callscribe.server.jobs import job_view
from callscribe.server.openai_params import parse
from callscribe.server.routes_openai import check_audio

if TYPE_CHECKING:
    from callscribe.server.app import Service
    from callscribe.store import Store

router = APIRouter()
MAX_LIST = 500
META_FIELDS = ("agent_id", "queue")
MAX_CHANNELS = 8
ROLE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_CALL_FIELDS = {
    "file": {"type": "string", "format": "binary"},
    "language": {"type": "string"},
    "prompt": {"type": "string", "description": "glossary terms, one a line or comma-separated"},
    "agent_id": {"type": "string"},
    "queue": {"type": "string"},
    "call_time": {"type": "string", "format": "date-time"},
    "channel_roles": {"type": "string", "description": "roles by channel of a stereo call, e.g. agent,customer"},
    "webhook_url": {"type": "string", "format": "uri", "description": "POST here when the job ends (--webhook-allow)"},
}
_CALL_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": _CALL_FIELDS}}
        },
    }
}


def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def _store(service: Service) -> Store:
    if service.store is None:
        raise ApiError(501, "calls need the call store: start callscribe serve with --db URL (or CALLSCRIBE_DB)",
                       "invalid_request_error", "store_not_configured")  # fmt: skip
    return service.store


def _call_time(value: str | None) -> str | None:
    if not value or not value.strip():
        return None
    from callscribe.callmeta import parse_time

    try:
        return parse_time(value).isoformat()
    except ValueError:
        raise ApiError(400, f"call_time {value!r}: expected an ISO 8601 date or date-time", code="invalid_value",
                       param="call_time") from None  # fmt: skip


def _channel_roles(value: str | None) -> list[str]:
    if not value or not value.strip():
        return []
    roles = [r.strip().lower() for r in value.split(",")]
    if len(roles) > MAX_CHANNELS or not all(ROLE.fullmatch(r) for r in roles):
        raise ApiError(400, f"channel_roles {value!r}: expected up to {MAX_CHANNELS} comma-separated roles, e.g. "
                       "agent,customer", code="invalid_value", param="channel_roles")  # fmt: skip
    return roles


def _webhook_url(value: str | None, allowed: list[str]) -> str | None:
    if not value or not value.strip():
        return None
    from callscribe.server.webhooks import check_url

    try:
        return check_url(value, allowed)
    except ValueError as exc:
        raise ApiError(400, f"webhook_url: {exc}", code="invalid_value", param="webhook_url") from None


def _summary(summary: Any) -> dict[str, Any]:
    body = jsonable_encoder(dataclasses.asdict(summary))
    body.pop("source", None)  # a server path
    return {"object": "call", **body}


@router.post(
    "/v1/calls", status_code=202, summary="Queue a call for transcription (a durable job)", openapi_extra=_CALL_SCHEMA
)
async def add_call(request: Request, principal: Principal = Depends(require("ingest"))) -> JSONResponse:  # noqa: B008
    service = _service(request)
    store = _store(service)
    form = await read_form(request, service.audio, service.settings.max_upload)
    upload = form.upload
    try:
        params = parse(form)  # language, prompt -> glossary (the format fields do not apply)
        webhook_url = _webhook_url(form.get("webhook_url"), service.settings.webhook_allow)
        if upload is None:
            raise ApiError(400, "no audio: send the recording in a multipart field named 'file'", code="missing_file",
                           param="file")  # fmt: skip
        await check_audio(upload)
        payload = {
            "path": str(upload.path),
            "sha256": upload.sha256,
            "bytes": upload.size,
            "name": upload.name,
            "language": params.options.language,
            "hotwords": list(params.options.hotwords),
            "corrections": [list(pair) for pair in params.options.corrections],
            "call_time": _call_time(form.get("call_time")),
            "channel_roles": _channel_roles(form.get("channel_roles")),
            "by": principal.name,
            "webhook_url": webhook_url,
            **{key: (form.get(key) or "").strip() or None for key in META_FIELDS},
        }
        runner = service.runner
        pending, stored = (None, None) if runner is None else await run_in_threadpool(runner.duplicate_of, payload)
        if pending is not None:  # the same recording is already queued or running: that job answers
            return JSONResponse(job_view(pending), status_code=200, headers={"Location": f"/v1/jobs/{pending.id}"})
        job = await run_in_threadpool(store.add_job, payload)
    except BaseException:
        if upload is not None:
            service.audio.discard(upload)
        raise
    if runner is not None and stored is not None:  # already stored: a job that is done at once, with that call
        job = await run_in_threadpool(runner.finish_stored, job, stored)
        return JSONResponse(job_view(job), status_code=200, headers={"Location": f"/v1/jobs/{job.id}"})
    if runner is not None:
        runner.wake()
    return JSONResponse(job_view(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


@router.get("/v1/jobs/{job_id}", summary="A call job")
async def get_job(job_id: str, request: Request, _: Principal = Depends(require("ingest"))) -> dict[str, Any]:  # noqa: B008
    job = await run_in_threadpool(_store(_service(request)).job, job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id}", code="job_not_found")
    return job_view(job)


@router.get("/v1/jobs", summary="Call jobs, oldest first")
async def list_jobs(
    request: Request,
    state: str | None = None,
    limit: int = Query(100, ge=1, le=MAX_LIST),
    _: Principal = Depends(require("ingest")),  # noqa: B008
) -> dict[str, Any]:
    jobs = await run_in_threadpool(lambda: _store(_service(request)).jobs(state=state, limit=limit))
    return {"object": "list", "data": [job_view(j) for j in jobs]}


@router.get("/v1/calls", summary="Stored calls, filtered and searched")
async def list_calls(
    request: Request,
    q: str | None = None,
    agent: str | None = None,
    queue: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    needs_review: bool | None = None,
    sentiment: str | None = None,
    order_by: str = "-call_time",
    limit: int = Query(50, ge=1, le=MAX_LIST),
    offset: int = Query(0, ge=0),
    _: Principal = Depends(require("review")),  # noqa: B008
) -> dict[str, Any]:
    from callscribe.store import QueryError
    from callscribe.store.moods import MOODS

    store = _store(_service(request))
    if sentiment is not None and sentiment not in MOODS:
        raise ApiError(400, f"sentiment {sentiment!r} is not one of {', '.join(MOODS)}", code="invalid_value",
                       param="sentiment")  # fmt: skip
    query = {"q": q, "agent": agent, "queue": queue, "since": since, "until": until, "needs_review": needs_review,
             "sentiment": sentiment}  # fmt: skip
    try:
        found = await run_in_threadpool(lambda: store.calls(**query, order_by=order_by, limit=limit, offset=offset))
    except (QueryError, ValueError) as exc:
        raise ApiError(
            400, str(exc), code="invalid_value", param="q" if isinstance(exc, QueryError) else None
        ) from None
    return {"object": "list", "data": [_summary(s) for s in found]}


@router.get("/v1/calls/{call_id}", summary="A stored call: summary, transcript and QA")
async def get_call(
    call_id: int,
    request: Request,
    principal: Principal = Depends(require("review")),  # noqa: B008
) -> dict[str, Any]:
    record = await run_in_threadpool(_store(_service(request)).call, call_id)
    if record is None:
        raise ApiError(404, f"no call {call_id}", code="call_not_found")
    transcript, qa = dict(record.transcript), record.qa
    if not principal.allows("pii"):  # a reviewer without pii reads the call masked, whatever was stored
        transcript, qa = await run_in_threadpool(_masked, transcript, qa)
    transcript["call"] = {k: v for k, v in transcript.get("call", {}).items() if k != "path"}
    return {**_summary(record.summary), "transcript": transcript, "qa": qa}


def _masked(transcript: dict[str, Any], qa: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The transcript redacted now, and the QA strings that quote speech (hit texts, details, review reasons)."""
    from callscribe.model import Transcript
    from callscribe.text.pii import DEFAULT_MASK, redact_text
    from callscribe.text.pii_transcript import redact_transcript

    shown = redact_transcript(Transcript.from_dict(transcript), DEFAULT_MASK)[0].to_dict()
    if not qa:
        return shown, qa
    language = transcript.get("language")
    qa = dict(qa)
    qa["review_reasons"] = [redact_text(r, language) for r in qa.get("review_reasons") or ()]
    rules = []
    for rule in qa.get("rules") or ():
        rule = dict(rule)
        if isinstance(rule.get("detail"), str):
            rule["detail"] = redact_text(rule["detail"], language)
        rule["hits"] = [
            {**h, "text": redact_text(h["text"], language)} if isinstance(h.get("text"), str) else h
            for h in rule.get("hits") or ()
        ]
        rules.append(rule)
    qa["rules"] = rules
    return shown, qa


@router.get("/v1/calls/{call_id}/audio", summary="A call's recording (supports Range)", response_model=None)
async def get_audio(call_id: int, request: Request, principal: Principal = Depends(require())) -> Response:  # noqa: B008
    """The recording for a key with the ``pii`` scope; for a ``review`` key a WAV copy with a tone over the PII."""
    if not (principal.allows("pii") or principal.allows("review")):
        raise ApiError(403, "this API key lacks the 'review' scope", "permission_error", "insufficient_scope")
    service = _service(request)
    record = await run_in_threadpool(_store(service).call, call_id)
    if record is None:
        raise ApiError(404, f"no call {call_id}", code="call_not_found")
    path = service.audio.find(record.summary.sha256)
    if path is None:
        raise ApiError(404, f"call {call_id}: its recording is not kept on this server", code="audio_not_found")
    shown, name = "original", f"{record.summary.name}{path.suffix}"
    if not principal.allows("pii"):
        from callscribe.server import call_audio

        corrections = await run_in_threadpool(_store(service).corrections, call_id)
        spans = await run_in_threadpool(call_audio.mask_spans, record.transcript, corrections)
        path = await run_in_threadpool(
            call_audio.redacted_file, service.redacted_dir, record.summary.sha256, call_id, path, spans
        )
        shown, name = "redacted", f"{record.summary.name}.redacted.wav"
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, filename=name, headers={"X-Callscribe-Audio": shown})


@router.delete("/v1/calls/{call_id}", status_code=204, summary="Delete a call and its recording")
async def delete_call(call_id: int, request: Request, _: Principal = Depends(require("admin"))) -> Response:  # noqa: B008
    service = _service(request)
    store = _store(service)
    record = await run_in_threadpool(store.call, call_id)
    if record is None or not await run_in_threadpool(store.delete_call, call_id):
        raise ApiError(404, f"no call {call_id}", code="call_not_found")
    path = service.audio.find(record.summary.sha256)
    if path is not None:
        path.unlink(missing_ok=True)  # the recording goes with the call (other calls of it lose their audio too)
    from callscribe.server import call_audio

    call_audio.drop(service.redacted_dir, record.summary.sha256)
    return Response(status_code=204)
