"""A small OpenAI-compatible transcription server for tests: FastAPI + uvicorn on 127.0.0.1 in a thread.

It really transcribes (with any callscribe engine, e.g. Whisper tiny.en) and can misbehave on request: fail with
a status a number of times, refuse ``verbose_json``, or answer slowly; it records what each request carried and
how many requests were in flight at once.
"""

from __future__ import annotations

import io
import math
import threading
import time
import wave
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import uvicorn
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from callscribe.engines.base import Clip, Engine, EngineOptions


@dataclass
class ServerState:
    fail_times: int = 0  # answer the next N requests with fail_status
    fail_status: int = 503
    fail_message: str = "model is warming up"
    reject_verbose: bool = False
    qwen_tag: bool = False  # answer like raw Qwen3-ASR: "language English<asr_text>..." in the text
    delay_s: float = 0.0
    model_id: str = "tiny-test-model"
    requests: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _read_wav(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data), "rb") as w:
        assert w.getframerate() == 16_000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def make_app(engine: Engine, state: ServerState, engine_lock: threading.Lock) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": state.model_id, "object": "model"}]}

    @app.post("/v1/audio/transcriptions")
    def transcriptions(
        request: Request,
        file: Annotated[UploadFile, File()],
        model: Annotated[str, Form()],
        response_format: Annotated[str, Form()] = "json",
        language: Annotated[str | None, Form()] = None,
        to_language: Annotated[str | None, Form()] = None,
        prompt: Annotated[str | None, Form()] = None,
        granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
    ) -> Response:
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            seen = {
                "model": model,
                "response_format": response_format,
                "language": language,
                "to_language": to_language,
                "prompt": prompt,
                "granularities": granularities or [],
                "authorization": request.headers.get("authorization"),
            }
            state.requests.append(seen)
            failing = state.fail_times > 0
            if failing:
                state.fail_times -= 1
        try:
            time.sleep(state.delay_s)
            if failing:
                return JSONResponse({"error": {"message": state.fail_message}}, status_code=state.fail_status)
            if response_format == "verbose_json" and state.reject_verbose:
                message = "Currently only response_format `json` or `text` is supported"
                return JSONResponse({"error": {"message": message}}, status_code=400)
            audio = _read_wav(file.file.read())
            stamps = "word" if "word" in (granularities or []) else "segment"
            options = EngineOptions(language=language, timestamps=stamps, beam_size=1)
            with engine_lock:
                result = engine.transcribe([Clip("upload", 0, 0.0, audio)], options)[0]
            text = f"language English<asr_text>{result.text}" if state.qwen_tag else result.text
            if response_format == "text":
                return PlainTextResponse(text)
            if response_format == "json":
                return JSONResponse({"text": text})
            body: dict[str, Any] = {
                "task": "transcribe",
                "language": "english" if result.language == "en" else result.language,
                "duration": len(audio) / 16_000,
                "text": result.text,
                "segments": [
                    {
                        "id": i,
                        "start": s.start,
                        "end": s.end,
                        "text": s.text,
                        "avg_logprob": math.log(s.confidence) if s.confidence else None,
                    }
                    for i, s in enumerate(result.segments)
                ],
            }
            if "word" in (granularities or []):
                words = [w for s in result.segments for w in s.words]
                body["words"] = [{"word": w.text, "start": w.start, "end": w.end} for w in words]
            return JSONResponse(body)
        finally:
            with state.lock:
                state.in_flight -= 1

    return app


class RunningServer:
    """Serve ``app`` on a free port of 127.0.0.1 until :meth:`stop`."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
