"""The ``callscribe eval`` command, added to the main typer app by :func:`register`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

logger = logging.getLogger("callscribe")


def eval_command(
    ref: Annotated[
        Path,
        typer.Option(
            "--ref",
            help="References: a manifest JSONL, a folder of <stem>.txt files, or a Kaldi 'text' file.",
        ),
    ],
    hyp: Annotated[
        Path,
        typer.Option("--hyp", help="Folder of callscribe transcripts (<stem>.json) or plain <stem>.txt files."),
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the scores as JSON to this file.")] = None,
    normalize: Annotated[
        bool,
        typer.Option("--normalize/--no-normalize", help="Normalise both texts before scoring (docs/eval.md)."),
    ] = True,
    fillers: Annotated[
        bool,
        typer.Option(
            "--fillers/--keep-fillers",
            help="--fillers drops filler words (嗯/啊/呃/额, um/uh/er/hmm) before scoring; kept by default.",
        ),
    ] = False,
    align: Annotated[bool, typer.Option("--align", help="Show the aligned errors of every file.")] = False,
    rttm_dir: Annotated[
        Path | None,
        typer.Option("--rttm-dir", help="Folder of <stem>.rttm reference speaker turns for DER/JER."),
    ] = None,
    glossary: Annotated[
        Path | None,
        typer.Option("--glossary", help="Terms for hotword recall, one a line ('wrong => right' scores right)."),
    ] = None,
    skip_missing: Annotated[
        bool,
        typer.Option("--skip-missing", help="Leave out references with no hypothesis instead of scoring them."),
    ] = False,
) -> None:
    """Score transcripts against references: CER/WER/mixed error rate, DER/JER and hotword recall."""
    from rich.console import Console

    from callscribe.eval.normalize import Normalizer
    from callscribe.eval.refs import EvalInputError
    from callscribe.eval.report import score_dir, write_json
    from callscribe.eval.table import render

    normalizer: Normalizer | bool = Normalizer.default(drop_fillers=fillers) if normalize else False
    if fillers and not normalize:
        normalizer = Normalizer(("fillers",))
    try:
        report = score_dir(
            ref,
            hyp,
            normalize=normalizer,
            align=align,
            rttm_dir=rttm_dir,
            glossary=glossary,
            count_missing=not skip_missing,
        )
    except EvalInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    render(report, Console(), align=align)
    if json_out is not None:
        write_json(report, json_out)
        logger.info("wrote %s", json_out)


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to the main callscribe app."""
    app.command("eval")(eval_command)
