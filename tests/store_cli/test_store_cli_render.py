"""The agents report's renderers: the HTML page's inline chart and table, and the workbook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callscribe.report_agents import AgentRow, chart_svg, render_html, sheet_rows, write_xlsx

ROWS = [
    AgentRow("A01", "2024-05", 3, 3, 1, 80.0, {"greeting": 1 / 3, "closing": 0.0}, 0.6, 0.25),
    AgentRow("A01", "2024-06", 1, 0, 0, None, {}, None, None),
    AgentRow("<b>B&2</b>", "2024-05", 2, 2, 0, 55.5, {"closing": 0.5}, 0.4, -0.5),
]


def test_chart_has_a_bar_per_scored_agent_period_and_a_legend() -> None:
    svg = chart_svg(ROWS)
    bars = re.findall(
        r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="(#[0-9a-f]{6})"><title>', svg
    )
    assert len(bars) == 2  # the period without a score draws no bar
    heights = sorted(float(h) for h, _ in bars)
    assert heights[1] / heights[0] == pytest.approx(80.0 / 55.5, rel=1e-2)
    assert len({colour for _, colour in bars}) == 2
    assert "&lt;b&gt;B&amp;2&lt;/b&gt;" in svg and "<b>" not in svg


def test_page_is_self_contained_and_lists_every_row() -> None:
    page = render_html(ROWS, "month", "Agents <May>")
    assert "<svg" in page and "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert page.count("<tr>") == len(ROWS) + 1
    assert "greeting 33%" in page and "Agents &lt;May&gt;" in page


def test_workbook_has_one_column_per_rule(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    header, _ = sheet_rows(ROWS, "month")
    assert header[-2:] == ["failed: closing", "failed: greeting"]
    path = write_xlsx(ROWS, tmp_path / "r.xlsx", "month")
    ws = openpyxl.load_workbook(path).active
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0] == header and len(values) == len(ROWS) + 1
    assert values[1][:3] == ["A01", "2024-05", 3] and values[1][-1] == pytest.approx(1 / 3)
