"""Figures across many calls: scores, rule pass rates, calls to review, complaint topics, keywords, agents.

:func:`load_calls` reads an output folder (``<stem>.json`` transcripts and, where present, ``<stem>.qa.json``);
a transcript without QA gets it from :func:`callscribe.qa.run_qa` when that is available. :func:`compute_insights`
turns the calls into an :class:`Insights` of plain row dataclasses that the CSV/XLSX export and the HTML report
both read.
"""

from __future__ import annotations

import csv
import importlib
import json
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callscribe.model import QAResult, Transcript
from callscribe.qa import mining

log = logging.getLogger("callscribe")

HISTOGRAM_BINS = 10  # score histogram over 0-100 %
TRAJECTORY_BINS = 5  # customer sentiment by fifth of the call
EXAMPLES_PER_TOPIC = 3
AGENT_KEYS = ("agent", "agent_id", "agentId", "agent_name")
_SKIP_SUFFIXES = (".qa.json",)


@dataclass(frozen=True)
class CallData:
    stem: str
    transcript: Transcript
    qa: QAResult | None
    agent: str | None = None


@dataclass(frozen=True)
class CallRow:
    call: str
    agent: str
    language: str
    duration_s: float
    score_pct: float | None
    needs_review: bool
    review_reasons: str
    rules_failed: int
    complaints: int
    topics: str
    customer_end: str


@dataclass(frozen=True)
class RuleRate:
    rule: str
    description: str
    calls: int
    passed: int
    pass_rate: float
    calls_with_hits: int


@dataclass(frozen=True)
class HistogramBin:
    low: float
    high: float
    calls: int


@dataclass(frozen=True)
class TopicRow:
    topic: str
    label: str
    complaints: int
    calls: int
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentRow:
    agent: str
    calls: int
    mean_score_pct: float | None
    needs_review: int
    complaints: int
    negative_endings: int
    mean_duration_s: float


@dataclass(frozen=True)
class TrajectoryPoint:
    position: str  # "0-20%"
    mean_sentiment: float | None
    utterances: int


@dataclass(frozen=True)
class Summary:
    calls: int
    calls_with_qa: int
    mean_score_pct: float | None
    needs_review: int
    complaints: int
    calls_with_complaints: int
    agents: int
    hours: float


@dataclass(frozen=True)
class Insights:
    summary: Summary
    calls: list[CallRow]
    rules: list[RuleRate]
    histogram: list[HistogramBin]
    topics: list[TopicRow]
    agents: list[AgentRow]
    trajectory: list[TrajectoryPoint]
    keywords: list[mining.Keyword]
    errors: list[str] = field(default_factory=list)

    @property
    def review(self) -> list[CallRow]:
        return [c for c in self.calls if c.needs_review]


# --- loading ---------------------------------------------------------------------------------------------


