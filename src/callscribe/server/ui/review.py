"""Reviewers' judgements kept in the store's ``verdicts`` and ``corrections`` tables, read back as desk state.

The store has one verdict row shape (call, rule id, verdict, reviewer, note); the desk writes these kinds:

- a rule hit judged: ``verdict`` ``correct`` or ``false_hit``, ``rule_id`` the rule, ``note``
  ``@hit N (12.34 s): comment`` (N: the hit's index in that rule's hits, with its start time to catch a QA rerun);
- a rule without hits judged: the same verdicts and ``rule_id``, the note is the comment;
- a manual score: ``verdict`` ``score_override``, ``note`` ``@score 85: comment``;
- "needs review" resolved or reopened: ``review_resolved`` / ``review_reopened``, ``note`` the comment.

The latest row of each kind wins; older rows are the history. Per-rule precision (how often a rule's hits are
confirmed) counts, over the calls reviewed at the desk, the latest verdict of each hit, and a hit nobody judged
whose utterance a reviewer corrected so that the hit's words are gone from it (the rule fired on a mis-hearing).
The calls reviewed are kept in a small ledger in the server's data folder, because the store lists verdicts
only per call.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HIT_VERDICTS = ("correct", "false_hit")
OVERRIDE = "score_override"
RESOLVED, REOPENED = "review_resolved", "review_reopened"
START_SLACK_S = 0.02
MAX_COMMENT = 2000
MAX_TERM = 64  # as the glossary limits a prompt term

_HIT_NOTE = re.compile(r"^@hit (\d+) \((-?\d+(?:\.\d+)?) s\)(?::\s?(.*))?$", re.S)
_SCORE_NOTE = re.compile(r"^@score (-?\d+(?:\.\d+)?)(?::\s?(.*))?$", re.S)


def hit_note(index: int, start: float, comment: str = "") -> str:
    comment = comment.strip()
    return f"@hit {index} ({start:.2f} s)" + (f": {comment}" if comment else "")


def score_note(score: float, comment: str = "") -> str:
    comment = comment.strip()
    return f"@score {score:g}" + (f": {comment}" if comment else "")


@dataclass(frozen=True)
class Judgement:
    verdict: str
    reviewer: str
    at: str  # ISO time
    comment: str = ""
    score: float | None = None  # for a score override


@dataclass
class ReviewState:
    hits: dict[tuple[str, int], Judgement] = field(default_factory=dict)
    rules: dict[str, Judgement] = field(default_factory=dict)
    override: Judgement | None = None
    resolution: Judgement | None = None  # latest resolved / reopened
    history: list[dict[str, Any]] = field(default_factory=list)  # every verdict row, oldest first

    @property
    def resolved(self) -> bool:
        return self.resolution is not None and self.resolution.verdict == RESOLVED


def _hit_starts(qa: dict[str, Any] | None) -> dict[tuple[str, int], float]:
    starts: dict[tuple[str, int], float] = {}
    for rule in (qa or {}).get("rules", ()):
        for n, hit in enumerate(rule.get("hits", ())):
            starts[(rule["id"], n)] = float(hit["start"])
    return starts


def review_state(verdicts: Iterable[Any], qa: dict[str, Any] | None) -> ReviewState:
    """The latest judgement of each hit, rule, score and review flag (store ``Verdict`` rows, oldest first)."""
    state = ReviewState()
    starts = _hit_starts(qa)
    for v in verdicts:
        at = v.created_at.isoformat() if v.created_at else ""
        note = v.note or ""
        state.history.append({"verdict": v.verdict, "rule": v.rule_id, "note": note, "by": v.reviewer, "at": at})
        if v.verdict in HIT_VERDICTS and v.rule_id:
            m = _HIT_NOTE.match(note)
            if m is None:
                state.rules[v.rule_id] = Judgement(v.verdict, v.reviewer, at, note)
                continue
            key = (v.rule_id, int(m.group(1)))
            if key in starts and abs(starts[key] - float(m.group(2))) <= START_SLACK_S:  # else: an older QA run's
                state.hits[key] = Judgement(v.verdict, v.reviewer, at, m.group(3) or "")
        elif v.verdict == OVERRIDE:
            m = _SCORE_NOTE.match(note)
            if m is not None:
                state.override = Judgement(v.verdict, v.reviewer, at, m.group(2) or "", float(m.group(1)))
        elif v.verdict in (RESOLVED, REOPENED):
            state.resolution = Judgement(v.verdict, v.reviewer, at, note)
    return state


def latest_texts(corrections: Iterable[Any]) -> dict[int, Any]:
    """The latest text correction of each utterance (store ``Correction`` rows, oldest first)."""
    out: dict[int, Any] = {}
    for c in corrections:
        if c.field == "text" and c.utterance is not None:
            out[c.utterance] = c
    return out


# -- per-rule precision -------------------------------------------------------------------------------------------
@dataclass
class RulePrecision:
    rule: str
    confirmed: int = 0
    false_hits: int = 0
    corrected_away: int = 0  # not judged, but a correction removed the hit's words from its utterance
    unjudged: int = 0  # hits in reviewed calls nobody judged
    rule_confirmed: int = 0  # rule outcomes (rules without hits) judged right / wrong
    rule_overturned: int = 0

    @property
    def judged(self) -> int:
        return self.confirmed + self.false_hits + self.corrected_away

    @property
    def precision(self) -> float | None:
        return self.confirmed / self.judged if self.judged else None


def add_call_precision(
    table: dict[str, RulePrecision], qa: dict[str, Any] | None, verdicts: Sequence[Any], corrections: Sequence[Any]
) -> None:
    """Count one reviewed call's hits into ``table`` (rule id → figures)."""
    if not qa:
        return
    state = review_state(verdicts, qa)
    fixed = latest_texts(corrections)
    for rule in qa.get("rules", ()):
        row = table.setdefault(rule["id"], RulePrecision(rule["id"]))
        hits = rule.get("hits", ())
        if not hits and rule["id"] in state.rules:
            if state.rules[rule["id"]].verdict == "correct":
                row.rule_confirmed += 1
            else:
                row.rule_overturned += 1
        for n, hit in enumerate(hits):
            judged = state.hits.get((rule["id"], n))
            if judged is not None:
                if judged.verdict == "correct":
                    row.confirmed += 1
                else:
                    row.false_hits += 1
                continue
            c = fixed.get(hit.get("utterance")) if hit.get("utterance") is not None else None
            words = (hit.get("text") or "").strip()
            if c is not None and words and words in c.before and words not in c.after:
                row.corrected_away += 1
            else:
                row.unjudged += 1


