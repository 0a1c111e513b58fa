"""Calls with known words for the store CLI tests, and a way to run the real ``callscribe`` CLI on them.

The calls are built from evalset-dev speech (:mod:`callscribe.eval.calls`): stereo 8 kHz, agent left, customer
right, with bleed. ``store_cli_launch.py`` runs ``callscribe.cli.main()`` in a subprocess with one extra engine,
``reference``, which hears each clip through :class:`speakers_calls.ReferenceEngine` with that call's reference
turns: decoding, VAD, bleed removal, clips, roles, QA, the outputs and the store all run for real; only recognition
is replaced, so the words a test searches for are known.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from callscribe.cli import app
from callscribe.eval.calls import BuiltCall, CallSpec, Piece, TurnSpec, load_pieces, write_call
from callscribe.model import QAResult, Transcript
from callscribe.store import Store

HERE = Path(__file__).resolve().parent
LAUNCH = HERE / "store_cli_launch.py"
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "store"))  # the store tests' databases: a private PostgreSQL, SQLite

from store_fixtures import ENGINES, execute, fresh_url  # noqa: E402

__all__ = ["ENGINES", "execute", "fresh_url"]

# File names say agent, time and queue (the --name-pattern tests read them).
NAME_PATTERN = "{agent_id}_{call_time:%Y%m%d-%H%M%S}_{queue}"
CALLS = (
    # agent says the CosyVoice line and the WenetSpeech line; the customer the AISHELL-1 line (交易, 停滞)
    ("A01_20240506-093000_billing", ("cosyvoice", "aishell1", "wenetspeech")),
    # agent says the SoulX line (景德镇, 攀岩); the customer the AISHELL-2 command (换一首歌)
    ("A02_20240514-141500_sales", ("soulx", "aishell2", "cosyvoice")),
    # agent says the FireRedTTS2 line (美国市场, 考察); the customer the WenetSpeech line
    ("A01_20240603-110000_sales", ("fireredtts2", "wenetspeech", "aishell2")),
)
NEVER_SAID = "退款"  # refund: in none of the references
CARD = HERE / "data" / "store_cli_card.yaml"  # scores the three calls 100 %, 60 %, 20 %


def build(evalset: Path, out_dir: Path, calls: tuple[tuple[str, tuple[str, ...]], ...] = CALLS) -> list[BuiltCall]:
    """Write ``calls/<name>.wav`` and ``refs/<name>.json`` for each call (agent, customer, agent turns)."""
    pieces: dict[str, Piece] = load_pieces(evalset, ("zh",))
    built = []
    for name, (a1, c1, a2) in calls:
        turns = (TurnSpec("agent", (a1,)), TurnSpec("customer", (c1,)), TurnSpec("agent", (a2,)))
        built.append(write_call(CallSpec(name, "zh", "stereo", 8000, turns, bleed_db=-25.0), pieces, out_dir))
    return built


def run_cli(
    refs: Path, *args: str | Path, delay: float = 0.0, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``callscribe ARGS`` in a subprocess with the ``reference`` engine reading ``refs/<call>.json``."""
    return subprocess.run(command(refs, *args), capture_output=True, text=True, timeout=timeout,
                          env=environment(delay, env), cwd=ROOT)  # fmt: skip


def command(refs: Path, *args: str | Path) -> list[str]:
    return [sys.executable, str(LAUNCH), str(refs), *map(str, args)]


