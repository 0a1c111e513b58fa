"""The speakers stage: before ASR, decide who speaks where (:func:`plan_speakers`); after it, clean up and name
the parties (:func:`finalize`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field

import numpy as np

from callscribe.model import Span, Speaker, Transcript, Utterance
from callscribe.options import Options
from callscribe.speakers.bleed import double_talk, own_share, repeat_share, text_units
from callscribe.speakers.channels import (
    FRAME_S,
    AudioSource,
    ChannelLevels,
    choose_mode,
    measure,
    remove_bleed,
)
from callscribe.speakers.roles import UNSURE, RoleDecision, assign_roles, is_ivr, load_patterns

log = logging.getLogger("callscribe")

# An utterance is the other channel's bleed when at least this share of its words (CJK characters) repeat, in
# order, what another channel says ...
TEXT_BLEED_SHARE = 0.5
TEXT_BLEED_MIN_UNITS = 2  # (shorter utterances are never dropped)
TEXT_BLEED_TIME_SHARE = 0.5  # ... when at least this share of it overlaps that utterance in time,
TEXT_BLEED_WEAKER_DB = 6.0  # it is at least this much quieter over the shared time,
TEXT_BLEED_MAX_OWN = 0.3  # and at most this share of its sounding frames are its channel's own voice
OVERLAP_MIN_S = 0.2
# The speaker of a one-signal recording that could not be diarized: every party at once, so it gets no role.
MIXED = "mixed"  # utterances sharing less time than this are not marked as overlapping

LABELS = {
    "zh": {"agent": "客服", "customer": "客户", "ivr": "语音导航", "other": "其他", None: "未知"},
    "en": {"agent": "Agent", "customer": "Customer", "ivr": "IVR", "other": "Other", None: "Unknown"},
}
_ZH = re.compile(r"^(zh|cmn|yue|wuu)([-_].*)?$", re.IGNORECASE)


@dataclass
class SpeakerPlan:
    """Who speaks where, decided before ASR.

    ``speech[c]`` are the spans of channel ``c`` to transcribe and ``labels[c][i]`` the speaker of
    ``speech[c][i]``: ``ch0``/``ch1`` for split channels, ``S1``/``S2``... for a diarized mono signal.
    """

    mode: str  # "split" | "mix" | "mono"
    speech: dict[int, list[Span]]
    labels: dict[int, list[str]]
    notes: list[str] = field(default_factory=list)
    overlaps: list[Span] = field(default_factory=list)  # stretches where two parties talk at once
    bleed: dict[int, list[Span]] = field(default_factory=dict)  # speech removed as the other channel's echo
    channel: int | None = None  # the channel diarized in mix/mono mode
    correlation: float = 0.0  # channels 0/1 (split/mix decision)
    level_diff_db: float = 0.0
    levels: ChannelLevels | None = field(default=None, repr=False)

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(label for labels in self.labels.values() for label in labels))


def plan_speakers(audio: AudioSource, speech: dict[int, list[Span]], options: Options) -> SpeakerPlan:
    """Split-channel calls: bleed removed, a speaker per channel. One signal: diarized into S1, S2..."""
    levels = measure(audio) if audio.channels >= 2 else None
    if levels is None:
        mode, channel, notes = "mono", 0, []
        if options.channels == "split":
            notes.append("channels=split asked for a one-channel recording; treating it as mono")
    else:
        mode, channel, notes = choose_mode(options.channels, levels, speech)
    corr = levels.correlation if levels else 0.0
    diff = levels.level_diff_db if levels else 0.0
    if mode == "split":
        assert levels is not None
        cleaned = remove_bleed(levels, speech)
        model = ", ".join(
            f"channel {c} {g:+.0f} dB" + (f" {levels.delay_s[c] * 1000:.0f} ms late" if c in levels.delay_s else "")
            for c, g in sorted(levels.gain_db.items())
        )
        if cleaned.removed:
            notes.append(
                f"removed {cleaned.removed_seconds:.1f} s of crosstalk (bleed) before recognition"
                + (f"; the other party leaks in at {model}" if model else "")
            )
        unsure = sum(s.duration for spans in cleaned.unsure.values() for s in spans)
        if unsure:
            notes.append(f"{unsure:.1f} s that may be crosstalk sent to recognition; its text decides")
        labels = {c: [f"ch{c}"] * len(spans) for c, spans in cleaned.speech.items()}
        return SpeakerPlan(
            mode, cleaned.speech, labels, notes, cleaned.overlaps, cleaned.removed, None, corr, diff, levels
        )
    assert channel is not None
    spans = speech.get(channel, [])
    diar_spans, diar_labels, overlaps = _diarize(audio, channel, spans, options, notes)
    return SpeakerPlan(
        mode, {channel: diar_spans}, {channel: diar_labels}, notes, overlaps, {}, channel, corr, diff, levels
    )


def _diarize(
    audio: AudioSource, channel: int, spans: list[Span], options: Options, notes: list[str]
) -> tuple[list[Span], list[str], list[Span]]:
    if not spans:
        return [], [], []
    if options.speakers == 1 or (options.max_speakers == 1):
        return list(spans), ["S1"] * len(spans), []
    from callscribe.speakers.embed import EncoderUnavailable

    try:
        from callscribe.speakers.diarize import diarize

        result = diarize(
            audio.read(channel, 0.0, audio.duration),
            spans,
            speakers=options.speakers,
            min_speakers=options.min_speakers,
            max_speakers=options.max_speakers,
        )
    except (EncoderUnavailable, ImportError) as exc:
        notes.append(f"speakers not separated: {exc}")
        log.warning("speakers not separated: %s", exc)
        return list(spans), [MIXED] * len(spans), []
    notes.extend(result.notes)
    notes.append(f"diarized channel {channel}: {result.speakers} speaker(s)")
    return result.spans, result.labels, result.overlaps


def role_label(role: str | None, language: str | None) -> str:
    """How a role is shown: ``客服``/``客户`` for Chinese, ``Agent``/``Customer`` otherwise."""
    table = LABELS["zh"] if language and _ZH.match(language) else LABELS["en"]
    return table.get(role, role or table[None])


def _speaker_at(plan: SpeakerPlan, u: Utterance) -> str:
    if plan.mode == "split" or u.channel not in plan.labels:
        return f"ch{u.channel}"
    best, share = "S1", 0.0
    for span, label in zip(plan.speech[u.channel], plan.labels[u.channel], strict=True):
        inter = span.intersection(u.span)
        if inter > share:
            best, share = label, inter
    return best


def _word_speakers(utts: list[Utterance], audio: AudioSource, plan: SpeakerPlan, notes: list[str]) -> list[Utterance]:
    """A diarized one-signal call: speakers word by word (utterances split where the speaker changes, when the
    engine gave word times), then utterance edges stretched over their speaker's turn."""
    channel = plan.channel if plan.channel is not None else 0
    labels = plan.labels.get(channel, [])
    if len(set(labels) - {MIXED}) < 2:
        return utts
    from callscribe.speakers.words import VoiceMatcher, assign_words, snap_to_turns

    turns = list(zip(plan.speech[channel], labels, strict=True))
    out = utts
    if any(u.words for u in utts if u.channel == channel):
        matcher = VoiceMatcher(lambda: audio.read(channel, 0.0, audio.duration), turns)
        out = assign_words(utts, channel, turns, matcher)
        if len(out) != len(utts):
            notes.append(f"split {len(out) - len(utts)} utterance(s) where the speaker changes between words")
    return sorted(snap_to_turns(out, channel, turns), key=lambda u: (u.start, u.channel))