def precision_table(store: Any, call_ids: Iterable[int]) -> tuple[list[RulePrecision], int]:
    """Per-rule figures over the given calls (those still stored), and how many calls that was."""
    table: dict[str, RulePrecision] = {}
    reviewed = 0
    for call_id in call_ids:
        record = store.call(call_id)
        if record is None:
            continue
        reviewed += 1
        add_call_precision(table, record.qa, store.verdicts(call_id), store.corrections(call_id))
    return sorted(table.values(), key=lambda r: r.rule), reviewed


class Ledger:
    """The ids of the calls reviewers wrote something about, in ``DATA/ui/reviewed.json`` (written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def ids(self) -> list[int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path}: unreadable review ledger ({exc})") from None
        return sorted({int(i) for i in data.get("calls", ())})

    def add(self, call_id: int) -> None:
        with self._lock:
            have = set(self.ids())
            if call_id in have:
                return
            have.add(call_id)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump({"calls": sorted(have)}, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise


# -- glossary entries from corrections ------------------------------------------------------------------------------
def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _word_char(ch: str) -> bool:
    return ch.isalnum() and not _is_cjk(ch)


def propose_entry(before: str, after: str) -> tuple[str, str] | None:
    """The mis-heard stretch and its right form from a correction: the changed part of the text, widened to whole
    Latin words, and for Chinese to at least two characters. None when nothing changed."""
    sm = difflib.SequenceMatcher(None, before, after, autojunk=False)
    changes = [op for op in sm.get_opcodes() if op[0] != "equal"]
    if not changes:
        return None
    b0, b1, a0, a1 = changes[0][1], changes[-1][2], changes[0][3], changes[-1][4]

    def edge_word(i: int, j: int) -> bool:  # a Latin word runs across the left edge
        return any(_word_char(t[k]) for t, k in ((before, i), (after, j)) if k < len(t))

    while b0 > 0 and a0 > 0 and _word_char(before[b0 - 1]) and edge_word(b0, a0):
        b0, a0 = b0 - 1, a0 - 1
    while (
        b1 < len(before)
        and a1 < len(after)
        and _word_char(before[b1])
        and ((b1 > b0 and _word_char(before[b1 - 1])) or (a1 > a0 and _word_char(after[a1 - 1])))
    ):
        b1, a1 = b1 + 1, a1 + 1
    if any(_is_cjk(ch) for ch in after[a0:a1]):  # widen to the Chinese words jieba finds around the change
        grow_left, grow_right = _cjk_words(after, a0, a1)
        grow_left, grow_right = min(grow_left, b0), min(grow_right, len(before) - b1)
        b0, a0, b1, a1 = b0 - grow_left, a0 - grow_left, b1 + grow_right, a1 + grow_right
    while min(b1 - b0, a1 - a0) < 2:  # a Chinese word is at least two characters
        if b0 > 0 and a0 > 0 and _is_cjk(before[b0 - 1]):
            b0, a0 = b0 - 1, a0 - 1
        elif b1 < len(before) and a1 < len(after) and _is_cjk(before[b1]):
            b1, a1 = b1 + 1, a1 + 1
        else:
            break
    wrong, right = before[b0:b1].strip(), after[a0:a1].strip()
    return (wrong, right) if right and wrong != right else None


def _cjk_words(text: str, start: int, end: int) -> tuple[int, int]:
    """How far the jieba words overlapping ``text[start:end]`` reach left of ``start`` and right of ``end``."""
    import jieba

    left = right = 0
    for word, w0, w1 in jieba.tokenize(text):
        if w0 < end and start < w1 and all(_is_cjk(ch) for ch in word):
            left, right = max(left, start - w0), max(right, w1 - end)
    return left, right


def glossary_entry(wrong: str, right: str) -> str:
    """``wrong => right`` as a hotwords line; ValueError (one line) for a form a glossary cannot hold."""
    wrong, right = wrong.strip(), right.strip()
    for what, form in (("wrong form", wrong), ("right form", right)):
        if not form:
            raise ValueError(f"glossary entry: the {what} is empty")
        if len(form) > MAX_TERM:
            raise ValueError(f"glossary entry: the {what} is longer than {MAX_TERM} characters")
        if "=>" in form or "#" in form or "\n" in form or "\r" in form:
            raise ValueError(f"glossary entry: the {what} may not contain '=>', '#' or a line break")
    if wrong == right:
        raise ValueError("glossary entry: the wrong and right forms are the same")
    return f"{wrong} => {right}"
