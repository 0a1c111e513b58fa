"""Output writers looked up by name; each format is one small class with ``render(transcript) -> str``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from callscribe.model import Transcript, Utterance
from callscribe.outputs.rttm import write_rttm
from callscribe.speakers.stage import role_label


def party_label(u: Utterance, language: str | None) -> str:
    """How a line names its party: the role in the call's language, else the speaker, else the channel."""
    if u.role:
        return role_label(u.role, language)
    if u.speaker:
        return u.speaker
    return f"ch{u.channel}"


def clock(seconds: float, *, decimals: int = 1) -> str:
    """``mm:ss.d`` (``h:mm:ss.d`` from one hour on)."""
    total = max(0.0, seconds)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    width = 3 + decimals if decimals else 2
    secs = f"{s:0{width}.{decimals}f}"
    return f"{int(h)}:{int(m):02d}:{secs}" if h >= 1 else f"{int(m):02d}:{secs}"


def _subtitle_time(seconds: float, sep: str) -> str:
    ms = round(max(0.0, seconds) * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


class Writer(Protocol):
    suffix: str

    def render(self, t: Transcript) -> str: ...


class JsonWriter:
    suffix = ".json"

    def render(self, t: Transcript) -> str:
        return t.to_json() + "\n"


class TxtWriter:
    suffix = ".txt"

    def render(self, t: Transcript) -> str:
        lines = [
            f"[{clock(u.start)} → {clock(u.end)}] {party_label(u, u.language or t.language)}: {u.text}"
            for u in t.utterances
        ]
        if not lines:
            lines = [f"# {note}" for note in t.notes] or ["# no speech"]
        return "\n".join(lines) + "\n"


class SrtWriter:
    suffix = ".srt"

    def render(self, t: Transcript) -> str:
        blocks = []
        for n, u in enumerate(t.utterances, 1):
            span = f"{_subtitle_time(u.start, ',')} --> {_subtitle_time(u.end, ',')}"
            blocks.append(f"{n}\n{span}\n[{party_label(u, u.language or t.language)}] {u.text}\n")
        return "\n".join(blocks)


class VttWriter:
    suffix = ".vtt"

    def render(self, t: Transcript) -> str:
        blocks = ["WEBVTT\n"]
        for u in t.utterances:
            span = f"{_subtitle_time(u.start, '.')} --> {_subtitle_time(u.end, '.')}"
            voice = party_label(u, u.language or t.language).replace(">", "")
            blocks.append(f"{span}\n<v {voice}>{u.text}\n")
        return "\n".join(blocks)


class TsvWriter:
    suffix = ".tsv"
    header = ("start", "end", "channel", "speaker", "role", "text")

    def render(self, t: Transcript) -> str:
        rows = ["\t".join(self.header)]
        for u in t.utterances:
            text = u.text.replace("\t", " ").replace("\n", " ")
            rows.append(f"{u.start:.3f}\t{u.end:.3f}\t{u.channel}\t{u.speaker or ''}\t{u.role or ''}\t{text}")
        return "\n".join(rows) + "\n"


class RttmWriter:
    suffix = ".rttm"

    def render(self, t: Transcript) -> str:
        return write_rttm(t)


WRITERS: dict[str, Writer] = {
    "json": JsonWriter(),
    "txt": TxtWriter(),
    "srt": SrtWriter(),
    "vtt": VttWriter(),
    "tsv": TsvWriter(),
    "rttm": RttmWriter(),
}


def parse_formats(spec: str | None) -> tuple[str, ...]:
    """``json,txt`` / ``all`` → a tuple of known formats (json always first: it marks a call as done)."""
    if not spec:
        return ("json", "txt")
    names = [s.strip().lower() for s in spec.split(",") if s.strip()]
    if "all" in names:
        return tuple(WRITERS)
    unknown = [n for n in names if n not in WRITERS]
    if unknown:
        raise ValueError(f"unknown output format(s): {', '.join(unknown)}; known: {', '.join(WRITERS)}, all")
    ordered = ["json"] + [n for n in names if n != "json"]
    return tuple(dict.fromkeys(ordered))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_outputs(t: Transcript, out_dir: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    """Write the formats asked for; JSON last, because its presence is what marks the call as done."""
    paths = []
    for fmt in [f for f in formats if f != "json"] + (["json"] if "json" in formats else []):
        writer = WRITERS[fmt]
        path = out_dir / f"{stem}{writer.suffix}"
        atomic_write_text(path, writer.render(t))
        paths.append(path)
    return paths
