"""Reading references and hypotheses for scoring, matched by the audio file's stem.

References come in three shapes: a manifest JSONL (one object per recording with ``file``, ``lang``, ``text``,
``rttm``, ``reference_quality``), a folder of ``<stem>.txt`` files, or a Kaldi ``text`` file
(``utt-id words...``). Hypotheses are an output folder of callscribe transcripts (``<stem>.json``) and/or plain
``<stem>.txt`` files from any system; a transcript JSON wins over a text file of the same stem.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from callscribe.model import Transcript

logger = logging.getLogger("callscribe")

MANIFEST_SUFFIXES = (".jsonl", ".json")
RTTM_SUFFIX = ".rttm"


class EvalInputError(ValueError):
    """A reference, hypothesis or glossary file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Reference:
    """What one recording should have produced: its text and/or its speaker turns."""

    id: str
    text: str | None = None
    lang: str | None = None
    rttm: Path | None = None
    quality: str | None = None


@dataclass(frozen=True)
class Hypothesis:
    """What a system produced for one recording."""

    id: str
    path: Path
    text: str
    transcript: Transcript | None = None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise EvalInputError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot be read ({exc.strerror})") from exc


def _is_manifest(path: Path, content: str) -> bool:
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return True
    first = next((line for line in content.splitlines() if line.strip()), "")
    return first.lstrip().startswith("{")


def read_manifest(path: Path) -> list[Reference]:
    """References from a manifest JSONL; ``rttm`` paths are relative to the manifest's folder."""
    refs = []
    for lineno, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not row.get("file"):
            raise EvalInputError(f"{path}:{lineno}: expected an object with a 'file' field")
        text = row.get("text")
        rttm = row.get("rttm")
        refs.append(
            Reference(
                id=Path(str(row["file"])).stem,
                text=str(text) if text is not None else None,
                lang=row.get("lang"),
                rttm=(path.parent / str(rttm)) if rttm else None,
                quality=row.get("reference_quality"),
            )
        )
    return refs


def read_kaldi_text(path: Path) -> list[Reference]:
    """References from a Kaldi ``text`` file: ``utt-id`` then the words, one utterance a line."""
    refs = []
    for line in _read_text(path).splitlines():
        parts = line.strip().split(maxsplit=1)
        if parts:
            refs.append(Reference(id=parts[0], text=parts[1] if len(parts) > 1 else ""))
    return refs


def read_text_dir(path: Path) -> list[Reference]:
    """References from a folder of ``<stem>.txt`` files, one per recording."""
    return [Reference(id=p.stem, text=_read_text(p).strip()) for p in sorted(path.glob("*.txt"))]


def load_references(path: str | Path, rttm_dir: str | Path | None = None) -> dict[str, Reference]:
    """References by recording id (file stem), from any of the three shapes, plus RTTMs from ``rttm_dir``.

    A reference without an RTTM gets ``rttm_dir/<id>.rttm`` when that exists; RTTM files with no text
    reference become diarization-only references.
    """
    path = Path(path)
    if path.is_dir():
        refs = read_text_dir(path)
    elif not path.exists():
        raise EvalInputError(f"{path}: no such reference file or folder")
    elif _is_manifest(path, _read_text(path)):
        refs = read_manifest(path)
    else:
        refs = read_kaldi_text(path)
    by_id: dict[str, Reference] = {}
    for ref in refs:
        if ref.id in by_id:
            raise EvalInputError(f"{path}: reference {ref.id!r} appears twice")
        by_id[ref.id] = ref
    if rttm_dir is not None:
        _add_rttms(by_id, Path(rttm_dir))
    if not by_id:
        raise EvalInputError(f"{path}: no references found")
    return by_id


def _add_rttms(by_id: dict[str, Reference], rttm_dir: Path) -> None:
    if not rttm_dir.is_dir():
        raise EvalInputError(f"{rttm_dir}: not a folder of RTTM files")
    for rttm in sorted(rttm_dir.glob(f"*{RTTM_SUFFIX}")):
        ref = by_id.get(rttm.stem)
        if ref is None:
            by_id[rttm.stem] = Reference(id=rttm.stem, rttm=rttm)
        elif ref.rttm is None:
            by_id[rttm.stem] = Reference(ref.id, ref.text, ref.lang, rttm, ref.quality)


def read_transcript(path: Path) -> Transcript | None:
    """A callscribe transcript JSON, or ``None`` for a JSON file that is not one (a QA result, a report)."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise EvalInputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not (isinstance(data, dict) and "call" in data and "utterances" in data):
        logger.debug("skipping %s: not a transcript", path)
        return None
    try:
        return Transcript.from_dict(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise EvalInputError(f"{path}: not a valid callscribe transcript ({exc})") from exc


def load_hypotheses(hyp_dir: str | Path) -> dict[str, Hypothesis]:
    """Hypotheses by recording id from a folder of transcript JSON and/or plain text files.

    A transcript is filed under the stem of its ``call.path`` and, when different, its own file stem.
    """
    hyp_dir = Path(hyp_dir)
    if not hyp_dir.is_dir():
        raise EvalInputError(f"{hyp_dir}: not a folder of hypotheses")
    by_id: dict[str, Hypothesis] = {}
    for path in sorted(hyp_dir.glob("*.txt")):
        by_id[path.stem] = Hypothesis(path.stem, path, _read_text(path).strip())
    from_json: dict[str, Hypothesis] = {}
    for path in sorted(hyp_dir.glob("*.json")):
        transcript = read_transcript(path)
        if transcript is None:
            continue
        call_id = Path(transcript.call.path).stem if transcript.call.path else path.stem
        hyp = Hypothesis(call_id, path, transcript.text, transcript)
        from_json.setdefault(path.stem, hyp)
        from_json[call_id] = hyp
    by_id.update(from_json)
    return by_id