def _mean_db(levels: ChannelLevels, channel: int, span: Span) -> float:
    db = levels.db.get(channel)
    if db is None or not len(db):
        return -np.inf
    part = db[levels.frames(span)]
    return float(np.mean(part)) if len(part) else -np.inf


def drop_text_bleed(
    utterances: list[Utterance], levels: ChannelLevels | None
) -> tuple[list[Utterance], list[Utterance]]:
    """Drop the utterances that are another channel's voice leaking in: each repeats, at the same time, what
    another channel says, is much quieter than that channel there, and holds next to no frames of its own
    channel's voice. An utterance with its party's own speech in it is never dropped.
    """
    dropped: set[int] = set()
    for i, u in enumerate(utterances):
        if len(text_units(u.text)) < TEXT_BLEED_MIN_UNITS:
            continue
        if levels is not None and own_share(levels.classes(u.channel), u.span) > TEXT_BLEED_MAX_OWN:
            continue
        for j, v in enumerate(utterances):
            if j == i or j in dropped or v.channel == u.channel:
                continue
            if u.span.intersection(v.span) < TEXT_BLEED_TIME_SHARE * max(u.duration, FRAME_S):
                continue
            if repeat_share(u.text, v.text) < TEXT_BLEED_SHARE:
                continue
            inter = Span(max(u.start, v.start), min(u.end, v.end))
            if levels is not None:
                gap = _mean_db(levels, v.channel, inter) - _mean_db(levels, u.channel, inter)
                if gap < TEXT_BLEED_WEAKER_DB:
                    continue
            dropped.add(i)
            break
    kept = [u for i, u in enumerate(utterances) if i not in dropped]
    return kept, [utterances[i] for i in sorted(dropped)]


