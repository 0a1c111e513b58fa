"""``callscribe report agents``: per agent, per week or month — calls, mean score, failed-rule rates, talk ratio,
customer sentiment — as a terminal table, an XLSX workbook and a self-contained HTML page with an inline SVG chart.

The figures come from :meth:`callscribe.store.Store.agent_report`; this module only shapes and renders them.
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from callscribe.outputs.writers import atomic_write_text

if TYPE_CHECKING:
    from callscribe.store import AgentPeriod

CHART_W = 720
BAR_H = 220
PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c")
TOP_RULES = 3  # failed rules named per row in the table and the page; the workbook has every rule
UNKNOWN_AGENT = "(no agent)"


@dataclass(frozen=True)
class AgentRow:
    """One agent in one week or month, as shown."""

    agent: str
    period: str  # "2024-W18" or "2024-05"
    calls: int
    scored_calls: int  # calls with a QA result
    needs_review: int
    mean_score_pct: float | None
    failed_rules: dict[str, float] = field(default_factory=dict)  # rule -> failed / graded
    talk_ratio: float | None = None  # the agent's share of the talk time
    customer_sentiment: float | None = None  # mean customer sentiment, -1 .. 1


def from_store(rows: Iterable[AgentPeriod]) -> list[AgentRow]:
    """The store's report rows (already in agent, period order) as rows to show."""
    return [
        AgentRow(
            agent=r.agent_id if r.agent_id is not None else UNKNOWN_AGENT,
            period=r.period,
            calls=r.calls,
            scored_calls=r.scored_calls,
            needs_review=r.needs_review,
            mean_score_pct=r.mean_score_pct,
            failed_rules=dict(r.rule_fail_rates),
            talk_ratio=r.talk_ratio,
            customer_sentiment=r.customer_sentiment,
        )
        for r in rows
    ]


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _top_failed(row: AgentRow) -> str:
    worst = sorted(((rate, rule) for rule, rate in row.failed_rules.items() if rate > 0), reverse=True)[:TOP_RULES]
    return ", ".join(f"{rule} {rate:.0%}" for rate, rule in worst) or "-"


def table(rows: Sequence[AgentRow], by: str) -> Table:
    t = Table(title=f"Agents by {by}")
    t.add_column("agent", no_wrap=True)
    t.add_column(by, no_wrap=True)
    for name in ("calls", "with QA", "review", "score %", "agent talk", "customer mood"):
        t.add_column(name, justify="right")
    t.add_column("most failed rules", overflow="fold")
    for r in rows:
        t.add_row(r.agent, r.period, str(r.calls), str(r.scored_calls), str(r.needs_review),
                  _fmt(r.mean_score_pct, ".1f"), _fmt(r.talk_ratio, ".0%"), _fmt(r.customer_sentiment, "+.2f"),
                  _top_failed(r))  # fmt: skip
    return t


def rules_of(rows: Sequence[AgentRow]) -> list[str]:
    return sorted({rule for r in rows for rule in r.failed_rules})


