"""``create_app(settings)``: the FastAPI app of ``callscribe serve``.

One :class:`Service` per app holds what every request shares: the settings, the one pipeline and its engine worker,
the uploads folder, the metrics and the access rules. The engine loads in the worker thread at startup, so the
process answers ``/healthz`` at once and ``/readyz`` when the model is in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from callscribe.pipeline import Pipeline
from callscribe.server import errors
from callscribe.server.auth import Access, StoreKeys
from callscribe.server.glossary import LiveGlossary
from callscribe.server.jobs import JobRunner
from callscribe.server.logs import RequestContext
from callscribe.server.metrics import Metrics
from callscribe.server.settings import Settings
from callscribe.server.uploads import UploadStore
from callscribe.server.webhooks import Webhooks
from callscribe.server.worker import EngineWorker, RequestOptions

if TYPE_CHECKING:
    from callscribe.store import Store

log = logging.getLogger("callscribe.server")


class Service:
    """What the requests of one app share."""

    def __init__(self, settings: Settings, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self.pipeline = pipeline or Pipeline(settings.options())
        self.options = self.pipeline.options
        self.metrics = Metrics()
        self.worker = EngineWorker(self.pipeline, max_queue=settings.max_queue, on_event=self.metrics.on_worker_event)
        self.metrics.watch(self.worker)
        self.uploads = UploadStore(settings.data_dir / "uploads")
        self.audio = UploadStore(settings.data_dir / "audio", keep=True)
        self.redacted_dir = settings.data_dir / "audio-redacted"  # toned copies for keys without pii
        self.access = Access.from_key(settings.api_key_value())
        self.created = int(time.time())
        self.store: Store | None = None
        self.runner: JobRunner | None = None
        self.webhooks: Webhooks | None = None
        if settings.db:
            import callscribe.store

            self.store = callscribe.store.Store(settings.db)
            self.access.resolvers.append(StoreKeys(self.store))
        self.glossary = LiveGlossary.from_settings(settings, self.store)  # read again before each request
        if self.store is not None:
            self.metrics.watch_store(self.store.job_counts)  # the job table by state, at each scrape
            self.webhooks = Webhooks.from_settings(settings)  # server, per-key and per-job URLs; a durable outbox
            self.runner = JobRunner(
                self.store,
                self.worker,
                self.options,
                concurrency=settings.job_concurrency,
                webhooks=self.webhooks,
                redacted_dir=self.redacted_dir if self.options.redact_audio else None,
                glossary=self.glossary,
            )

    def model_card(self) -> dict[str, Any]:
        """The served model as OpenAI lists one (plus what callscribe knows about it)."""
        engine = self.worker.engine_name or self.pipeline.engine_name or self.options.engine
        return {
            "id": self.options.model or engine,
            "object": "model",
            "created": self.created,
            "owned_by": "callscribe",
            "engine": engine,
            "description": self.worker.engine_description,
            "ready": self.worker.ready.is_set(),
        }

    def request_options(self, options: RequestOptions) -> RequestOptions:
        """A request's options with the server's glossary as it is now (the store's entries read again)."""
        return options if self.glossary is None else self.glossary.apply(options)

    def start(self) -> None:
        swept = self.uploads.sweep()
        if swept:
            log.info("removed %d upload(s) left by an earlier run", swept)
        self.audio.sweep()
        if self.access.open:
            log.warning("no API key configured: the service is open to anyone who can reach it")
        self.worker.start()
        if self.runner is not None:
            self.runner.start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.worker.stop()
        if self.webhooks is not None:
            self.webhooks.close()
        if self.glossary is not None:
            self.glossary.close()
        if self.store is not None:
            self.store.close()


def create_app(settings: Settings | None = None, *, pipeline: Pipeline | None = None) -> FastAPI:
    """The app for ``settings`` (default: from ``CALLSCRIBE_*`` variables); ``pipeline`` replaces the one the
    settings would build (an embedding program that already holds one)."""
    from callscribe.server import routes_calls, routes_openai, routes_ops, stream_routes
    from callscribe.server import ui as desk_ui

    settings = settings or Settings()
    service = Service(settings, pipeline)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(title="callscribe", summary="Call transcription service", lifespan=lifespan)
    app.state.service = service
    app.state.access = service.access
    errors.install(app)
    app.include_router(routes_ops.router)
    app.include_router(routes_openai.router)
    app.include_router(routes_calls.router)
    app.include_router(desk_ui.router)  # the review desk (docs/ui.md)
    stream_routes.install(app)  # live calls on /v1/stream (docs/streaming.md)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(RequestContext, metrics=service.metrics)
    return app
