"""``callscribe redact`` (PII out of plain text) and ``callscribe insights`` (figures across a folder of calls)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from callscribe.qa.insights import CallData

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
    out_dir: Annotated[
        Path | None, typer.Argument(help="Folder with <stem>.json transcripts (and <stem>.qa.json); or use --db.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write; default OUT_DIR/insights (with --db: ./insights).")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Read the calls from this call store (database URL) instead of OUT_DIR.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="With --db: calls at or after this date/time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="With --db: calls before this date/time.")] = None,
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

    if (out_dir is None) == (db is None):
        typer.echo("error: give a folder of transcripts (OUT_DIR) or --db URL, one of the two", err=True)
        raise typer.Exit(2)
    try:
        if db is not None:
            calls, errors = _store_calls(db, since, until, agents, agent_pattern)
        else:
            assert out_dir is not None
            calls, errors = load_calls(out_dir, agents=agents, agent_pattern=agent_pattern)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    source = db or out_dir
    for e in errors:
        typer.echo(f"skipped: {e}", err=True)
    if not calls:
        typer.echo(f"error: {source}: no transcripts found", err=True)
        raise typer.Exit(1)
    result = compute_insights(calls, top_n=top, errors=errors)
    target = out or (out_dir / INSIGHTS_DIR if out_dir is not None else Path(INSIGHTS_DIR))
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


def _store_calls(
    db: str, since: str | None, until: str | None, agents: Path | None, agent_pattern: str | None
) -> tuple[list[CallData], list[str]]:
    """The calls of the store as :func:`~callscribe.qa.insights.load_calls` gives them from a folder: the stored
    QA result, or QA run now where none is stored; the stored agent id, else the agent list or pattern."""
    import re

    from callscribe.cli_store import open_store, parse_bound
    from callscribe.model import QAResult, Transcript
    from callscribe.qa.insights import CallData, _agent_of, _run_qa, read_agent_map

    lo, hi = parse_bound(since, "--since"), parse_bound(until, "--until", end=True)
    agent_map = read_agent_map(agents) if agents else None
    try:
        pattern = re.compile(agent_pattern) if agent_pattern else None
    except re.error as exc:
        raise ValueError(f"--agent-pattern {agent_pattern!r}: {exc}") from exc
    run_qa = _run_qa()
    calls: list[CallData] = []
    errors: list[str] = []
    store = open_store(db)
    try:
        for summary in store.calls(since=lo, until=hi, order_by="call_time", limit=None):
            record = store.call(summary.id)
            if record is None:  # deleted since it was listed
                continue
            where = f"{store.display_url} call {summary.id} ({summary.source})"
            try:
                t = Transcript.from_dict(record.transcript)
                qa = QAResult.from_dict(record.qa) if record.qa is not None else None
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                errors.append(f"{where}: not readable ({type(exc).__name__}: {exc})")
                continue
            if qa is None and run_qa is not None:
                try:
                    qa = run_qa(t)
                except Exception as exc:  # one bad call must not stop the report
                    errors.append(f"{where}: QA failed ({type(exc).__name__}: {exc})")
            agent = summary.agent_id or _agent_of(summary.name, t, agent_map, pattern)
            calls.append(CallData(summary.name, t, qa, agent))
    finally:
        store.close()
    return calls, errors


def register(app: typer.Typer) -> None:
    """Add ``redact`` and ``insights`` to the main command."""
    app.command("redact")(redact)
    app.command("insights")(insights)
