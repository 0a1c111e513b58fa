"""Call metrics from a transcript's utterances: talk, silence, overlap, interruptions, pace, latency, turns.

Definitions (seconds throughout; a *party* is an utterance's role, else its speaker, else ``channel<N>``):

- ``duration``: the call's duration, or the last utterance end when the call does not say.
- ``talk_time``: length of the union of all utterance spans; per party, the union of that party's spans.
  ``talk_share`` is a party's talk time over the sum of all parties' talk times.
- ``non_talk_time``: ``duration - talk_time`` (nobody speaking, lead-in and tail included).
  ``gaps``: every silence *between* speech (not before the first or after the last word) longer than
  ``gap_threshold_s``, with the utterances on either side; ``longest_gap`` is the longest internal silence.
- ``overlaps``: stretches where two or more parties speak at once, merged; counted and summed.
- backchannel: an utterance lying wholly inside another party's utterance ("嗯", "right"). Backchannels do not
  start turns and are not interruptions.
- interruption: party B starts while party A is speaking, A still had at least ``MIN_OVERLAP_S`` to go
  (shorter overlaps are ordinary turn-taking jitter), A stops within ``INTERRUPT_YIELD_S`` of B starting, and
  B goes on after A stops: B *cut in on* A. Where A talks on for longer it is a talk-over (an overlap only).
- speech rate: CJK characters and Latin-script words per minute of the party's talk time.
- turns: maximal runs of consecutive non-backchannel utterances (by start time) of one party.
- response latency: for each customer turn followed by an agent turn, ``agent start - customer end``; an agent
  turn that starts before the customer stops counts as 0.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from callscribe.model import Span, Transcript, Utterance

GAP_THRESHOLD_S = 5.0
MIN_OVERLAP_S = 0.2
INTERRUPT_YIELD_S = 1.0

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]")
_LATIN_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")


class Turn(NamedTuple):
    """Consecutive utterances of one party; ``utterances`` are transcript indices."""

    party: str
    start: float
    end: float
    utterances: tuple[int, ...]


@dataclass(frozen=True)
class Gap:
    """A silence between two utterances; ``previous``/``next`` are utterance indices."""

    start: float
    end: float
    duration: float
    previous: int | None
    next: int | None


@dataclass(frozen=True)
class Overlap:
    start: float
    end: float
    duration: float
    parties: tuple[str, ...]


@dataclass(frozen=True)
class Interruption:
    """``interrupter`` cut in on ``interrupted`` at ``time``; utterance indices point into the transcript."""

    time: float
    interrupter: str
    interrupted: str
    utterance: int
    interrupted_utterance: int
    overlap: float


@dataclass(frozen=True)
class PartyMetrics:
    party: str
    talk_time: float
    talk_share: float
    utterances: int
    turns: int
    backchannels: int
    cjk_chars: int
    words: int
    chars_per_minute: float
    words_per_minute: float


@dataclass(frozen=True)
class CallMetrics:
    duration: float
    talk_time: float
    non_talk_time: float
    leading_silence: float
    trailing_silence: float
    gap_threshold_s: float
    gaps: tuple[Gap, ...]
    longest_gap: float
    overlap_count: int
    overlap_time: float
    overlaps: tuple[Overlap, ...]
    interruption_count: int
    interruption_time: float
    interruptions: tuple[Interruption, ...]
    interruptions_by: dict[str, int]
    response_latencies: tuple[float, ...]
    response_latency_mean: float | None
    response_latency_max: float | None
    turns: int
    parties: dict[str, PartyMetrics] = field(default_factory=dict)


def party_of(u: Utterance) -> str:
    """Who spoke: the role when known, else the speaker label, else the channel."""
    return u.role or u.speaker or f"channel{u.channel}"


def merge_spans(spans: list[Span]) -> list[Span]:
    """Union of spans as a sorted list of disjoint spans (touching spans are joined)."""
    out: list[Span] = []
    for s in sorted(spans):
        if out and s.start <= out[-1].end:
            out[-1] = Span(out[-1].start, max(out[-1].end, s.end))
        else:
            out.append(s)
    return out


def _total(spans: list[Span]) -> float:
    return sum(s.duration for s in spans)


def _order(t: Transcript) -> list[int]:
    return sorted(range(len(t.utterances)), key=lambda i: (t.utterances[i].start, t.utterances[i].end))


def silences(t: Transcript, min_s: float) -> list[Gap]:
    """Every silence between speech longer than ``min_s`` seconds (lead-in and tail excluded)."""
    utts = t.utterances
    gaps: list[Gap] = []
    last_end: float | None = None
    last_idx: int | None = None
    for i in _order(t):
        u = utts[i]
        if last_end is not None and u.start - last_end > min_s:
            gaps.append(Gap(last_end, u.start, round(u.start - last_end, 3), last_idx, i))
        if last_end is None or u.end >= last_end:
            last_end, last_idx = u.end, i
    return gaps


def backchannels(t: Transcript) -> set[int]:
    """Indices of utterances lying wholly inside another party's utterance."""
    utts = t.utterances
    out: set[int] = set()
    reach: dict[str, float] = {}  # party -> latest end among its utterances seen so far
    for i in sorted(range(len(utts)), key=lambda k: (utts[k].start, -utts[k].end, k)):
        u = utts[i]
        p = party_of(u)
        if any(end >= u.end for q, end in reach.items() if q != p):
            out.add(i)
        reach[p] = max(reach.get(p, u.end), u.end)
    return out


