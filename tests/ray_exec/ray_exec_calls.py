"""Calls with known turns for the Ray executor tests, a local Ray for a test module, and output comparison."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from callscribe.eval.calls import CallSpec, TurnSpec, load_pieces, write_call

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# What a Ray worker needs on its path to import the test engine (it inherits this process's environment).
WORKER_PATH = [HERE, ROOT / "tests" / "speakers", ROOT / "scripts"]
WORKER_IMPORTS = ("ray_exec_engine",)

# Stereo 8 kHz calls, agent left, customer right, with bleed: (name, agent piece, customer piece, agent piece).
ZH_CALLS = (
    ("call_a", ("cosyvoice", "aishell1", "wenetspeech")),
    ("call_b", ("soulx", "aishell2", "cosyvoice")),
    ("call_c", ("fireredtts2_podcast_S1:bc", "wenetspeech", "aishell2")),
    ("call_d", ("aishell1", "soulx", "fireredtts2_podcast_S1:rest")),
    ("call_e", ("wenetspeech", "cosyvoice", "aishell1")),
    ("call_f", ("aishell2", "fireredtts2_podcast_S1:bc", "soulx")),
)
EN_CALLS = (
    ("en_a", ("whisper_jfk", "timit_LDC93S1_8k", "librispeech_1995-1837-0001")),
    ("en_b", ("pocketsphinx_cards_005_numbers", "whisper_jfk", "ljspeech_LJ002-0020_numbers")),
)


def build(evalset: Path, out_dir: Path, calls: tuple[tuple[str, tuple[str, ...]], ...], lang: str = "zh") -> Path:
    """Write ``out_dir/calls/<name>.wav`` and ``out_dir/refs/<name>.json`` for each call; returns the refs folder."""
    pieces = load_pieces(evalset, (lang,))
    for name, (a1, c1, a2) in calls:
        turns = (TurnSpec("agent", (a1,)), TurnSpec("customer", (c1,)), TurnSpec("agent", (a2,)))
        write_call(CallSpec(name, lang, "stereo", 8000, turns, bleed_db=-25.0), pieces, out_dir)
    return out_dir / "refs"


@contextmanager
def local_ray(cpus: int = 2) -> Iterator[Any]:
    """A local Ray with ``cpus`` CPUs whose workers can import the test engine; shut down afterwards."""
    from callscribe.executors.ray_cluster import connect, import_ray

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*map(str, WORKER_PATH), *([old] if old else [])])
    try:
        connect(None, cpus)
        ray = import_ray(local=True)
        try:
            yield ray
        finally:
            ray.shutdown()
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def without_timings(path: Path) -> Any:
    """A transcript JSON with its timings (the one part that differs run to run) left out."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("timings", None)
    return data


def outputs(out: Path) -> dict[str, Any]:
    """Every output file of a folder by name: JSON transcripts without timings, other files as text."""
    found: dict[str, Any] = {}
    for path in sorted(out.iterdir()):
        if path.name.startswith(".") or path.name == "errors.jsonl" or not path.is_file():
            continue
        is_transcript = path.suffix == ".json" and not path.name.endswith(".qa.json")
        found[path.name] = without_timings(path) if is_transcript else path.read_text(encoding="utf-8")
    return found


def error_lines(out: Path) -> list[dict[str, Any]]:
    path = out / "errors.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