def read_agent_map(path: str | Path) -> dict[str, str]:
    """``call,agent`` rows (a header row is allowed) -> {call: agent}."""
    p = Path(path)
    try:
        rows = list(csv.reader(p.read_text(encoding="utf-8-sig").splitlines()))
    except OSError as exc:
        raise ValueError(f"{p}: cannot read agent list ({exc.strerror})") from exc
    out: dict[str, str] = {}
    for n, row in enumerate(rows, 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise ValueError(f"{p}: line {n} needs two columns, call and agent")
        call, agent = row[0].strip(), row[1].strip()
        if n == 1 and call.lower() in ("call", "call_id", "id", "file"):
            continue
        out[call] = agent
    return out


def _agent_of(
    stem: str, t: Transcript, agent_map: dict[str, str] | None, pattern: re.Pattern[str] | None
) -> str | None:
    if agent_map:
        for key in (t.call.id, stem, Path(t.call.path).stem, Path(t.call.path).name):
            if key in agent_map:
                return agent_map[key]
    for key in AGENT_KEYS:
        value = t.call.metadata.get(key)
        if value not in (None, ""):
            return str(value)
    if pattern is not None:
        for key in (stem, t.call.id, Path(t.call.path).name):
            m = pattern.search(key)
            if m:
                return m.groupdict().get("agent") or m.group(0)
    return None


def _run_qa() -> Callable[[Transcript], QAResult] | None:
    try:
        module = importlib.import_module("callscribe.qa")
    except ImportError:
        return None
    return getattr(module, "run_qa", None)


def load_calls(
    out_dir: str | Path, *, agents: str | Path | None = None, agent_pattern: str | None = None
) -> tuple[list[CallData], list[str]]:
    """Every transcript in ``out_dir`` with its QA result; bad files become one-line errors, the rest go on."""
    folder = Path(out_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of transcripts")
    agent_map = read_agent_map(agents) if agents else None
    try:
        pattern = re.compile(agent_pattern) if agent_pattern else None
    except re.error as exc:
        raise ValueError(f"--agent-pattern {agent_pattern!r}: {exc}") from exc
    run_qa = _run_qa()
    calls: list[CallData] = []
    errors: list[str] = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(_SKIP_SUFFIXES):
            continue
        try:
            transcript = Transcript.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            errors.append(f"{path}: not a transcript ({type(exc).__name__}: {exc})")
            continue
        stem = path.name[: -len(".json")]
        qa = _load_qa(folder / f"{stem}.qa.json", transcript, run_qa, errors)
        calls.append(CallData(stem, transcript, qa, _agent_of(stem, transcript, agent_map, pattern)))
    for e in errors:
        log.warning("%s", e)
    log.info("loaded %d call(s) from %s, %d with QA", len(calls), folder, sum(c.qa is not None for c in calls))
    return calls, errors


def _load_qa(
    path: Path, t: Transcript, run_qa: Callable[[Transcript], QAResult] | None, errors: list[str]
) -> QAResult | None:
    if path.exists():
        try:
            return QAResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            errors.append(f"{path}: not a QA result ({type(exc).__name__}: {exc})")
            return None
    if run_qa is None:
        return None
    try:
        return run_qa(t)
    except Exception as exc:  # one bad call must not stop the report
        errors.append(f"{t.call.path}: QA failed ({type(exc).__name__}: {exc})")
        return None


# --- figures ---------------------------------------------------------------------------------------------


def _utterance_scores(call: CallData) -> dict[int, float]:
    """Sentiment score per utterance index, from the QA result or, failing that, the sentiment module."""
    rows: Any = (call.qa.sentiment if call.qa else {}).get("utterances")
    if rows is None:
        try:
            from callscribe.qa.sentiment import analyze_sentiment
        except ImportError:
            return {}
        rows = [vars(r) for r in analyze_sentiment(call.transcript).utterances]
    out: dict[int, float] = {}
    for r in rows or ():
        if isinstance(r, dict) and isinstance(r.get("utterance"), int) and isinstance(r.get("score"), int | float):
            out[r["utterance"]] = float(r["score"])
    return out


def _pct(qa: QAResult | None) -> float | None:
    if qa is None or qa.max_score <= 0:
        return None
    return round(100.0 * qa.score / qa.max_score, 1)


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def compute_insights(calls: Sequence[CallData], *, top_n: int = 20, errors: Sequence[str] = ()) -> Insights:
    rows: list[CallRow] = []
    topic_hits: dict[str, list[tuple[str, str]]] = defaultdict(list)  # topic -> [(call, example)]
    trajectory: list[list[float]] = [[] for _ in range(TRAJECTORY_BINS)]
    docs: list[mining.RoleText] = []
    for call in calls:
        t = call.transcript
        scores = _utterance_scores(call)
        complaints = 0
        topics: Counter[str] = Counter()
        by_role: dict[str, list[str]] = defaultdict(list)
        customer: list[float] = []
        for i, u in enumerate(t.utterances):
            by_role[u.role or "unknown"].append(u.text)
            if u.role != "customer":
                continue
            score = scores.get(i)
            if score is not None:
                customer.append(score)
                where = u.start / t.call.duration if t.call.duration > 0 else 0.0
                trajectory[min(TRAJECTORY_BINS - 1, max(0, int(where * TRAJECTORY_BINS)))].append(score)
            if mining.is_complaint(u.text, score):
                complaints += 1
                for topic in mining.topics_of(u.text) or [mining.OTHER_TOPIC]:
                    topics[topic] += 1
                    topic_hits[topic].append((t.call.id, f"{t.call.id} @{u.start:.0f}s: {u.text}"))
        docs += [mining.RoleText(t.call.id, role, tuple(texts)) for role, texts in by_role.items()]
        end = _ending(customer)
        qa = call.qa
        rows.append(
            CallRow(
                call=t.call.id,
                agent=call.agent or "",
                language=t.language or "",
                duration_s=round(t.call.duration, 1),
                score_pct=_pct(qa),
                needs_review=bool(qa and qa.needs_review),
                review_reasons="; ".join(qa.review_reasons) if qa else "",
                rules_failed=sum(r.graded and not r.passed for r in qa.rules) if qa else 0,
                complaints=complaints,
                topics=", ".join(sorted(topics)),
                customer_end=end,
            )
        )
    scored = [r.score_pct for r in rows if r.score_pct is not None]
    return Insights(
        summary=Summary(
            calls=len(rows),
            calls_with_qa=sum(c.qa is not None for c in calls),
            mean_score_pct=round(sum(scored) / len(scored), 1) if scored else None,
            needs_review=sum(r.needs_review for r in rows),
            complaints=sum(r.complaints for r in rows),
            calls_with_complaints=sum(r.complaints > 0 for r in rows),
            agents=len({c.agent for c in calls if c.agent}),
            hours=round(sum(c.transcript.call.duration for c in calls) / 3600, 2),
        ),
        calls=rows,
        rules=_rule_rates(calls),
        histogram=_histogram(scored),
        topics=_topics(topic_hits),
        agents=_agents(rows),
        trajectory=[
            TrajectoryPoint(f"{100 * k // TRAJECTORY_BINS}-{100 * (k + 1) // TRAJECTORY_BINS}%", _mean(v), len(v))
            for k, v in enumerate(trajectory)
        ],
        keywords=mining.keywords(docs, top_n),
        errors=list(errors),
    )


def _ending(customer: Sequence[float]) -> str:
    if not customer:
        return ""
    tail = customer[-min(3, max(1, len(customer) // 3)) :]
    value = sum(tail) / len(tail)
    return "negative" if value <= mining.NEGATIVE_AT else "positive" if value >= -mining.NEGATIVE_AT else "neutral"


def _rule_rates(calls: Sequence[CallData]) -> list[RuleRate]:
    seen: dict[str, list[Any]] = {}
    for call in calls:
        for r in call.qa.rules if call.qa else ():
            if not r.graded:  # held back for review (roles unsure): neither a pass nor a fail
                continue
            entry = seen.setdefault(r.id, [r.description, 0, 0, 0])
            entry[1] += 1
            entry[2] += int(r.passed)
            entry[3] += int(bool(r.hits))
    return [
        RuleRate(rule, desc, n, passed, round(passed / n, 3), hits)
        for rule, (desc, n, passed, hits) in sorted(seen.items(), key=lambda kv: (kv[1][2] / kv[1][1], kv[0]))
    ]


def _histogram(scores: Sequence[float]) -> list[HistogramBin]:
    width = 100.0 / HISTOGRAM_BINS
    counts = [0] * HISTOGRAM_BINS
    for s in scores:
        counts[min(HISTOGRAM_BINS - 1, max(0, int(s // width)))] += 1
    return [HistogramBin(k * width, (k + 1) * width, n) for k, n in enumerate(counts)]


def _topics(hits: dict[str, list[tuple[str, str]]]) -> list[TopicRow]:
    rows = [
        TopicRow(
            topic,
            mining.topic_label(topic),
            len(items),
            len({call for call, _ in items}),
            tuple(example for _, example in items[:EXAMPLES_PER_TOPIC]),
        )
        for topic, items in hits.items()
    ]
    return sorted(rows, key=lambda r: (-r.complaints, r.topic))


def _agents(rows: Sequence[CallRow]) -> list[AgentRow]:
    groups: dict[str, list[CallRow]] = defaultdict(list)
    for r in rows:
        if r.agent:
            groups[r.agent].append(r)
    out = []
    for agent, rs in sorted(groups.items()):
        scored = [r.score_pct for r in rs if r.score_pct is not None]
        out.append(
            AgentRow(
                agent=agent,
                calls=len(rs),
                mean_score_pct=round(sum(scored) / len(scored), 1) if scored else None,
                needs_review=sum(r.needs_review for r in rs),
                complaints=sum(r.complaints for r in rs),
                negative_endings=sum(r.customer_end == "negative" for r in rs),
                mean_duration_s=round(sum(r.duration_s for r in rs) / len(rs), 1),
            )
        )
    return out
