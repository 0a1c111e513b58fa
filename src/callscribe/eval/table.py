"""Terminal view of an evaluation report (rich)."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from callscribe.eval.report import EvalReport, FileScore

OP_STYLES = {"substitute": "bold yellow", "delete": "bold red", "insert": "bold green"}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _file_row(f: FileScore) -> list[str]:
    t, d, h = f.text, f.diarization, f.hotwords
    name = f.id + (" (missing)" if f.missing else "")
    return [
        name,
        t.metric.upper() if t else "-",
        _pct(t.rate) if t else "-",
        f"{t.substitutions}/{t.deletions}/{t.insertions}/{t.ref_tokens}" if t else "-",
        _pct(d.der) if d else "-",
        _pct(d.jer) if d else "-",
        f"{d.confusion:.1f}/{d.missed:.1f}/{d.false_alarm:.1f}" if d else "-",
        f"{h.found}/{h.in_ref}" if h and h.in_ref else "-",
    ]


def report_table(report: EvalReport) -> Table:
    """Per-file rows and a corpus total row."""
    table = Table(title="callscribe eval", show_footer=False)
    for name, justify in (
        ("file", "left"),
        ("metric", "left"),
        ("error", "right"),
        ("S/D/I/N", "right"),
        ("DER", "right"),
        ("JER", "right"),
        ("conf/miss/FA s", "right"),
        ("hotwords", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for f in report.files:
        table.add_row(*_file_row(f))
    tot = report.total
    c, d, h = tot.text, tot.diarization, tot.hotwords
    rates = ", ".join(f"{m.upper()} {_pct(getattr(tot, m))}" for m in ("cer", "wer", "mer"))
    table.add_section()
    table.add_row(
        f"total ({tot.files} files)",
        "",
        rates,
        f"{c.substitutions}/{c.deletions}/{c.insertions}/{c.ref_tokens}",
        _pct(tot.der),
        _pct(tot.jer),
        f"{d.confusion:.1f}/{d.missed:.1f}/{d.false_alarm:.1f}" if d.total else "-",
        f"{h.found}/{h.in_ref} {_pct(h.recall)}" if h and h.in_ref else "-",
        style="bold",
    )
    return table


def alignment_text(f: FileScore) -> Text:
    """REF and HYP lines of one file with the errors coloured (S yellow, D red, I green)."""
    ref, hyp = Text("REF: "), Text("HYP: ")
    sep = "" if f.text is None or f.text.metric == "cer" else " "
    for op in f.text.alignment if f.text else ():
        style = OP_STYLES.get(op.op, "")
        r = op.ref or "*" * cell_len(op.hyp)
        h = op.hyp or "*" * cell_len(op.ref)
        width = max(cell_len(r), cell_len(h))
        ref.append(r + " " * (width - cell_len(r)) + sep, style=style)
        hyp.append(h + " " * (width - cell_len(h)) + sep, style=style)
    return Text.assemble(Text(f"{f.id}\n", style="bold"), ref, "\n", hyp)


def render(report: EvalReport, console: Console, *, align: bool = False) -> None:
    """Print the table, and with ``align`` the aligned errors of every file that has any."""
    console.print(report_table(report))
    if align:
        for f in report.files:
            if f.text is not None and f.text.errors:
                console.print(alignment_text(f))
    if report.unmatched_hypotheses:
        console.print(f"{len(report.unmatched_hypotheses)} hypothesis file(s) had no reference")
