"""``callscribe qa OUT_DIR``: check every transcript in a folder and write ``<stem>.qa.json`` next to each."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from callscribe.model import QAResult, Transcript

if TYPE_CHECKING:
    from callscribe.qa.rules import Scorecard

log = logging.getLogger("callscribe")

QA_SUFFIX = ".qa.json"


@dataclass(frozen=True)
class CallOutcome:
    """One transcript file checked: its result, or the one-line reason it could not be."""

    path: Path
    result: QAResult | None = None
    error: str | None = None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def transcript_files(out_dir: Path) -> list[Path]:
    """The transcript JSON files the pipeline wrote into ``out_dir`` (QA results left out)."""
    return sorted(p for p in out_dir.glob("*.json") if p.is_file() and not p.name.endswith(QA_SUFFIX))


def qa_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(".json")] + QA_SUFFIX)


def check_file(path: Path, scorecard: Scorecard | None) -> CallOutcome:
    """Run QA on one transcript file and write its result; any failure becomes a one-line error."""
    from callscribe.qa import run_qa

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return CallOutcome(path, error=f"{path}: not readable JSON: {str(e).splitlines()[0]}")
    if not isinstance(data, dict) or "call" not in data or "utterances" not in data:
        return CallOutcome(path, error=f"{path}: not a transcript (no call/utterances)")
    try:
        t = Transcript.from_dict(data)
    except (TypeError, ValueError, KeyError) as e:
        return CallOutcome(path, error=f"{path}: bad transcript: {str(e).splitlines()[0]}")
    try:
        result = run_qa(t, scorecard)
        write_atomic(qa_path(path), json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    except Exception as e:  # one bad call must not stop the folder
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        return CallOutcome(path, error=f"{path}: QA failed: {reason}")
    return CallOutcome(path, result)


def _table(outcomes: list[CallOutcome]) -> Table:
    table = Table(title="Call quality")
    counts = ("score", "passed", "failed", "not graded")
    for col in ("call", "scorecard", *counts, "review"):
        table.add_column(col, justify="right" if col in counts else "left")
    for o in outcomes:
        if o.result is None:
            table.add_row(o.path.name, "-", "-", "-", "-", "-", f"[red]error[/red] {o.error}")
            continue
        r = o.result
        scored = [x for x in r.rules if x.points > 0]
        review = "; ".join(r.review_reasons) if r.needs_review else "no"
        table.add_row(
            r.call_id,
            r.scorecard,
            f"{r.score:g}/{r.max_score:g}",
            str(sum(x.passed for x in scored)),
            str(sum(not x.passed for x in scored)),
            str(sum(not x.graded for x in r.rules)),
            review,
        )
    return table


def _summary(outcomes: list[CallOutcome]) -> dict[str, float | int]:
    done = [o.result for o in outcomes if o.result is not None]
    pct = [r.score / r.max_score for r in done if r.max_score > 0]
    return {
        "calls": len(outcomes),
        "checked": len(done),
        "errors": len(outcomes) - len(done),
        "needs_review": sum(r.needs_review for r in done),
        "mean_score_pct": round(100 * sum(pct) / len(pct), 1) if pct else 0.0,
    }


def register(app: typer.Typer) -> None:
    """Add the ``qa`` command to the CLI app."""

    @app.command("qa")
    def qa_command(
        out_dir: Annotated[Path, typer.Argument(help="Folder of transcript JSON files written by transcribe.")],
        scorecard: Annotated[
            str | None,
            typer.Option("--scorecard", help="Scorecard YAML file or built-in name; default: by call language."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON instead of a table.")] = False,
    ) -> None:
        """Score every call in OUT_DIR against a scorecard; write <stem>.qa.json next to each transcript."""
        # imported here so the rest of the CLI works without the [qa] extra (jieba, pypinyin)
        from callscribe.extras import require
        from callscribe.qa.rules import ScorecardError, load_scorecard

        require("jieba", "qa")  # missing: one line naming the extra, before any file is read

        console = Console(stderr=as_json)
        if not out_dir.is_dir():
            console.print(f"[red]error[/red] {out_dir}: not a folder")
            raise typer.Exit(2)
        try:
            card = load_scorecard(scorecard) if scorecard else None
        except ScorecardError as e:
            console.print(f"[red]error[/red] {e}")
            raise typer.Exit(2) from e
        files = transcript_files(out_dir)
        if not files:
            console.print(f"[yellow]no transcript JSON files in {out_dir}[/yellow]")
        outcomes = [check_file(p, card) for p in files]
        summary = _summary(outcomes)
        if as_json:
            payload = {
                "calls": [o.result.to_dict() for o in outcomes if o.result is not None],
                "errors": [o.error for o in outcomes if o.error],
                "summary": summary,
            }
            typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        else:
            console.print(_table(outcomes))
            for o in outcomes:
                if o.error:
                    console.print(f"[red]error[/red] {o.error}", soft_wrap=True)
            console.print(
                f"{summary['checked']}/{summary['calls']} calls checked, {summary['needs_review']} need review, "
                f"mean score {summary['mean_score_pct']}%, {summary['errors']} error(s)"
            )
        if summary["errors"]:
            raise typer.Exit(1)
