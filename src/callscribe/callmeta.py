"""Who took a call, when, and on which queue: from a CSV sidecar or from the recording's file name.

CSV sidecar (``--metadata calls.csv``): a header row, then one row per recording. Columns: ``file`` (the file name,
or its path relative to the folder given to ``transcribe``), ``agent_id``, ``call_time`` (ISO 8601, e.g.
``2024-05-01T09:30:00`` or ``2024-05-01 09:30:00+08:00``), ``queue``; every other column is kept as extra metadata.
Only ``file`` is required. A row names a recording when the recording's path ends with the row's path (``a.wav``
matches any ``a.wav``; ``site1/a.wav`` only the one in ``site1``); the longest such row wins.

File-name pattern (``--name-pattern``): the name without its extension must match the whole pattern. Text outside
braces is literal; ``{agent_id}``, ``{queue}`` or any other ``{name}`` takes the shortest stretch that lets the
rest match (other names become extra metadata); ``{call_time}`` is ISO 8601, ``{call_time:%Y%m%d-%H%M%S}`` is read
with that ``strftime`` format; ``{_}`` matches anything and is dropped. Example:
``{agent_id}_{call_time:%Y%m%d-%H%M%S}_{queue}`` reads ``A07_20240501-093000_billing.wav``.

Where both give a field, the CSV wins. A malformed CSV row or pattern is one line naming the file and line.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

log = logging.getLogger("callscribe")

KNOWN = ("agent_id", "call_time", "queue")
# strftime directives the pattern understands, and what each looks like in a file name
_DIRECTIVES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{1,2}",
    "d": r"\d{1,2}",
    "H": r"\d{1,2}",
    "M": r"\d{1,2}",
    "S": r"\d{1,2}",
    "f": r"\d{1,6}",
    "j": r"\d{1,3}",
    "z": r"(?:[+-]\d{2}:?\d{2}|Z)",
    "b": r"[A-Za-z]{3}",
    "%": "%",
}
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]*))?\}")


class MetadataError(ValueError):
    """A metadata file or pattern that cannot be used; ``str()`` is one line per problem."""


@dataclass(frozen=True)
class CallFields:
    """Metadata of one call as read from a sidecar or a name; ``None`` where nothing says."""

    agent_id: str | None = None
    call_time: datetime | None = None
    queue: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def over(self, other: CallFields) -> CallFields:
        """These fields, falling back to ``other`` where these say nothing."""
        return CallFields(
            self.agent_id if self.agent_id is not None else other.agent_id,
            self.call_time if self.call_time is not None else other.call_time,
            self.queue if self.queue is not None else other.queue,
            {**other.extra, **self.extra},
        )

    @property
    def empty(self) -> bool:
        return self.agent_id is None and self.call_time is None and self.queue is None and not self.extra


def parse_time(text: str) -> datetime:
    """ISO 8601 date or date-time (``Z`` allowed); ``ValueError`` otherwise."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    return datetime.fromisoformat(value)


