"""``callscribe redact`` (PII out of plain text) and ``callscribe insights`` (figures across a folder of calls)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

log = logging.getLogger("callscribe")

REPORT_NAME = "report.html"
INSIGHTS_DIR = "insights"


def redact(
    file: Annotated[Path | None, typer.Argument(help="Text file to redact; standard input when left out.")] = None,
    language: Annotated[str | None, typer.Option("--language", "-l", help="zh or en; both when left out.")] = None,
    mask: Annotated[str, typer.Option(help="Replacement; {kind} becomes PHONE, ID, CARD or EMAIL.")] = "[{kind}]",
) -> None:
    """Replace phone numbers, ID numbers, bank cards and e-mail addresses in text, line by line, to stdout."""
    from callscribe.text.pii import redact_text, validate_mask

    try:
        validate_mask(mask)
    except ValueError as exc:
        typer.echo(f"error: --mask: {exc}", err=True)
        raise typer.Exit(2) from None
    if file is not None and not file.is_file():
        typer.echo(f"error: {file}: no such file", err=True)
        raise typer.Exit(2)
    try:
        stream = file.open(encoding="utf-8") if file is not None else sys.stdin
        with stream:
            for line in stream:
                end = "\n" if line.endswith("\n") else ""
                sys.stdout.write(redact_text(line.rstrip("\n"), language, mask) + end)
    except UnicodeDecodeError as exc:
        typer.echo(f"error: {file or 'stdin'}: not UTF-8 text ({exc.reason})", err=True)
        raise typer.Exit(2) from exc
    sys.stdout.flush()


def insights(
    out_dir: Annotated[Path, typer.Argument(help="Folder with <stem>.json transcripts (and <stem>.qa.json).")],
    out: Annotated[Path | None, typer.Option("--out", help="Where to write; default OUT_DIR/insights.")] = None,
    agents: Annotated[Path | None, typer.Option("--agents", help="CSV of call,agent rows.")] = None,
    agent_pattern: Annotated[
        str | None, typer.Option("--agent-pattern", help=r"Regex on file names, e.g. '(?P<agent>A\d+)_'.")
    ] = None,
    top: Annotated[int, typer.Option(help="Keywords and phrases kept per role.")] = 20,
    title: Annotated[str, typer.Option(help="Report title.")] = "Call insights",
) -> None:
    """Keywords, rule pass rates, scores, complaints by topic and per-agent figures as CSV, XLSX and HTML."""
    from callscribe.outputs.report import write_report
    from callscribe.qa.insights import compute_insights, load_calls
    from callscribe.qa.insights_export import write_tables

    try:
        calls, errors = load_calls(out_dir, agents=agents, agent_pattern=agent_pattern)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for e in errors:
        typer.echo(f"skipped: {e}", err=True)
    if not calls:
        typer.echo(f"error: {out_dir}: no transcripts found", err=True)
        raise typer.Exit(1)
    result = compute_insights(calls, top_n=top, errors=errors)
    target = out or out_dir / INSIGHTS_DIR
    write_tables(result, target)
    report = write_report(result, target / REPORT_NAME, title)
    s = result.summary
    score = "n/a" if s.mean_score_pct is None else f"{s.mean_score_pct:.1f}%"
    typer.echo(
        f"{s.calls} calls ({s.calls_with_qa} with QA), mean score {score}, {s.needs_review} need review, "
        f"{s.complaints} complaints in {s.calls_with_complaints} calls, {s.agents} agents"
    )
    typer.echo(f"report: {report}")
    if errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``redact`` and ``insights`` to the main command."""
    app.command("redact")(redact)
    app.command("insights")(insights)
