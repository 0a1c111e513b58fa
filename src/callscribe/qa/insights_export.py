"""Write :class:`~callscribe.qa.insights.Insights` as CSV files and one XLSX workbook (openpyxl), atomically."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from callscribe.qa.insights import (
    AgentRow,
    CallRow,
    HistogramBin,
    Insights,
    RuleRate,
    TopicRow,
    TrajectoryPoint,
)
from callscribe.qa.mining import Keyword

log = logging.getLogger("callscribe")

WORKBOOK_NAME = "insights.xlsx"
_HEADER_FILL = "DDE7F5"


def tables(ins: Insights) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Every table by name: (column names, rows)."""
    out: dict[str, tuple[list[str], list[list[Any]]]] = {
        "summary": (["figure", "value"], [[k, v] for k, v in dataclasses.asdict(ins.summary).items()]),
    }
    for name, rows, cls in (
        ("calls", ins.calls, CallRow),
        ("rules", ins.rules, RuleRate),
        ("score_histogram", ins.histogram, HistogramBin),
        ("review", ins.review, CallRow),
        ("topics", ins.topics, TopicRow),
        ("agents", ins.agents, AgentRow),
        ("sentiment_trajectory", ins.trajectory, TrajectoryPoint),
        ("keywords", ins.keywords, Keyword),
    ):
        out[name] = _rows(rows, cls)
    return out


def _rows(rows: Sequence[Any], cls: type) -> tuple[list[str], list[list[Any]]]:
    names = [f.name for f in dataclasses.fields(cls)]
    return names, [[_cell(getattr(r, n)) for n in names] for r in rows]


def _cell(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return " | ".join(str(v) for v in value)
    return value


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_csv(ins: Insights, out_dir: str | Path) -> list[Path]:
    """One UTF-8 CSV per table (with a byte-order mark so spreadsheet programs read Chinese right)."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (header, rows) in tables(ins).items():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
        path = folder / f"{name}.csv"
        _atomic_write(path, buf.getvalue().encode("utf-8-sig"))
        written.append(path)
    return written


def write_xlsx(ins: Insights, path: str | Path) -> Path:
    """All tables as sheets of one workbook, headers bold, columns sized to their content."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    wb.remove(wb.active)
    for name, (header, rows) in tables(ins).items():
        ws = wb.create_sheet(title=name[:31])
        ws.append(header)
        for row in rows:
            ws.append(row)
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor=_HEADER_FILL)
        ws.freeze_panes = "A2"
        for column in ws.columns:
            width = max((len(str(c.value)) for c in column if c.value is not None), default=8)
            ws.column_dimensions[column[0].column_letter].width = min(60, max(8, width + 2))
    buf = io.BytesIO()
    wb.save(buf)
    _atomic_write(target, buf.getvalue())
    return target


def write_tables(ins: Insights, out_dir: str | Path) -> list[Path]:
    """CSV files plus ``insights.xlsx`` in ``out_dir``."""
    written = write_csv(ins, out_dir)
    written.append(write_xlsx(ins, Path(out_dir) / WORKBOOK_NAME))
    log.info("wrote %d table file(s) to %s", len(written), out_dir)
    return written
