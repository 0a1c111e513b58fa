"""A stand-in for ``vllm serve Qwen/Qwen3-ASR-1.7B`` for tests: FastAPI + uvicorn on 127.0.0.1, real Qwen3-ASR code.

It loads a (tiny, random-weight) Qwen3-ASR checkpoint with qwen-asr, as the ``qwen3`` engine does, and answers the
two endpoints the way vLLM serves Qwen3-ASR:

- ``/v1/audio/transcriptions``: the prompt is vLLM's fixed one (user audio, then the assistant turn); the language
  comes only from ``to_language`` (``language`` and ``prompt`` are read and ignored); ``verbose_json`` is refused
  with vLLM's 400; ``max_completion_tokens`` limits the output; the reply is the text after ``<asr_text>``.
- ``/v1/chat/completions``: the messages go through the model's own chat template (system text, the audio, a final
  assistant message continued with ``continue_final_message``), ``max_completion_tokens`` (or ``max_tokens``)
  limits the output, and the answer carries ``finish_reason``.

The random decoder never writes an end-of-text token, so the server ends its answer after ``stop_after`` tokens as
a trained model would end it (``finish_reason: "stop"``); an answer that reaches the request's budget first ends
with ``"length"``. On request it misbehaves like a real server: it answers with a phrase looping to the end of the
budget (Qwen3-ASR's known failure), or stalls past the client's read timeout. It records every request, with the
prompt text the model generated from.

Run as a script (``python vllm_qwen_server.py MODEL_DIR``) it is a server process of its own, as ``vllm serve``
is: it prints ``listening <url>`` on stdout and serves until stdin closes. Tests drive it through
:class:`vllm_qwen_process.QwenASRProcess`; two test-only routes (``/_test/reset``, ``/_test/requests``, no part of
vLLM's API) set the misbehaviour and read the record.
"""

from __future__ import annotations

import base64
import io
import math
import threading
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Body, FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from openai_server import RunningServer

from callscribe.engines.qwen3_lang import CODE_TO_NAME

SR = 16_000
MIN_INPUT_S = 0.5  # the model's own minimum input (shorter audio is zero-padded, as the qwen3 engine does)
NO_LIMIT_TOKENS = 4096  # what "no max_completion_tokens" means here (vLLM: the rest of the context window)
ASR_TEXT = "<asr_text>"
AUDIO = "<|audio_start|><|audio_pad|><|audio_end|>"


@dataclass
class QwenServerState:
    model_id: str = "Qwen/Qwen3-ASR-1.7B"
    root: str | None = None  # the served folder vLLM reports as "root" (default: model_id)
    stop_after: int = 12  # tokens after which the answer ends as if the model wrote end-of-text
    loop_times: int = 0  # answer the next N requests with loop_phrase repeated to the end of the budget
    loop_phrase: str = "thank you for calling "
    stall_times: int = 0  # the next N requests wait stall_s before answering
    stall_s: float = 2.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error(message: str) -> JSONResponse:
    """vLLM's 400: ``{"error": {"message", "type", "code"}}``."""
    return JSONResponse({"error": {"message": message, "type": "BadRequestError", "code": 400}}, status_code=400)


