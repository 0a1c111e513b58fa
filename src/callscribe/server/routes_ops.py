"""Operations: ``/healthz`` (the process answers), ``/readyz`` (the engine is loaded), ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from callscribe.server.app import Service

router = APIRouter()


def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The engine is loaded (503 until then)")
async def readyz(request: Request) -> JSONResponse:
    worker = _service(request).worker
    if worker.ready.is_set():
        body = {"status": "ready", "engine": worker.engine_name, "model": worker.engine_description}
        return JSONResponse(body)
    if worker.load_error is not None:
        return JSONResponse({"status": "failed", "reason": worker.load_error}, status_code=503)
    return JSONResponse({"status": "loading"}, status_code=503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    m = _service(request).metrics
    body = await run_in_threadpool(m.render)  # the store's jobs are counted in the database at each scrape
    return Response(body, media_type=m.content_type)
