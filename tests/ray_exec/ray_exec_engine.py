"""The ``ray-reference`` engine, registered when this module is imported (Ray workers import it by name through
``RayExecutor(imports=["ray_exec_engine"])``; the test process imports it too, for the local executor).

It hears each clip of call ``X`` through :class:`speakers_calls.ReferenceEngine` with the turns of
``MODEL/X.json`` (``--model`` is the folder of reference turns): decoding, VAD, bleed removal, clips, roles and the
outputs run for real, only recognition is replaced. ``MODEL/engine.json`` may hold ``{"delay": seconds}`` of sleep
per engine batch; every process that hears a batch leaves ``MODEL/heard/<pid>``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speakers_calls import HeardTurn, ReferenceEngine

from callscribe.engines import base
from callscribe.eval.calls_score import CallRef

ENGINE = "ray-reference"


class RayReferenceEngine:
    name = ENGINE

    def __init__(self, refs: Path) -> None:
        self.refs = refs
        settings = refs / "engine.json"
        self.delay = float(json.loads(settings.read_text())["delay"]) if settings.is_file() else 0.0
        self.engines: dict[str, ReferenceEngine] = {}

    def describe(self) -> str:
        return f"reference turns from {self.refs}"

    def _engine(self, call_id: str) -> ReferenceEngine:
        if call_id not in self.engines:
            ref = CallRef.load(self.refs / f"{call_id}.json")
            self.engines[call_id] = ReferenceEngine([HeardTurn(t.start, t.end, t.text, t.party) for t in ref.turns])
        return self.engines[call_id]

    def transcribe(self, clips: Sequence[Any], options: Any) -> list[Any]:
        heard = self.refs / "heard"
        heard.mkdir(exist_ok=True)
        (heard / str(os.getpid())).touch()
        results = [self._engine(clip.call_id).transcribe([clip], options)[0] for clip in clips]
        if self.delay:
            time.sleep(self.delay)
        return results


base.register(ENGINE)(lambda model=None, **_: RayReferenceEngine(Path(str(model))))