def sheet_rows(rows: Sequence[AgentRow], by: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the workbook: one row per agent and period, one column per rule's failure rate."""
    rules = rules_of(rows)
    header = [
        "agent",
        by,
        "calls",
        "scored_calls",
        "needs_review",
        "mean_score_pct",
        "talk_ratio",
        "customer_sentiment",
    ]
    header += [f"failed: {rule}" for rule in rules]
    body = [
        [
            r.agent,
            r.period,
            r.calls,
            r.scored_calls,
            r.needs_review,
            r.mean_score_pct,
            r.talk_ratio,
            r.customer_sentiment,
        ]
        + [r.failed_rules.get(rule) for rule in rules]
        for r in rows
    ]
    return header, body


def write_xlsx(rows: Sequence[AgentRow], path: str | Path, by: str) -> Path:
    """One sheet, header bold and frozen, rates as percentages (needs openpyxl, the ``qa`` extra)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    header, body = sheet_rows(rows, by)
    wb = Workbook()
    ws = wb.active
    ws.title = f"agents by {by}"
    ws.append(header)
    for row in body:
        ws.append(row)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "C2"
    for col, name in enumerate(header, 1):
        if name == "talk_ratio" or name.startswith("failed: "):
            for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
                cell.number_format = "0%"
        elif name in ("mean_score_pct", "customer_sentiment"):
            for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
                cell.number_format = "0.00"
        letter = ws.cell(1, col).column_letter
        ws.column_dimensions[letter].width = min(40, max(10, len(name) + 2))
    buf = io.BytesIO()
    wb.save(buf)
    _atomic_write_bytes(target, buf.getvalue())
    return target


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def chart_svg(rows: Sequence[AgentRow]) -> str:
    """Grouped bars: mean score (0-100) per period, one bar per agent, one colour per agent, with a legend."""
    periods = sorted({r.period for r in rows})
    agents = sorted({r.agent for r in rows})
    colour = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(agents)}
    score = {(r.agent, r.period): r.mean_score_pct for r in rows}
    left, top, bottom = 40, 16, 40
    legend_h = 20 * ((len(agents) + 3) // 4)
    height = top + BAR_H + bottom + legend_h
    group_w = (CHART_W - left - 10) / max(1, len(periods))
    bar_w = max(2.0, min(28.0, (group_w - 12) / max(1, len(agents))))
    body = []
    for pct in (0, 25, 50, 75, 100):
        y = top + BAR_H * (1 - pct / 100)
        body.append(f'<line x1="{left}" x2="{CHART_W - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{pct}</text>')
    for g, period in enumerate(periods):
        x0 = left + g * group_w + (group_w - bar_w * len(agents)) / 2
        for i, agent in enumerate(agents):
            value = score.get((agent, period))
            if value is None:
                continue
            h = BAR_H * max(0.0, min(100.0, value)) / 100
            x = x0 + i * bar_w
            body.append(
                f'<rect x="{x:.1f}" y="{top + BAR_H - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                f'fill="{colour[agent]}"><title>{_e(agent)} {_e(period)}: {value:.1f}</title></rect>'
            )
        cx = left + (g + 0.5) * group_w
        body.append(
            f'<text x="{cx:.1f}" y="{top + BAR_H + 16}" text-anchor="middle" font-size="11">{_e(period)}</text>'
        )
    for i, agent in enumerate(agents):
        x, y = left + (i % 4) * 170, top + BAR_H + bottom + 20 * (i // 4)
        body.append(f'<rect x="{x}" y="{y}" width="12" height="12" fill="{colour[agent]}"/>')
        body.append(f'<text x="{x + 16}" y="{y + 10}" font-size="12">{_e(agent)}</text>')
    return (
        f'<svg viewBox="0 0 {CHART_W} {height}" width="{CHART_W}" height="{height}" role="img" '
        f'aria-label="mean score by agent and period" xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


_STYLE = (
    "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2rem;color:#111827}"
    "table{border-collapse:collapse;margin-top:1rem}th,td{border-bottom:1px solid #e5e7eb;padding:4px 10px;"
    "text-align:left}td.n{text-align:right}th{background:#f3f4f6}.muted{color:#6b7280}"
)


def render_html(rows: Sequence[AgentRow], by: str, title: str = "Agents") -> str:
    """A self-contained page (no scripts, nothing fetched): the chart, then the table."""
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = ["agent", by, "calls", "with QA", "to review", "mean score %", "talk ratio", "customer sentiment",
            "most failed rules"]  # fmt: skip
    lines = [
        "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>",
        *(
            f"<tr><td>{_e(r.agent)}</td><td>{_e(r.period)}</td><td class=n>{r.calls}</td>"
            f"<td class=n>{r.scored_calls}</td><td class=n>{r.needs_review}</td>"
            f"<td class=n>{_fmt(r.mean_score_pct, '.1f')}</td><td class=n>{_fmt(r.talk_ratio, '.0%')}</td>"
            f"<td class=n>{_fmt(r.customer_sentiment, '+.2f')}</td><td>{_e(_top_failed(r))}</td></tr>"
            for r in rows
        ),
    ]
    chart = chart_svg(rows) if rows else '<p class="muted">No calls in this range.</p>'
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>"
        f'<p class="muted">{sum(r.calls for r in rows)} calls, {len({r.agent for r in rows})} agents, by {by}; '
        f"made {made}</p><h2>Mean score (0-100)</h2>{chart}<h2>By agent and {by}</h2>"
        f"<table>{''.join(lines)}</table></body></html>\n"
    )


def write_html(rows: Sequence[AgentRow], path: str | Path, by: str, title: str = "Agents") -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, render_html(rows, by, title))
    return target
