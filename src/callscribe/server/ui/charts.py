"""Inline SVG charts for the desk pages (no scripts, nothing fetched)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

PARTY_COLOURS = {"customer": "#dc2626", "agent": "#2563eb"}
OTHER_COLOUR = "#6b7280"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def sentiment_svg(points: Sequence[dict[str, Any]], duration: float, labels: dict[str, str], *, width: int = 400,
                  height: int = 140) -> str:  # fmt: skip
    """Sentiment (-1..1) of each utterance over the call: a line per party, a dot per utterance (``data-seek``: the
    call page's script jumps there on click). Drawn at about the QA column's width, so its labels are not scaled
    down below legibility."""
    left, right, top, bottom = 34, 8, 18, 22
    w, h = width - left - right, height - top - bottom
    span = max(duration, 1e-6)

    def x(t: float) -> float:
        return left + w * min(max(t / span, 0.0), 1.0)

    def y(v: float) -> float:
        return top + h * (1 - (min(max(v, -1.0), 1.0) + 1) / 2)

    body = []
    for v, name in ((1, "+1"), (0, "0"), (-1, "-1")):
        body.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>')
        body.append(f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{name}</text>')
    for frac in (0.0, 0.5, 1.0):
        body.append(f'<text x="{x(span * frac):.1f}" y="{height - 6}" text-anchor="middle" font-size="11">'
                    f"{clock(span * frac)}</text>")  # fmt: skip
    parties = sorted({p["party"] for p in points}, key=lambda p: (p != "customer", p))
    for party in parties:
        mine = sorted((p for p in points if p["party"] == party), key=lambda p: p["t"])
        colour = PARTY_COLOURS.get(party, OTHER_COLOUR)
        if len(mine) > 1:
            path = " ".join(f"{x(p['t']):.1f},{y(p['score']):.1f}" for p in mine)
            width_px = 2 if party == "customer" else 1
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="{width_px}"/>')
        for p in mine:
            body.append(
                f'<circle class="seek" data-seek="{p["t"]:.3f}" cx="{x(p["t"]):.1f}" cy="{y(p["score"]):.1f}" r="3.5" '
                f'fill="{colour}"><title>{_e(labels.get(party, party))} {clock(p["t"])}: {p["score"]:+.2f}</title>'
                "</circle>"
            )
    legend_x = left + w
    for party in reversed(parties):  # top right, right-aligned
        colour = PARTY_COLOURS.get(party, OTHER_COLOUR)
        name = labels.get(party, party)
        legend_x -= 20 + 12 * len(name)
        body.append(f'<rect x="{legend_x}" y="{top - 8}" width="10" height="10" fill="{colour}"/>')
        body.append(f'<text x="{legend_x + 14}" y="{top + 1}" font-size="12">{_e(name)}</text>')
    if not points:
        body.append(f'<text x="{left + w / 2:.1f}" y="{top + h / 2:.1f}" text-anchor="middle" font-size="12" '
                    f'fill="#6b7280">{_e(labels.get("none", "-"))}</text>')  # fmt: skip
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{_e(labels.get("title", "sentiment"))}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg>"
    )
