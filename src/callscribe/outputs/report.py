"""One self-contained HTML report of :class:`~callscribe.qa.insights.Insights`, with inline SVG charts.

The charts are drawn here in Python as SVG (no JavaScript, no fonts or styles fetched from anywhere), so the
file opens the same offline, in a mail client or from a shared drive. Each chart has its own colour (see the
``*_COLOUR`` constants), which also lets tests find the charts in a screenshot.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from string import Template

from callscribe.qa.insights import Insights

log = logging.getLogger("callscribe")

TEMPLATE = "report.html"
HISTOGRAM_COLOUR = "#2563eb"
PASS_COLOUR = "#16a34a"
FAIL_COLOUR = "#fecaca"
TOPIC_COLOUR = "#f59e0b"
TRAJECTORY_COLOUR = "#7c3aed"
GRID_COLOUR = "#e5e7eb"
CHART_W = 560
MAX_BARS = 12  # rules and topics shown in a bar chart; the CSV/XLSX have all of them
MAX_KEYWORDS = 15


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(label)}" xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def histogram_svg(bins: Sequence[tuple[str, int]], colour: str = HISTOGRAM_COLOUR) -> str:
    """Vertical bars: one per bin, count on top, label below."""
    if not any(n for _, n in bins):
        return '<p class="empty">No scored calls.</p>'
    height, top, bottom, left = 260, 20, 36, 36
    plot_h = height - top - bottom
    step = (CHART_W - left) // len(bins)
    peak = max(n for _, n in bins)
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{CHART_W}" y2="{height - bottom}" stroke="#9ca3af"/>']
    for k, (label, n) in enumerate(bins):
        x = left + k * step + 4
        h = round(plot_h * n / peak) if peak else 0
        y = height - bottom - h
        if h:
            body.append(f'<rect x="{x}" y="{y}" width="{step - 8}" height="{h}" fill="{colour}"/>')
        mid = x + (step - 8) / 2
        body.append(f'<text x="{mid:.0f}" y="{y - 5}" font-size="12" text-anchor="middle">{n}</text>')
        body.append(
            f'<text x="{mid:.0f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle">{_e(label)}</text>'
        )
    body.append(f'<text x="{left}" y="{height - 4}" font-size="11" fill="#6b7280">score %, calls per bin</text>')
    return _svg(CHART_W, height, body, "score histogram")


def hbar_svg(items: Sequence[tuple[str, float, str]], colour: str, *, scale: float, rest: str | None = None) -> str:
    """Horizontal bars: (label, value, text shown after the bar); ``rest`` fills the remainder up to ``scale``."""
    if not items:
        return '<p class="empty">Nothing to show.</p>'
    row, label_w, text_w = 28, 210, 70
    bar_w = CHART_W - label_w - text_w
    height = row * len(items) + 8
    body: list[str] = []
    for k, (label, value, text) in enumerate(items):
        y = 4 + k * row
        w = round(bar_w * min(value, scale) / scale) if scale else 0
        short = label if len(label) <= 30 else label[:29] + "…"
        body.append(f'<text x="0" y="{y + 17}" font-size="12"><title>{_e(label)}</title>{_e(short)}</text>')
        if rest is not None:
            body.append(f'<rect x="{label_w}" y="{y + 4}" width="{bar_w}" height="{row - 10}" fill="{rest}"/>')
        if w:
            body.append(f'<rect x="{label_w}" y="{y + 4}" width="{w}" height="{row - 10}" fill="{colour}"/>')
        body.append(f'<text x="{label_w + bar_w + 6}" y="{y + 17}" font-size="12">{_e(text)}</text>')
    return _svg(CHART_W, height, body, "bar chart")


def line_svg(points: Sequence[tuple[str, float | None]], colour: str = TRAJECTORY_COLOUR) -> str:
    """A line over [-1, 1] with square markers, a zero line and the value at each point."""
    known = [(k, v) for k, (_, v) in enumerate(points) if v is not None]
    if not known:
        return '<p class="empty">No sentiment scores in these calls.</p>'
    height, top, bottom, left, right = 260, 24, 36, 40, 30
    plot_h = height - top - bottom
    step = (CHART_W - left - right) / max(len(points) - 1, 1)

    def y_of(v: float) -> float:
        return top + plot_h * (1 - (max(-1.0, min(1.0, v)) + 1) / 2)

    body = []
    for v, name in ((1.0, "+1"), (0.0, "0"), (-1.0, "-1")):
        y = y_of(v)
        dash = "" if v == 0 else ' stroke-dasharray="4 4"'
        body.append(f'<line x1="{left}" y1="{y:.0f}" x2="{CHART_W - right}" y2="{y:.0f}" stroke="#9ca3af"{dash}/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.0f}" font-size="11" text-anchor="end">{name}</text>')
    coords = [(left + k * step, y_of(v)) for k, v in known]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="3"/>')
    for (x, y), (_, v) in zip(coords, known, strict=True):
        body.append(f'<rect x="{x - 6:.0f}" y="{y - 6:.0f}" width="12" height="12" fill="{colour}"/>')
        body.append(f'<text x="{x:.0f}" y="{y - 10:.0f}" font-size="11" text-anchor="middle">{v:+.2f}</text>')
    for k, (label, _) in enumerate(points):
        x = left + k * step
        body.append(f'<text x="{x:.0f}" y="{height - 14}" font-size="11" text-anchor="middle">{_e(label)}</text>')
    return _svg(CHART_W, height, body, "customer sentiment trajectory")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int] | None = None) -> str:
    if not rows:
        return '<p class="empty">None.</p>'
    numeric = numeric or set()
    head = "".join(f"<th{' class=num' if k in numeric else ''}>{_e(h)}</th>" for k, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if k in numeric else ''}>{'' if v is None else _e(v)}</td>" for k, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cards(ins: Insights) -> str:
    s = ins.summary
    score = "–" if s.mean_score_pct is None else f"{s.mean_score_pct:.0f}%"
    items = [
        ("Calls", s.calls),
        ("Hours", f"{s.hours:.1f}"),
        ("Mean score", score),
        ("Need review", s.needs_review),
        ("Complaints", s.complaints),
        ("Agents", s.agents),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{_e(v)}</div><div class="label">{k}</div></div>' for k, v in items
        )
        + "</div>"
    )


def _keywords(ins: Insights) -> str:
    roles = sorted({k.role for k in ins.keywords})
    if not roles:
        return '<p class="empty">No text.</p>'
    parts = []
    for role in roles:
        words = [k for k in ins.keywords if k.role == role and k.kind == "word"][:MAX_KEYWORDS]
        phrases = [k for k in ins.keywords if k.role == role and k.kind == "phrase"][:MAX_KEYWORDS]
        parts.append(
            f"<div><h2>{_e(role)}</h2>"
            + _table(["keyword", "TF-IDF", "calls"], [(k.term, f"{k.score:.3f}", k.calls) for k in words], {1, 2})
            + "<br>"
            + _table(["phrase", "calls", "times"], [(k.term, k.calls, k.count) for k in phrases], {1, 2})
            + "</div>"
        )
    return '<div class="grid">' + "".join(parts) + "</div>"


def render_report(ins: Insights, title: str = "Call insights") -> str:
    """The report as one HTML string."""
    template = Template(resources.files("callscribe.outputs").joinpath(TEMPLATE).read_text(encoding="utf-8"))
    s = ins.summary
    rules = [(r.rule, r.pass_rate, f"{100 * r.pass_rate:.0f}% of {r.calls}") for r in ins.rules[:MAX_BARS]]
    topics = [(t.label, float(t.complaints), f"{t.complaints} in {t.calls}") for t in ins.topics[:MAX_BARS]]
    peak = max((t[1] for t in topics), default=1.0)
    agents = _table(
        ["agent", "calls", "mean score %", "need review", "complaints", "negative endings", "mean length s"],
        [
            (a.agent, a.calls, a.mean_score_pct, a.needs_review, a.complaints, a.negative_endings, a.mean_duration_s)
            for a in ins.agents
        ],
        {1, 2, 3, 4, 5, 6},
    )
    review = _table(
        ["call", "agent", "score %", "reasons"],
        [
            (c.call, c.agent, c.score_pct, c.review_reasons or "flagged by a rule")
            for c in sorted(ins.review, key=lambda c: (c.score_pct if c.score_pct is not None else 101, c.call))
        ],
        {2},
    )
    errors = ""
    if ins.errors:
        errors = '<section class="panel wide"><h2>Files skipped</h2><ul>' + "".join(
            f"<li>{_e(e)}</li>" for e in ins.errors
        )
        errors += "</ul></section>"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return template.substitute(
        title=_e(title),
        subtitle=_e(f"{s.calls} calls, {s.calls_with_qa} with quality checks · made {stamp}"),
        cards=_cards(ins),
        histogram=histogram_svg([(f"{b.low:.0f}-{b.high:.0f}", b.calls) for b in ins.histogram]),
        rules=hbar_svg(rules, PASS_COLOUR, scale=1.0, rest=FAIL_COLOUR) if rules else '<p class="empty">No QA.</p>',
        topics=hbar_svg(topics, TOPIC_COLOUR, scale=peak) if topics else '<p class="empty">No complaints.</p>',
        trajectory=line_svg([(p.position, p.mean_sentiment) for p in ins.trajectory]),
        agents=agents if ins.agents else '<p class="empty">No agent ids (use --agents or --agent-pattern).</p>',
        review=review,
        keywords=_keywords(ins),
        errors=errors,
        calls=s.calls,
    )


def write_report(ins: Insights, path: str | Path, title: str = "Call insights") -> Path:
    """Write the report atomically (temporary file, then rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(render_report(ins, title), encoding="utf-8")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    log.info("wrote report %s", target)
    return target