def turns(t: Transcript) -> list[Turn]:
    """The call's turns in order; backchannels are left out."""
    skip = backchannels(t)
    out: list[Turn] = []
    for i in _order(t):
        if i in skip:
            continue
        u = t.utterances[i]
        p = party_of(u)
        if out and out[-1][0] == p:
            party, start, end, idx = out[-1]
            out[-1] = Turn(party, start, max(end, u.end), (*idx, i))
        else:
            out.append(Turn(p, u.start, u.end, (i,)))
    return out


def _overlaps(t: Transcript) -> list[Overlap]:
    utts = t.utterances
    order = _order(t)
    pieces: list[tuple[Span, frozenset[str]]] = []
    for a_pos, i in enumerate(order):
        a = utts[i]
        for j in order[a_pos + 1 :]:
            b = utts[j]
            if b.start >= a.end:
                break
            if party_of(a) != party_of(b) and a.span.intersection(b.span) > 0:
                span = Span(max(a.start, b.start), min(a.end, b.end))
                pieces.append((span, frozenset((party_of(a), party_of(b)))))
    merged: list[Overlap] = []
    for span, parties in sorted(pieces, key=lambda p: p[0]):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            end = max(last.end, span.end)
            names = tuple(sorted(set(last.parties) | parties))
            merged[-1] = Overlap(last.start, end, round(end - last.start, 3), names)
        else:
            merged.append(Overlap(span.start, span.end, round(span.duration, 3), tuple(sorted(parties))))
    return merged


def _interruptions(t: Transcript) -> list[Interruption]:
    utts = t.utterances
    out: list[Interruption] = []
    active: list[int] = []  # utterances that may still be running at the current start
    for j in _order(t):
        b = utts[j]
        active = [i for i in active if utts[i].end > b.start]
        for i in active:
            a = utts[i]
            if party_of(a) == party_of(b) or not a.start < b.start:
                continue
            remaining = a.end - b.start
            if MIN_OVERLAP_S <= remaining <= INTERRUPT_YIELD_S and b.end > a.end:
                out.append(Interruption(b.start, party_of(b), party_of(a), j, i, round(remaining, 3)))
                break
        active.append(j)
    return out


def _party_metrics(t: Transcript, total_talk: float, turn_list: list[Turn], skip: set[int]) -> dict[str, PartyMetrics]:
    by_party: dict[str, list[int]] = {}
    for i, u in enumerate(t.utterances):
        by_party.setdefault(party_of(u), []).append(i)
    out: dict[str, PartyMetrics] = {}
    for party, idx in by_party.items():
        talk = _total(merge_spans([t.utterances[i].span for i in idx]))
        text = "".join(t.utterances[i].text for i in idx)
        chars = len(_HAN.findall(text))
        words = len(_LATIN_WORD.findall(text))
        minutes = talk / 60.0
        out[party] = PartyMetrics(
            party=party,
            talk_time=round(talk, 3),
            talk_share=round(talk / total_talk, 4) if total_talk > 0 else 0.0,
            utterances=len(idx),
            turns=sum(1 for turn in turn_list if turn.party == party),
            backchannels=sum(1 for i in idx if i in skip),
            cjk_chars=chars,
            words=words,
            chars_per_minute=round(chars / minutes, 1) if minutes > 0 else 0.0,
            words_per_minute=round(words / minutes, 1) if minutes > 0 else 0.0,
        )
    return out


def compute_metrics(t: Transcript, *, gap_threshold_s: float = GAP_THRESHOLD_S) -> CallMetrics:
    """Every metric of one call (see the module docstring for the exact definitions)."""
    utts = t.utterances
    last_end = max((u.end for u in utts), default=0.0)
    duration = t.call.duration if t.call.duration > 0 else last_end
    speech = merge_spans([u.span for u in utts])
    talk = _total(speech)
    gaps = silences(t, gap_threshold_s)
    all_gaps = silences(t, 0.0)
    overlaps = _overlaps(t)
    interruptions = _interruptions(t)
    skip = backchannels(t)
    turn_list = turns(t)
    latencies = [
        round(max(0.0, nxt.start - cur.end), 3)
        for cur, nxt in itertools.pairwise(turn_list)
        if cur.party == "customer" and nxt.party == "agent"
    ]
    parties = {party_of(u) for u in utts}
    party_talk = sum(_total(merge_spans([u.span for u in utts if party_of(u) == p])) for p in parties)
    by: dict[str, int] = {}
    for it in interruptions:
        by[it.interrupter] = by.get(it.interrupter, 0) + 1
    return CallMetrics(
        duration=round(duration, 3),
        talk_time=round(talk, 3),
        non_talk_time=round(max(0.0, duration - talk), 3),
        leading_silence=round(speech[0].start, 3) if speech else round(duration, 3),
        trailing_silence=round(max(0.0, duration - last_end), 3) if speech else 0.0,
        gap_threshold_s=gap_threshold_s,
        gaps=tuple(gaps),
        longest_gap=max((g.duration for g in all_gaps), default=0.0),
        overlap_count=len(overlaps),
        overlap_time=round(sum(o.duration for o in overlaps), 3),
        overlaps=tuple(overlaps),
        interruption_count=len(interruptions),
        interruption_time=round(sum(i.overlap for i in interruptions), 3),
        interruptions=tuple(interruptions),
        interruptions_by=by,
        response_latencies=tuple(latencies),
        response_latency_mean=round(sum(latencies) / len(latencies), 3) if latencies else None,
        response_latency_max=max(latencies) if latencies else None,
        turns=len(turn_list),
        parties=_party_metrics(t, party_talk, turn_list, skip),
    )
