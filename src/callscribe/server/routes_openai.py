"""OpenAI-compatible routes: ``POST /v1/audio/transcriptions`` and ``GET /v1/models``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from callscribe.audio import AudioError, decode, probe_seconds
from callscribe.model import QAResult, Transcript
from callscribe.pipeline import CallError
from callscribe.server import openai_format as fmt
from callscribe.server.auth import Principal, require
from callscribe.server.errors import ApiError
from callscribe.server.forms import read_form
from callscribe.server.openai_params import TranscriptionParams, parse
from callscribe.server.uploads import StoredUpload
from callscribe.server.worker import QueueFull, Result, WorkerStopped

if TYPE_CHECKING:
    from callscribe.server.app import Service

log = logging.getLogger("callscribe.server")
router = APIRouter()
KEEPALIVE_S = 10.0
# Stages whose failure means the file itself cannot be used (415); any other failure is the server's (500).
INPUT_STAGES = ("decode", "input")

_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "model": {"type": "string"},
                        "language": {"type": "string"},
                        "prompt": {"type": "string", "description": "glossary terms, one a line or comma-separated"},
                        "response_format": {"type": "string", "enum": list(fmt.RESPONSE_FORMATS)},
                        "timestamp_granularities[]": {"type": "array", "items": {"enum": ["segment", "word"]}},
                        "stream": {"type": "boolean"},
                        "temperature": {"type": "number"},
                    },
                }
            }
        },
    }
}


def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


async def check_audio(upload: StoredUpload) -> float:
    """The upload's declared seconds; 415 with the decoder's reason when it holds no usable audio."""
    seconds = await run_in_threadpool(probe_seconds, upload.path)
    if seconds is not None:
        return seconds

    def reason() -> str:
        try:
            decode(upload.path).close()  # the decoder says why (probe only says no)
        except AudioError as exc:
            return exc.cause
        return "no audio stream"

    cause = await run_in_threadpool(reason)
    raise ApiError(415, f"{upload.name}: {cause}", code="unsupported_audio", param="file")


def _call_failed(error: CallError, upload: StoredUpload) -> ApiError:
    reason = str(error).replace(str(upload.path), upload.name)
    if error.stage in INPUT_STAGES:
        return ApiError(415, reason, code="unsupported_audio", param="file")
    return ApiError(500, reason, "server_error", f"{error.stage}_failed")


def _submit(service: Service, upload: StoredUpload, params: TranscriptionParams) -> Future[Result]:
    try:
        future = service.worker.submit(str(upload.path), upload.sha256, service.request_options(params.options))
    except QueueFull as exc:
        raise ApiError(503, f"server busy: {exc}; retry later", "server_error", "queue_full",
                       headers={"Retry-After": "5"}) from None  # fmt: skip
    except WorkerStopped as exc:
        raise ApiError(503, str(exc), "server_error", "engine_unavailable") from None
    future.add_done_callback(lambda _: service.uploads.release(upload))  # the file lives as long as its work
    return future


async def _qa(service: Service, t: Transcript) -> QAResult | None:
    if not service.options.qa:
        return None
    from callscribe.qa import run_qa

    try:
        return await run_in_threadpool(run_qa, t, service.options.scorecard)
    except Exception as exc:
        reason = " ".join(str(exc).split())
        raise ApiError(500, f"quality checks failed: {reason}", "server_error", "qa_failed") from exc


@router.post(
    "/v1/audio/transcriptions",
    openapi_extra=_FORM_SCHEMA,
    summary="Transcribe audio (OpenAI-compatible)",
    response_model=None,
)
async def transcriptions(request: Request, principal: Principal = Depends(require("ingest"))) -> Response:  # noqa: B008
    service = _service(request)
    form = await read_form(request, service.uploads, service.settings.max_upload)
    upload = form.upload
    try:
        params = parse(form)
        if upload is None:
            raise ApiError(400, "no audio: send the recording in a multipart field named 'file'", code="missing_file",
                           param="file")  # fmt: skip
        seconds = await check_audio(upload)
        limit = service.options.max_duration
        if limit is not None and seconds > limit:
            raise ApiError(413, f"{upload.name}: audio is {seconds:.1f} s long, over the server's limit of {limit:g} s",
                           code="audio_too_long", param="file")  # fmt: skip
        future = _submit(service, upload, params)
    except BaseException:
        if upload is not None:
            service.uploads.release(upload)
        raise
    log.info("transcription queued", extra={"sha256": upload.sha256, "bytes": upload.size, "by": principal.name})
    if params.stream:
        return StreamingResponse(_stream(service, future, upload), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip
    try:
        result = await asyncio.wrap_future(future)
    except WorkerStopped as exc:
        raise ApiError(503, str(exc), "server_error", "engine_unavailable") from None
    if isinstance(result, CallError):
        raise _call_failed(result, upload)
    if params.response_format == "json":
        return JSONResponse(fmt.as_json(result))
    if params.response_format == "verbose_json":
        qa = await _qa(service, result)
        return JSONResponse(fmt.as_verbose(result, words=params.words, segments=params.segments, qa=qa))
    text = fmt.as_text(result, params.response_format)
    return PlainTextResponse(text, media_type=fmt.TEXT_TYPES[params.response_format])


async def _stream(service: Service, future: Future[Result], upload: StoredUpload) -> AsyncIterator[bytes]:
    """Comments while the call is worked on (keeps proxies from timing out), then the text events."""
    waiting = asyncio.wrap_future(future)
    while True:
        done, _ = await asyncio.wait({waiting}, timeout=KEEPALIVE_S)
        if done:
            break
        yield b": working\n\n"
    try:
        result = waiting.result()
    except Exception as exc:
        result = CallError(str(upload.path), "server", " ".join(str(exc).split()))
    if isinstance(result, CallError):
        yield fmt.sse(_call_failed(result, upload).body())
        return
    for event in fmt.stream_events(result):
        yield event


@router.get("/v1/models", summary="The loaded model (OpenAI-compatible)")
async def models(request: Request, _: Principal = Depends(require())) -> dict[str, Any]:  # noqa: B008
    service = _service(request)
    return {"object": "list", "data": [service.model_card()]}


@router.get("/v1/models/{model_id:path}", summary="One model (OpenAI-compatible)")
async def model(model_id: str, request: Request, _: Principal = Depends(require())) -> dict[str, Any]:  # noqa: B008
    card = _service(request).model_card()
    if model_id != card["id"]:
        raise ApiError(404, f"model {model_id!r} is not served here; this server runs {card['id']!r}",
                       code="model_not_found", param="model")  # fmt: skip
    return card