def _read_wav(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getframerate() != SR or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError("expected 16 kHz mono 16-bit WAV")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def _audio_part(part: dict[str, Any]) -> np.ndarray:
    """An ``audio_url`` (``data:audio/...;base64,``) or ``input_audio`` content part -> samples."""
    if part.get("type") == "audio_url":
        url = str((part.get("audio_url") or {}).get("url", ""))
        head, _, data = url.partition(",")
        if not (head.startswith("data:audio/") and head.endswith(";base64")):
            raise ValueError("this test server takes audio_url only as a data:audio/...;base64 URL")
        return _read_wav(base64.b64decode(data))
    return _read_wav(base64.b64decode(str((part.get("input_audio") or {}).get("data", ""))))


class QwenASRServer:
    """Load the checkpoint at ``model_dir`` and serve it on a free port of 127.0.0.1 until :meth:`stop`."""

    def __init__(self, model_dir: str | Path, state: QwenServerState | None = None) -> None:
        import torch
        from qwen_asr import Qwen3ASRModel

        self.state = state or QwenServerState()
        self.asr = Qwen3ASRModel.from_pretrained(
            str(model_dir), max_inference_batch_size=1, max_new_tokens=512, dtype=torch.float32, device_map="cpu"
        )
        tokenizer = self.asr.processor.tokenizer
        self._eos = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
        self._generate_lock = threading.Lock()
        self._stopping = threading.Event()
        self.server = RunningServer(self._app())
        self.url = self.server.url

    def stop(self) -> None:
        self._stopping.set()
        self.server.stop()

    def reset(self, **changes: Any) -> QwenServerState:
        """A fresh state (no requests, well-behaved) with ``changes`` applied."""
        self.state.__init__(**changes)  # type: ignore[misc]
        return self.state

    # -- the model ----------------------------------------------------------------------------------------------
    def _generate(self, prompt: str, audio: np.ndarray, limit: int) -> tuple[str, int]:
        """Greedy decoding after ``prompt``: (text, tokens generated); at most ``min(limit, stop_after)`` tokens."""
        import torch

        min_len = int(MIN_INPUT_S * SR)
        if len(audio) < min_len:
            audio = np.pad(audio, (0, min_len - len(audio)))
        processor = self.asr.processor
        with self._generate_lock:
            inputs = processor(text=[prompt], audio=[audio], return_tensors="pt", padding=True)
            inputs = inputs.to(self.asr.model.device).to(self.asr.model.dtype)
            with torch.inference_mode():
                out = self.asr.model.generate(
                    **inputs,
                    max_new_tokens=max(1, min(limit, self.state.stop_after)),
                    eos_token_id=self._eos,
                    do_sample=False,
                )
        sequences = out.sequences if hasattr(out, "sequences") else out
        new = sequences[0, inputs["input_ids"].shape[1] :].tolist()
        ends = [new.index(e) for e in self._eos if e in new]
        tokens = new[: min(ends)] if ends else new
        return processor.tokenizer.decode(tokens, skip_special_tokens=True), len(tokens)

    def _answer(self, prompt: str, audio: np.ndarray, limit: int, forced: bool) -> tuple[str, str]:
        """(text, finish_reason) for one request: the model's own, or the loop the state asks for."""
        with self.state.lock:
            looping = self.state.loop_times > 0
            if looping:
                self.state.loop_times -= 1
        if looping:  # a real tokenizer spends about a token a word: the loop runs that many words to the budget
            phrase = self.state.loop_phrase
            words = max(1, len(phrase.split()))
            head = "" if forced else f"language English{ASR_TEXT}"
            return head + phrase * (limit // words) + " ".join(phrase.split()[: limit % words]), "length"
        text, count = self._generate(prompt, audio, limit)
        return text, ("length" if count >= limit else "stop")

    def _stall(self, seen: dict[str, Any]) -> None:
        """Wait ``stall_s`` (then answer as usual) when the state asks for a stall; the record says whether it did."""
        with self.state.lock:
            seen["stalled"] = self.state.stall_times > 0
            if seen["stalled"]:
                self.state.stall_times -= 1
        if seen["stalled"]:
            self._stopping.wait(self.state.stall_s)

    def _record(self, seen: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.requests.append(seen)

    # -- the endpoints ------------------------------------------------------------------------------------------
    def _app(self) -> FastAPI:
        app = FastAPI()
        state = self.state

        @app.post("/_test/reset")
        def reset(changes: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
            self.reset(**changes)
            return {"ok": True}

        @app.get("/_test/requests")
        def requests() -> list[dict[str, Any]]:
            with state.lock:
                return list(state.requests)

        @app.get("/v1/models")
        def models() -> dict[str, Any]:
            entry = {"id": state.model_id, "object": "model", "owned_by": "vllm", "root": state.root or state.model_id}
            return {"object": "list", "data": [entry]}

        @app.post("/v1/audio/transcriptions")
        def transcriptions(
            file: Annotated[UploadFile, File()],
            model: Annotated[str | None, Form()] = None,
            response_format: Annotated[str, Form()] = "json",
            language: Annotated[str | None, Form()] = None,
            to_language: Annotated[str | None, Form()] = None,
            prompt: Annotated[str, Form()] = "",
            max_completion_tokens: Annotated[int | None, Form()] = None,
            granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
        ) -> Response:
            seen: dict[str, Any] = {
                "endpoint": "transcriptions",
                "response_format": response_format,
                "language": language,
                "to_language": to_language,
                "prompt_field": prompt,
                "max_tokens": max_completion_tokens,
                "granularities": granularities or [],
            }
            self._record(seen)
            if response_format == "verbose_json":
                return _error(f"Currently do not support verbose_json for {model}")
            try:
                audio = _read_wav(file.file.read())
            except (ValueError, wave.Error, EOFError) as exc:
                return _error(f"Invalid or unsupported audio file: {exc}")
            name = CODE_TO_NAME.get(to_language, to_language) if to_language else None
            generation_prompt = f"<|im_start|>user\n{AUDIO}<|im_end|>\n<|im_start|>assistant\n"
            if name:
                generation_prompt += f"language {name}{ASR_TEXT}"
            seen.update(prompt=generation_prompt, audio_s=len(audio) / SR)
            self._stall(seen)
            raw, seen["finish_reason"] = self._answer(
                generation_prompt, audio, max_completion_tokens or NO_LIMIT_TOKENS, forced=name is not None
            )
            text = raw.rsplit(ASR_TEXT, 1)[-1]  # vLLM keeps only what follows the language prefix
            if response_format == "text":
                return PlainTextResponse(text)
            return JSONResponse({"text": text, "usage": {"type": "duration", "seconds": math.ceil(len(audio) / SR)}})

        @app.post("/v1/chat/completions")
        def chat(body: Annotated[dict[str, Any], Body()]) -> Response:
            messages = body.get("messages") or []
            add_generation_prompt = bool(body.get("add_generation_prompt", True))
            continue_final = bool(body.get("continue_final_message", False))
            limit = int(body.get("max_completion_tokens") or body.get("max_tokens") or NO_LIMIT_TOKENS)
            seen: dict[str, Any] = {
                "endpoint": "chat",
                "max_tokens": limit,
                "temperature": body.get("temperature"),
                "roles": [m.get("role") for m in messages],
            }
            self._record(seen)
            if add_generation_prompt and continue_final:
                return _error("Cannot set both `continue_final_message` and `add_generation_prompt` to True.")
            if continue_final and (not messages or messages[-1].get("role") != "assistant"):
                return _error("continue_final_message is set but the last message is not from the assistant.")
            template_messages, audios = [], []
            try:
                for m in messages:
                    content = m.get("content")
                    if isinstance(content, list):
                        parts = []
                        for part in content:
                            if part.get("type") in ("audio_url", "input_audio"):
                                audios.append(_audio_part(part))
                                parts.append({"type": "audio", "audio": ""})
                            elif part.get("type") == "text":
                                parts.append({"type": "text", "text": str(part.get("text", ""))})
                        content = parts
                    template_messages.append({"role": m.get("role"), "content": content if content else ""})
            except (ValueError, wave.Error, EOFError) as exc:
                return _error(f"Invalid or unsupported audio: {exc}")
            if len(audios) != 1:
                return _error(f"expected exactly one audio item, got {len(audios)}")
            prompt = self.asr.processor.apply_chat_template(
                template_messages,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final,
            )
            seen.update(prompt=prompt, audio_s=len(audios[0]) / SR)
            self._stall(seen)
            forced = continue_final and ASR_TEXT in str(messages[-1].get("content", ""))
            text, finish = self._answer(prompt, audios[0], limit, forced=forced)
            seen["finish_reason"] = finish
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            answer = {"object": "chat.completion", "model": state.model_id, "choices": [choice]}
            return JSONResponse(answer)

        return app


def main() -> None:
    """Serve the checkpoint folder given on the command line until stdin closes (the parent is gone or done)."""
    import sys

    server = QwenASRServer(sys.argv[1])
    sys.stdout.write(f"listening {server.url}\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()


__all__ = ["QwenASRServer", "QwenServerState"]