def environment(delay: float = 0.0, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CALLSCRIBE_DB"}
    env.update({"STORE_CLI_DELAY": str(delay), "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(extra or {})})
    return env


def transcribe_args(calls: Path, out: Path, *more: str | Path, qa: bool = True) -> list[str | Path]:
    """``transcribe`` of the built calls with the reference engine (and QA with the test scorecard)."""
    args: list[str | Path] = ["transcribe", calls, "-o", out, "--engine", "reference", "--language", "zh"]
    args += ["--format", "json", "--channel-roles", "agent,customer"]
    if qa:
        args += ["--qa", "--scorecard", CARD]
    return [*args, *more]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def folder_calls(out: Path) -> dict[str, tuple[Transcript, QAResult | None]]:
    """The finished calls of an output folder by sha256: transcript and QA result (None without .qa.json)."""
    found = {}
    for path in sorted(out.glob("*.json")):
        if path.name.endswith(".qa.json"):
            continue
        t = Transcript.from_json(path.read_text(encoding="utf-8"))
        qa_path = path.with_name(path.name[: -len(".json")] + ".qa.json")
        qa = QAResult.from_dict(json.loads(qa_path.read_text(encoding="utf-8"))) if qa_path.is_file() else None
        found[t.call.sha256] = (t, qa)
    return found


def check_store_matches_folder(url: str, out: Path, *, complete: bool = True) -> int:
    """Every call of the folder is in the store once, whole (every utterance, its QA when the folder has one), and
    nothing else is: no call lost, none twice, none half-stored, no stray rows. ``complete=False`` (a run was
    killed): the stored calls are some of the folder's, each whole. Returns the number of calls stored."""
    files = folder_calls(out)
    with Store(url) as store:
        summaries = store.calls(limit=None, order_by="id")
        shas = [s.sha256 for s in summaries]
        assert len(shas) == len(set(shas)), "a call stored twice"
        if complete:
            assert sorted(shas) == sorted(files), "calls lost"
        else:
            assert set(shas) <= set(files), "a call in the store whose files are not in the folder"
        utterances = 0
        for s in summaries:
            t, qa = files[s.sha256]
            record = store.call(s.id)
            assert record is not None
            stored = Transcript.from_dict(record.transcript)
            assert [(u.start, u.end, u.channel, u.role, u.text) for u in stored.utterances] == [
                (u.start, u.end, u.channel, u.role, u.text) for u in t.utterances
            ], f"{s.source}: utterances differ from its transcript"
            assert (record.qa is None) == (qa is None), f"{s.source}: QA stored without the call or left out"
            if qa is not None:
                assert QAResult.from_dict(record.qa).score == qa.score == s.score
            utterances += len(t.utterances)
        counts = store.counts()
    assert counts["calls"] == len(summaries)
    assert counts["utterances"] == counts["search"] == utterances, "utterance rows without their call"
    assert counts["qa_results"] == sum(files[sha][1] is not None for sha in shas)
    return len(summaries)


def count_calls(url: str) -> int:
    """Calls in the database, read with plain SQL (while another process writes)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM calls")).scalar() or 0)
    except Exception:  # the schema may not be there yet
        return 0
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Stored:
    """Built calls transcribed by the CLI into ``out`` and the database at ``url``."""

    url: str
    refs: Path
    out: Path
    calls: list[BuiltCall]

    def cli(self, *args: str | Path) -> tuple[int, str, str]:
        """The command in a subprocess, as a user runs it."""
        done = run_cli(self.refs, *args, "--db", self.url)
        return done.returncode, done.stdout, done.stderr

    def invoke(self, *args: str | Path) -> tuple[int, str, str]:
        """The command in this process (typer's runner): quicker where many are run."""
        res = CliRunner().invoke(app, [*map(str, args), "--db", self.url])
        return res.exit_code, res.stdout, res.stderr

    def search(self, *args: str) -> tuple[int, list[dict]]:
        rc, stdout, stderr = self.invoke("search", *args, "--json")
        assert rc in (0, 1), stderr
        return rc, [json.loads(line) for line in stdout.splitlines()]


@contextmanager
def stored_calls(kind: str, evalset: Path, tmp: Path) -> Iterator[Stored]:
    """The three calls built, transcribed with QA into a fresh database of ``kind``; metadata from their names."""
    calls = build(evalset, tmp)
    with fresh_url(kind, tmp) as url:
        out = tmp / "out"
        done = run_cli(tmp / "refs", *transcribe_args(tmp / "calls", out, "--db", url, "--name-pattern", NAME_PATTERN))
        assert done.returncode == 0, done.stderr
        assert f"database: {len(calls)} calls stored ({len(calls)} new)" in done.stderr
        yield Stored(url, tmp / "refs", out, calls)
