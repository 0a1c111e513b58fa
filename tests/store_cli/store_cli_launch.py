"""``python store_cli_launch.py REFS_DIR ARGS...``: the real ``callscribe`` CLI with one more engine, ``reference``.

The ``reference`` engine hears each clip of call ``X`` through ``speakers_calls.ReferenceEngine`` with the turns of
``REFS_DIR/X.json`` (a :class:`callscribe.eval.calls_score.CallRef`). ``$STORE_CLI_DELAY`` seconds of sleep per
engine batch make a run slow enough to be killed in the middle.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "speakers"), str(ROOT / "scripts")]

from speakers_calls import HeardTurn, ReferenceEngine  # noqa: E402

from callscribe.engines import base  # noqa: E402
from callscribe.eval.calls_score import CallRef  # noqa: E402


class CallsReferenceEngine:
    name = "reference"

    def __init__(self, refs: Path, delay: float) -> None:
        self.refs = refs
        self.delay = delay
        self.engines: dict[str, ReferenceEngine] = {}

    def describe(self) -> str:
        return f"reference turns from {self.refs}"

    def _engine(self, call_id: str) -> ReferenceEngine:
        if call_id not in self.engines:
            ref = CallRef.load(self.refs / f"{call_id}.json")
            self.engines[call_id] = ReferenceEngine([HeardTurn(t.start, t.end, t.text, t.party) for t in ref.turns])
        return self.engines[call_id]

    def transcribe(self, clips: Sequence[Any], options: Any) -> list[Any]:
        results = [self._engine(clip.call_id).transcribe([clip], options)[0] for clip in clips]
        if self.delay:
            time.sleep(self.delay)
        return results


def main() -> None:
    refs = Path(sys.argv[1])
    delay = float(os.environ.get("STORE_CLI_DELAY") or 0)
    base.register("reference")(lambda **_: CallsReferenceEngine(refs, delay))
    sys.argv = ["callscribe", *sys.argv[2:]]
    from callscribe.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