def _mark_overlaps(utterances: list[Utterance], plan: SpeakerPlan) -> list[Utterance]:
    """Mark utterances spoken while another party talks. On split channels that is where both channels carry
    their own voice at once (frame levels), so a channel's bleed or a late segment end never counts as overlap."""
    both: list[Span] | None = None
    if plan.mode == "split" and plan.levels is not None:
        classes = {c: cls for c in sorted(plan.levels.db) if (cls := plan.levels.classes(c)) is not None}
        both = double_talk(classes)
    out = []
    for i, u in enumerate(utterances):
        if both is not None:
            hit = any(
                u.span.intersection(o) >= OVERLAP_MIN_S
                and any(v.channel != u.channel and v.span.intersection(o) > 0 for v in utterances)
                for o in both
            )
        else:
            hit = any(
                j != i and v.speaker != u.speaker and u.span.intersection(v.span) >= OVERLAP_MIN_S
                for j, v in enumerate(utterances)
            ) or any(u.span.intersection(o) >= OVERLAP_MIN_S for o in plan.overlaps if plan.mode != "split")
        out.append(dataclasses.replace(u, overlap=hit) if hit != u.overlap else u)
    return out


def finalize(transcript: Transcript, audio: AudioSource, plan: SpeakerPlan, options: Options) -> Transcript:
    """After ASR: drop text-level bleed, mark overlaps, name the roles, and list the speakers."""
    notes = list(transcript.notes) + [n for n in plan.notes if n not in transcript.notes]
    utts = [u if u.speaker else dataclasses.replace(u, speaker=_speaker_at(plan, u)) for u in transcript.utterances]
    utts.sort(key=lambda u: (u.start, u.channel))
    if plan.mode in ("mono", "mix"):
        utts = _word_speakers(utts, audio, plan, notes)
    if plan.mode == "split":
        if plan.levels is None:
            plan = dataclasses.replace(plan, levels=measure(audio))
        utts, dropped = drop_text_bleed(utts, plan.levels)
        for u in dropped:
            notes.append(f"dropped channel {u.channel} utterance at {u.start:.1f}s: it repeats the other channel")
    utts = _mark_overlaps(utts, plan)
    speaker_ids = list(dict.fromkeys(u.speaker for u in utts if u.speaker))
    decisions = _decide(utts, speaker_ids, plan, options, notes)
    patterns = load_patterns(options.roles_config)
    final = []
    for u in utts:
        role = decisions[u.speaker].role if u.speaker in decisions else None
        if role in ("agent", "customer") and not options.channel_roles and is_ivr(u.text, patterns):
            role = "ivr"
        final.append(dataclasses.replace(u, role=role))
    talk: dict[str, float] = {}
    for u in final:
        talk[u.speaker or ""] = talk.get(u.speaker or "", 0.0) + u.duration
    speakers = tuple(
        Speaker(
            id=s,
            channel=_channel_of(s, final),
            role=decisions[s].role if s in decisions else None,
            role_confidence=decisions[s].confidence if s in decisions else None,
            evidence=tuple(decisions[s].evidence) if s in decisions else (),
            talk_time=round(talk.get(s, 0.0), 3),
        )
        for s in speaker_ids
    )
    return dataclasses.replace(transcript, utterances=tuple(final), speakers=speakers, notes=tuple(notes))


def _channel_of(speaker: str, utts: list[Utterance]) -> int | None:
    chans = {u.channel for u in utts if u.speaker == speaker}
    return chans.pop() if len(chans) == 1 else None


def _decide(
    utts: list[Utterance], speaker_ids: list[str], plan: SpeakerPlan, options: Options, notes: list[str]
) -> dict[str, RoleDecision]:
    if options.channel_roles:
        if plan.mode == "split":
            out: dict[str, RoleDecision] = {}
            for s in speaker_ids:
                c = _channel_of(s, utts)
                if c is not None and c < len(options.channel_roles):
                    out[s] = RoleDecision(s, options.channel_roles[c], 1.0, [f"channel_roles: channel {c}"])
            if len(out) == len(speaker_ids):
                return out
            notes.append("channel_roles does not name every channel; inferring the rest")
        else:
            notes.append("channel_roles ignored: the call is not split by channel")
    if speaker_ids == [MIXED]:
        notes.append("roles not assigned: the parties were not separated")
        return {}
    patterns = load_patterns(options.roles_config)
    decisions = assign_roles(utts, speaker_ids, patterns)
    unsure = [d for d in decisions.values() if d.unsure]
    if unsure:
        who = ", ".join(f"{d.speaker} {d.role}" for d in unsure)
        why = unsure[0].evidence[-1].removeprefix(UNSURE).strip()
        notes.append(f"roles unsure ({who}), review before grading the agent: {why}")
    return decisions
