"""The call store from the command line: ``index``, ``search``, ``report agents`` and ``db upgrade``.

Every command opens the database first (``--db URL`` or ``$CALLSCRIBE_DB``): a wrong URL, an unreachable server, a
locked SQLite file or a schema newer than this callscribe is one line and exit status 2, before any other work.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from callscribe.callmeta import MetadataError, MetadataSource, parse_time

if TYPE_CHECKING:
    from collections.abc import Iterator

    from callscribe.model import QAResult, Transcript
    from callscribe.store import SearchHit, Store
    from callscribe.store.bulk import NewCall

log = logging.getLogger("callscribe")
err = Console(stderr=True)
out = Console()

DB_HELP = "Database URL, e.g. sqlite:///calls.db or postgresql+psycopg://user@host/db (default: $CALLSCRIBE_DB)."
DbOption = Annotated[str | None, typer.Option("--db", envvar="CALLSCRIBE_DB", help=DB_HELP, show_envvar=False)]
MetadataOption = Annotated[
    Path | None,
    typer.Option("--metadata", help="CSV of call metadata: file, agent_id, call_time (ISO 8601), queue, more..."),
]
PatternOption = Annotated[
    str | None,
    typer.Option(
        "--name-pattern", help="Metadata from file names, e.g. '{agent_id}_{call_time:%Y%m%d-%H%M%S}_{queue}'."
    ),
]
HIGHLIGHT = "bold yellow"
MARKS = ("\x02", "\x03")  # matches in table snippets (brackets could be in the text, e.g. a redaction mask)


class Role(str, Enum):
    agent = "agent"
    customer = "customer"


class Mood(str, Enum):
    """The customer moods the store keeps (:data:`callscribe.store.moods.MOODS`)."""

    negative = "negative"
    neutral = "neutral"
    positive = "positive"
    unknown = "unknown"


class Period(str, Enum):
    week = "week"
    month = "month"


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def open_store(url: str | None) -> Store:
    """Open and check the store (before any other work); a problem is one line and exit 2."""
    from callscribe.store import Store, StoreError

    if not url:
        raise fail("no database: give --db URL or set CALLSCRIBE_DB")
    try:
        return Store(url)
    except StoreError as exc:
        raise fail(one_line(exc)) from None


def load_metadata(csv_path: Path | None, pattern: str | None) -> MetadataSource:
    """The ``--metadata`` CSV and ``--name-pattern``, checked; every bad row is one line, then exit 2."""
    try:
        return MetadataSource.load(csv_path, pattern)
    except MetadataError as exc:
        for line in str(exc).splitlines():
            err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def parse_bound(value: str | None, flag: str, *, end: bool = False) -> datetime | None:
    """``--since``/``--until``: an ISO 8601 date or date-time (naive: UTC). ``--until`` is exclusive, except that a
    bare date takes that whole day."""
    if value is None:
        return None
    try:
        when = parse_time(value)
    except ValueError:
        raise fail(
            f"{flag} {value!r}: not an ISO 8601 date or date-time (e.g. 2024-05-01 or 2024-05-01T09:00)"
        ) from None
    if end and len(value.strip()) <= len("2024-05-01"):  # a bare date: that whole day (the store's until is exclusive)
        when = datetime.combine(when.date() + timedelta(days=1), time(), when.tzinfo)
    return when


# -- index ----------------------------------------------------------------------------------------------------
def index_command(
    out_dir: Annotated[Path, typer.Argument(help="Output folder of transcribe: <stem>.json and <stem>.qa.json.")],
    db: DbOption = None,
    metadata: MetadataOption = None,
    name_pattern: PatternOption = None,
) -> None:
    """Put the transcripts (and QA results) already in OUT_DIR into the call store; safe to run again."""
    from callscribe.batch_db import StoreSink
    from callscribe.qa.cli import transcript_files

    meta = load_metadata(metadata, name_pattern)
    store = open_store(db)
    if not out_dir.is_dir():
        raise fail(f"{out_dir}: not a folder")
    files = [p for p in transcript_files(out_dir) if not p.name.startswith(".")]
    sink = StoreSink(store, meta)
    bad = 0
    stored: list[Path] = []  # the files given to the store, in order

    def calls() -> Iterator[NewCall]:
        nonlocal bad
        for path in files:
            t, qa, problems = _read_one(path, out_dir)
            bad += problems
            if t is not None:
                stored.append(path)
                yield sink.new_call(t, qa)

    try:  # batches of calls per transaction; PostgreSQL commits without waiting for the disk (a re-run restores)
        for added in store.add_many(calls(), durable=False):
            sink.count(added)
            if added.error is not None:
                bad += _bad("not stored", f"{stored[added.index]}: {added.error}")
    finally:
        store.close()
    updated = sink.added - sink.new
    err.print(
        f"indexed {sink.added} of {len(files)} transcripts from {escape(str(out_dir))} "
        f"({sink.new} new, {updated} updated), {bad} bad file(s)",
        highlight=False,
        soft_wrap=True,
    )
    if bad:
        raise typer.Exit(1)


def _bad(kind: str, message: str) -> int:
    err.print(f"[red]{kind}:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return 1


def _read_one(path: Path, out_dir: Path) -> tuple[Transcript | None, QAResult | None, int]:
    """A transcript file with its QA result: (transcript or None, QA or None, bad files met, each named in one
    line)."""
    from callscribe.batch_db import qa_file, read_qa
    from callscribe.model import Transcript

    try:
        t = Transcript.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, None, _bad("skipped", f"{path}: cannot read ({exc.strerror or exc})")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, None, _bad("skipped", f"{path}: not a transcript ({one_line(exc)})")
    qa_path = qa_file(out_dir, path.name[: -len(".json")])
    if qa_path.is_file():
        try:
            return t, read_qa(qa_path), 0
        except ValueError as exc:
            return t, None, _bad("no QA", f"{exc}; the call is stored without it")
    return t, None, 0


# -- search ---------------------------------------------------------------------------------------------------
def mmss(seconds: float) -> str:
    whole = int(max(0.0, seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def highlighted(snippet: str) -> Text:
    """A snippet marked with :data:`MARKS` as text with the matches highlighted."""
    text = Text()
    for i, part in enumerate(snippet.replace(MARKS[1], MARKS[0]).split(MARKS[0])):
        if i % 2 and not out.is_terminal:  # no colours where the output goes: mark the match [like this]
            part = f"[{part}]"
        text.append(part, style=HIGHLIGHT if i % 2 else "")
    return text


def hit_dict(hit: SearchHit) -> dict[str, Any]:
    data = dataclasses.asdict(hit)
    data["call_time"] = hit.call_time.isoformat() if hit.call_time else None
    return data


def search_command(
    query: Annotated[str, typer.Argument(help='Words to find; a -word or NOT word must not occur, "..." a phrase.')],
    db: DbOption = None,
    role: Annotated[Role | None, typer.Option("--role", help="Only what the agent or the customer said.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only calls of this agent id.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Calls at or after this date/time.")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Calls before this date/time (a date: to its end).")
    ] = None,
    rule_failed: Annotated[str | None, typer.Option("--rule-failed", help="Only calls that failed this rule.")] = None,
    needs_review: Annotated[bool, typer.Option("--needs-review", help="Only calls flagged for review.")] = False,
    sentiment: Annotated[
        Mood | None, typer.Option("--sentiment", help="Only calls whose customer mood is this.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most hits shown.")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object a line; matches marked [like this].")
    ] = False,
) -> None:
    """Find what was said in stored calls (Chinese split into words with jieba); exit 1 when nothing matches."""
    lo, hi = parse_bound(since, "--since"), parse_bound(until, "--until", end=True)
    store = open_store(db)
    from callscribe.store import StoreError

    try:
        hits = store.search(
            query, role=role.value if role else None, agent=agent, since=lo, until=hi, rule_failed=rule_failed,
            needs_review=True if needs_review else None, sentiment=sentiment.value if sentiment else None,
            limit=limit, **({} if as_json else {"marks": MARKS}),
        )  # fmt: skip
    except (StoreError, ValueError) as exc:
        raise fail(one_line(exc)) from None
    finally:
        store.close()
    if not hits:
        err.print(f"no calls match {query!r}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if as_json:
        for hit in hits:
            typer.echo(json.dumps(hit_dict(hit), ensure_ascii=False))
        return
    more = " (--limit reached)" if len(hits) >= limit else ""
    table = Table(title=f"{len(hits)} match(es) for {query!r} in {len({h.call_id for h in hits})} call(s){more}")
    table.add_column("call", overflow="fold")
    for col in ("call time", "agent", "at", "role"):
        table.add_column(col, no_wrap=col != "call time")
    table.add_column("said", overflow="fold", ratio=1)
    for h in hits:
        table.add_row(
            h.call_name or Path(h.source).name,
            h.call_time.strftime("%Y-%m-%d %H:%M") if h.call_time else "-",
            h.agent_id or "-",
            mmss(h.start),
            h.role or "-",
            highlighted(h.snippet),
        )
    out.print(table)


# -- report agents --------------------------------------------------------------------------------------------
def agents_command(
    db: DbOption = None,
    by: Annotated[Period, typer.Option("--by", help="Group by week or month.")] = Period.week,
    since: Annotated[str | None, typer.Option("--since", help="Calls at or after this date/time.")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Calls before this date/time (a date: to its end).")
    ] = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Also write the table as an XLSX workbook.")] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="Also write an HTML page with a chart.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per agent and period.")] = False,
) -> None:
    """Per agent and week/month: calls, mean score, failed-rule rates, talk ratio, customer sentiment."""
    from callscribe import report_agents as ra

    if xlsx is not None:
        from callscribe.extras import require

        require("openpyxl", "qa")
    lo, hi = parse_bound(since, "--since"), parse_bound(until, "--until", end=True)
    store = open_store(db)
    from callscribe.store import StoreError

    try:
        rows = ra.from_store(store.agent_report(by=by.value, since=lo, until=hi))
    except (StoreError, ValueError) as exc:
        raise fail(one_line(exc)) from None
    finally:
        store.close()
    if as_json:
        for r in rows:
            typer.echo(json.dumps(dataclasses.asdict(r), ensure_ascii=False))
    elif rows:
        out.print(ra.table(rows, by.value))
    else:
        err.print("no calls in this range", soft_wrap=True)
    try:
        if xlsx is not None:
            err.print(f"workbook: {escape(str(ra.write_xlsx(rows, xlsx, by.value)))}", highlight=False, soft_wrap=True)
        if html_path is not None:
            err.print(f"page: {escape(str(ra.write_html(rows, html_path, by.value)))}", highlight=False, soft_wrap=True)
    except OSError as exc:
        raise fail(f"{exc.filename or 'report'}: cannot write ({exc.strerror or exc})") from None


# -- db upgrade -----------------------------------------------------------------------------------------------
def upgrade_command(db: DbOption = None) -> None:
    """Create the call store's tables, or migrate them to this callscribe's schema."""
    from callscribe.store import StoreError

    store = open_store(db)
    try:
        before, now = store.upgrade()
    except StoreError as exc:
        raise fail(one_line(exc)) from None
    finally:
        store.close()
    if before == now:
        err.print(
            f"{escape(store.display_url)}: schema is up to date (revision {now})", highlight=False, soft_wrap=True
        )
    else:
        err.print(
            f"{escape(store.display_url)}: schema upgraded from {before or 'empty'} to {now}",
            highlight=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    """Add ``index``, ``search``, ``report agents`` and ``db upgrade`` to the main command."""
    app.command("index")(index_command)
    app.command("search")(search_command)
    report = typer.Typer(help="Reports from the call store.", no_args_is_help=True)
    report.command("agents")(agents_command)
    app.add_typer(report, name="report")
    database = typer.Typer(help="The call store's database.", no_args_is_help=True)
    database.command("upgrade")(upgrade_command)
    app.add_typer(database, name="db")