def _strip(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


class MetadataCsv:
    """The rows of a ``--metadata`` CSV, looked up by recording path."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: dict[tuple[str, ...], CallFields] = {}
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise MetadataError(f"{self.path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MetadataError(f"{self.path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
        reader = csv.reader(text.splitlines())
        header = [h.strip() for h in next(reader, [])]
        if "file" not in header:
            raise MetadataError(f"{self.path}:1: the header needs a 'file' column (and agent_id, call_time, queue)")
        dupes = sorted({h for h in header if header.count(h) > 1 and h})
        if dupes:
            raise MetadataError(f"{self.path}:1: column {dupes[0]!r} appears twice")
        problems: list[str] = []
        seen: dict[tuple[str, ...], int] = {}
        for line, row in enumerate(reader, 2):
            if not "".join(row).strip():
                continue
            where = f"{self.path}:{line}"
            if len(row) != len(header):
                problems.append(f"{where}: {len(row)} columns where the header has {len(header)}")
                continue
            cells = {h: c.strip() for h, c in zip(header, row, strict=True) if h}
            key = tuple(p for p in PurePath(cells["file"].replace("\\", "/")).parts if p not in ("", "."))
            if not key:
                problems.append(f"{where}: the file column is empty")
                continue
            if key in seen:
                problems.append(f"{where}: {cells['file']} is already described on line {seen[key]}")
                continue
            when = None
            if cells.get("call_time"):
                try:
                    when = parse_time(cells["call_time"])
                except ValueError:
                    problems.append(f"{where}: call_time {cells['call_time']!r} is not an ISO 8601 date-time")
                    continue
            seen[key] = line
            extra = {k: v for k, v in cells.items() if k not in (*KNOWN, "file") and v}
            self.rows[key] = CallFields(_strip(cells.get("agent_id")), when, _strip(cells.get("queue")), extra)
        if problems:
            raise MetadataError("\n".join(problems))

    def lookup(self, path: str | Path) -> CallFields | None:
        parts = PurePath(str(path).replace("\\", "/")).parts
        best: tuple[int, CallFields] | None = None
        for key, fields in self.rows.items():
            if len(key) <= len(parts) and tuple(parts[-len(key) :]) == key and (best is None or len(key) > best[0]):
                best = (len(key), fields)
        return best[1] if best else None


class NamePattern:
    """A ``--name-pattern`` compiled to a regular expression over file names without their extension."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.time_format: str | None = None
        regex, pos, names = "", 0, []
        for m in _FIELD.finditer(pattern):
            literal = pattern[pos : m.start()]
            if "{" in literal or "}" in literal:
                raise MetadataError(f"--name-pattern {pattern!r}: unbalanced brace before {m.group(0)!r}")
            regex += re.escape(literal)
            name, fmt = m.group(1), m.group(2)
            if name in names and name != "_":
                raise MetadataError(f"--name-pattern {pattern!r}: {{{name}}} appears twice")
            names.append(name)
            if name == "_":
                regex += ".*?"
            elif name == "call_time" and fmt:
                self.time_format = fmt
                regex += f"(?P<call_time>{_format_regex(pattern, fmt)})"
            elif fmt:
                raise MetadataError(f"--name-pattern {pattern!r}: only call_time takes a format, not {name}")
            else:
                regex += f"(?P<{name}>.+?)"
            pos = m.end()
        tail = pattern[pos:]
        if "{" in tail or "}" in tail:
            raise MetadataError(f"--name-pattern {pattern!r}: unbalanced brace at the end")
        if not [n for n in names if n != "_"]:
            raise MetadataError(f"--name-pattern {pattern!r}: names no field, e.g. {{agent_id}}_{{queue}}")
        self.regex = re.compile(regex + re.escape(tail) + r"\Z")

    def match(self, path: str | Path) -> CallFields | None:
        """The fields in the file's name, or ``None`` (logged) when the name does not fit the pattern."""
        name = PurePath(str(path)).name
        stem = name.split(".")[0] if not name.startswith(".") else name
        m = self.regex.match(stem) or self.regex.match(PurePath(name).stem)
        if m is None:
            log.warning("%s: name does not match --name-pattern %r; stored without its fields", path, self.pattern)
            return None
        found = {k: v for k, v in m.groupdict().items() if v}
        when = None
        if "call_time" in found:
            try:
                raw = found.pop("call_time")
                when = datetime.strptime(raw, self.time_format) if self.time_format else parse_time(raw)
            except ValueError:
                log.warning("%s: %r is not a time for --name-pattern %r", path, raw, self.pattern)
        return CallFields(found.pop("agent_id", None), when, found.pop("queue", None), found)


def _format_regex(pattern: str, fmt: str) -> str:
    out, i = "", 0
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%":
            out += re.escape(ch)
            i += 1
            continue
        code = fmt[i + 1 : i + 2]
        if code not in _DIRECTIVES:
            raise MetadataError(f"--name-pattern {pattern!r}: %{code} is not a time directive it knows")
        out += _DIRECTIVES[code]
        i += 2
    return out


@dataclass(frozen=True)
class MetadataSource:
    """Where call metadata comes from: a CSV sidecar, a file-name pattern, both (the CSV wins), or neither."""

    csv: MetadataCsv | None = None
    pattern: NamePattern | None = None

    @classmethod
    def load(cls, csv_path: str | Path | None, pattern: str | None) -> MetadataSource:
        """Read and check both before any work; :class:`MetadataError` names what is wrong."""
        return cls(MetadataCsv(csv_path) if csv_path else None, NamePattern(pattern) if pattern else None)

    @property
    def active(self) -> bool:
        return self.csv is not None or self.pattern is not None

    def fields(self, path: str | Path) -> CallFields:
        """Everything known about the recording at ``path`` (the CSV over the name)."""
        from_csv = self.csv.lookup(path) if self.csv else None
        from_name = self.pattern.match(path) if self.pattern else None
        return (from_csv or CallFields()).over(from_name or CallFields())

    def meta(self, path: str | Path) -> Any:
        """The store's ``CallMeta`` for the recording, or ``None`` when nothing is known about it."""
        if not self.active:
            return None
        found = self.fields(path)
        if found.empty:
            return None
        from callscribe.store import CallMeta

        return CallMeta(agent_id=found.agent_id, call_time=found.call_time, queue=found.queue, extra=dict(found.extra))
