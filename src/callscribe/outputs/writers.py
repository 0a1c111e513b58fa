"""Output writers looked up by name; each format is one small class with ``render(transcript) -> str``.

A call's files are written as one set (:class:`OutputSet`): every new file goes to a temp file first, then a small
journal (``.<stem>.commit``) lists what to remove and what to rename, then the renames run (JSON last, its presence
marks the call done). A run killed before the journal is on disk leaves the old set untouched (the temp files are
swept); one killed after is rolled forward by :func:`replay_commits` when the next run takes the folder's lock.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from callscribe.model import Transcript, Utterance
from callscribe.outputs.rttm import write_rttm
from callscribe.speakers.stage import role_label

log = logging.getLogger("callscribe")

QA_SUFFIX = ".qa.json"
REDACTED_SUFFIX = ".redacted.wav"
COMMIT_SUFFIX = ".commit"
# Temp files are hidden and end in one of these; a run holding the folder's lock sweeps any it finds.
TEMP_PATTERNS = (".*.tmp", ".*.tmp.wav")


UNCOVERED_MARK = {"zh": "[未识别的语音]", "en": "[speech without text]"}


def shown_text(u: Utterance, language: str | None) -> str:
    """An utterance's text, or a visible mark where speech was heard but no text came from it."""
    if u.text or "uncovered" not in u.flags:
        return u.text
    return UNCOVERED_MARK["zh" if (language or "").lower().startswith("zh") else "en"]


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
            f"[{clock(u.start)} → {clock(u.end)}] {party_label(u, u.language or t.language)}: "
            f"{shown_text(u, t.language)}"
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
            blocks.append(f"{n}\n{span}\n[{party_label(u, u.language or t.language)}] {shown_text(u, t.language)}\n")
        return "\n".join(blocks)


class VttWriter:
    suffix = ".vtt"

    def render(self, t: Transcript) -> str:
        blocks = ["WEBVTT\n"]
        for u in t.utterances:
            span = f"{_subtitle_time(u.start, '.')} --> {_subtitle_time(u.end, '.')}"
            voice = party_label(u, u.language or t.language).replace(">", "")
            blocks.append(f"{span}\n<v {voice}>{shown_text(u, t.language)}\n")
        return "\n".join(blocks)


class TsvWriter:
    suffix = ".tsv"
    header = ("start", "end", "channel", "speaker", "role", "text")

    def render(self, t: Transcript) -> str:
        rows = ["\t".join(self.header)]
        for u in t.utterances:
            text = shown_text(u, t.language).replace("\t", " ").replace("\n", " ")
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


def call_suffixes() -> tuple[str, ...]:
    """Every suffix callscribe writes after a call's stem (the formats, QA results, redacted audio)."""
    return (*(w.suffix for w in WRITERS.values()), QA_SUFFIX, REDACTED_SUFFIX)


def is_output_name(name: str) -> bool:
    """True for a name callscribe writes into an output folder (a call's file, errors, journals, temp files)."""
    if name.startswith(".") or name == "errors.jsonl":
        return True
    return any(name.endswith(suffix) for suffix in call_suffixes())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class OutputSet:
    """The files of one call, staged as temp files and then committed together (see the module docstring)."""

    def __init__(self, out_dir: Path, stem: str) -> None:
        self.out_dir = out_dir
        self.stem = stem
        self.staged: list[tuple[Path, Path]] = []  # (temp, final)

    def final(self, suffix: str) -> Path:
        return self.out_dir / f"{self.stem}{suffix}"

    def temp_for(self, suffix: str) -> Path:
        """A fresh temp path for ``suffix`` that a writer can fill (a ``.wav`` keeps its extension)."""
        final = self.final(suffix)
        tail = ".tmp.wav" if suffix.endswith(".wav") else ".tmp"
        temp = self.out_dir / f".{final.name}.{secrets.token_hex(4)}{tail}"
        self.staged.append((temp, final))
        return temp

    def add_text(self, suffix: str, text: str) -> None:
        temp = self.temp_for(suffix)
        with open(temp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def add_transcript(self, t: Transcript, formats: Iterable[str]) -> None:
        for fmt in formats:
            writer = WRITERS[fmt]
            self.add_text(writer.suffix, writer.render(t))

    def discard(self) -> None:
        for temp, _ in self.staged:
            temp.unlink(missing_ok=True)
        self.staged = []

    def commit(self, *, replace_all: bool) -> list[Path]:
        """Put the staged files in place; with ``replace_all`` every other file of this stem goes too."""
        journal, plan = self.write_journal(replace_all=replace_all)
        _apply(self.out_dir, journal, plan)
        done = [self.out_dir / final for _, final in plan["write"]]
        self.staged = []
        return done

    def write_journal(self, *, replace_all: bool) -> tuple[Path, dict[str, list]]:
        """Durably record what the commit will do (from here on a killed run is rolled forward)."""
        try:
            finals = {final.name for _, final in self.staged}
            remove = []
            if replace_all:
                remove = [
                    self.final(s).name
                    for s in call_suffixes()
                    if self.final(s).name not in finals and self.final(s).exists()
                ]
            # JSON last: its presence is what marks the call as done.
            writes = sorted(self.staged, key=lambda tf: tf[1].suffix == ".json" and not tf[1].name.endswith(QA_SUFFIX))
            plan: dict[str, list] = {"remove": remove, "write": [[temp.name, final.name] for temp, final in writes]}
            journal = self.out_dir / f".{self.stem}{COMMIT_SUFFIX}"
            atomic_write_text(journal, json.dumps(plan, ensure_ascii=False))
            _fsync_dir(self.out_dir)
        except BaseException:
            self.discard()
            raise
        return journal, plan


def _apply(folder: Path, journal: Path, plan: dict[str, list]) -> None:
    for name in plan.get("remove", []):
        (folder / name).unlink(missing_ok=True)
    for temp_name, final_name in plan.get("write", []):
        temp = folder / temp_name
        if temp.exists():
            os.replace(temp, folder / final_name)
    _fsync_dir(folder)
    journal.unlink(missing_ok=True)


def replay_commits(folder: Path) -> int:
    """Finish the commits a killed run left half done (call only while holding the folder's lock)."""
    count = 0
    for journal in sorted(folder.glob(f".*{COMMIT_SUFFIX}")):
        try:
            plan = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            journal.unlink(missing_ok=True)  # never got complete onto disk: nothing was applied
            continue
        _apply(folder, journal, plan)
        count += 1
    return count


def write_outputs(t: Transcript, out_dir: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    """Write the formats asked for as one set (JSON last: its presence is what marks the call as done).

    Other files of the same stem are left alone; the batch runner uses :class:`OutputSet` to replace a whole set.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = OutputSet(out_dir, stem)
    try:
        files.add_transcript(t, formats)
    except BaseException:
        files.discard()
        raise
    return files.commit(replace_all=False)
