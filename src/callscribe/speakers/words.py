"""Word-level speakers for a diarized one-signal call (the WhisperX way).

An engine segment can hold more than one speaker: a clip follows the diarization's turns, but its padding, a
backchannel inside a bridged pause, or a turn the diarization drew a little late put the other party's words in
it. With word times (``timestamps="word"``) each word goes to the diarized speaker whose turns cover most of it
(a word no turn covers stays with its utterance's speaker), and an utterance is split where its words change
speaker. A run of words shorter than the speaker encoder's window is then checked by its own voice: its audio
is embedded and compared with each speaker's voice (the mean embedding of their longest turns); it stays with
its speaker unless its neighbour's voice matches it better. Utterances without word times keep the
segment-level speaker.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np

from callscribe.model import Span, Utterance, Word, join_texts
from callscribe.speakers.embed import SAMPLE_RATE, EncoderUnavailable, SpeakerEncoder, get_encoder

log = logging.getLogger("callscribe")

SHORT_RUN_S = 0.8  # runs of one speaker's words shorter than this are checked by their voice
MIN_EMBED_S = 0.5  # a run's audio is widened around its centre to at least this long before embedding
VOICE_MAX_S = 60.0  # speech per speaker (longest turns first) that makes up their voice
Turns = Sequence[tuple[Span, str]]
# (run span, candidate speakers) -> similarity of the run's voice to each candidate's voice
VoiceCheck = Callable[[Span, list[str]], dict[str, float]]


def word_speaker(word: Word, turns: Turns, default: str | None = None) -> str | None:
    """The speaker whose turns cover most of ``word``.

    A word no turn covers (a pause, or a zero-length word time at a turn edge) keeps ``default`` (the speaker of
    its utterance, from the clip it was heard in); without one it goes to the nearest turn.
    """
    if not turns:
        return default
    span = Span(word.start, max(word.end, word.start))
    cover: dict[str, float] = {}
    for turn, label in turns:
        inter = turn.intersection(span)
        if inter > 0:
            cover[label] = cover.get(label, 0.0) + inter
    if cover:
        best = max(cover.values())
        if default in cover and cover[default] >= best - 1e-9:
            return default
        return max(cover, key=lambda k: cover[k])
    if default is not None:
        return default
    mid = (span.start + span.end) / 2
    return min(turns, key=lambda t: max(t[0].start - mid, mid - t[0].end, 0.0))[1]


def _runs(labels: list[str]) -> list[tuple[int, int]]:
    """[start, end) index ranges of equal consecutive labels."""
    out: list[tuple[int, int]] = []
    for i, label in enumerate(labels):
        if out and labels[out[-1][0]] == label:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def recheck_short_runs(words: list[Word], labels: list[str], check: VoiceCheck | None) -> list[str]:
    """Give a run of words shorter than ``SHORT_RUN_S`` to a neighbouring run's speaker when that voice matches
    the run's audio better than its own speaker's voice does."""
    labels = list(labels)
    if check is None:
        return labels
    for a, b in _runs(labels):
        span = Span(words[a].start, words[b - 1].end)
        neighbours = {labels[i] for i in (a - 1, b) if 0 <= i < len(labels)} - {labels[a]}
        if span.duration >= SHORT_RUN_S or not neighbours:
            continue
        sims = check(span, [labels[a], *sorted(neighbours)])
        if not sims:
            continue
        best = max(sims, key=lambda k: sims[k])
        if best != labels[a]:
            log.debug("words %.2f-%.2f: %s -> %s by voice %s", span.start, span.end, labels[a], best, sims)
            labels[a:b] = [best] * (b - a)
    return labels


def _piece(u: Utterance, words: list[Word], first: bool, last: bool, speaker: str) -> Utterance:
    text = u.text if first and last else join_texts(w.text for w in words)
    start = u.start if first else words[0].start
    end = u.end if last else words[-1].end
    return dataclasses.replace(u, start=start, end=max(end, start), text=text, words=tuple(words), speaker=speaker)


def assign_words(
    utterances: Sequence[Utterance], channel: int, turns: Turns, check: VoiceCheck | None = None
) -> list[Utterance]:
    """Utterances of ``channel`` re-labelled word by word from the diarized ``turns`` and split where the speaker
    changes; other channels' utterances and utterances without word times are returned as they are."""
    turns = sorted(turns, key=lambda t: t[0].start)
    out: list[Utterance] = []
    for u in utterances:
        if u.channel != channel or not u.words or not turns:
            out.append(u)
            continue
        words = list(u.words)
        labels = [word_speaker(w, turns, u.speaker) or "S1" for w in words]
        labels = recheck_short_runs(words, labels, check)
        runs = _runs(labels)
        for n, (a, b) in enumerate(runs):
            piece = _piece(u, words[a:b], n == 0, n == len(runs) - 1, labels[a])
            if piece.text:
                out.append(piece)
    return out


def snap_to_turns(utterances: Sequence[Utterance], channel: int, turns: Turns) -> list[Utterance]:
    """Stretch the edges of ``channel``'s utterances over the pauses of their speaker's diarized turn.

    An engine's segment (and with word times, its words) hugs the voiced part; a speaker turn, as turn-level
    references (AMI, call-centre RTTMs) count it, holds the speaker's short pauses too. Each edge moves out to
    the end of the turn of the same speaker it lies in, never past the neighbouring utterance of the channel.
    """
    ordered = sorted(utterances, key=lambda u: (u.start, u.end))
    mine = [i for i, u in enumerate(ordered) if u.channel == channel]
    out = list(ordered)
    for n, i in enumerate(mine):
        u = ordered[i]
        home = [t for t, lab in turns if lab == u.speaker and t.intersection(u.span) > 0]
        if not home:
            continue
        lo = out[mine[n - 1]].end if n > 0 else 0.0
        hi = ordered[mine[n + 1]].start if n + 1 < len(mine) else float("inf")
        start = max(min(u.start, min(t.start for t in home)), min(lo, u.start))
        end = min(max(u.end, max(t.end for t in home)), max(hi, u.end))
        if (start, end) != (u.start, u.end):
            out[i] = dataclasses.replace(u, start=round(start, 3), end=round(end, 3))
    return out


class VoiceMatcher:
    """Scores a stretch of one channel against each diarized speaker's voice (see :func:`recheck_short_runs`).

    ``read`` returns the channel's samples (16 kHz). The signal, its level and the voices are computed on first
    use, so a call whose words need no check costs nothing; without an encoder every check answers ``{}``.
    """

    def __init__(self, read: Callable[[], np.ndarray], turns: Turns) -> None:
        self._read = read
        self._turns = list(turns)
        self._wav: np.ndarray | None = None
        self._voices: dict[str, np.ndarray] = {}
        self._encoder: SpeakerEncoder | None = None
        self._failed = False

    def _setup(self) -> None:
        from callscribe.speakers.diarize import PROFILES, embed_windows, level_speech

        try:
            self._encoder = encoder = get_encoder()
        except EncoderUnavailable as exc:
            log.debug("word speakers: no voice check (%s)", exc)
            self._failed = True
            return
        speech = [s for s, _ in self._turns]
        self._wav = level_speech(self._read(), speech)
        for label in dict.fromkeys(lab for _, lab in self._turns):
            spans = sorted((s for s, lab in self._turns if lab == label), key=lambda s: -s.duration)
            keep, total = [], 0.0
            for s in spans:
                if total >= VOICE_MAX_S:
                    break
                keep.append(s)
                total += s.duration
            windows, emb = embed_windows(self._wav, sorted(keep), encoder, PROFILES[encoder.name])
            if windows:
                mean = emb.mean(axis=0)
                self._voices[label] = mean / max(float(np.linalg.norm(mean)), 1e-9)

    def __call__(self, span: Span, labels: list[str]) -> dict[str, float]:
        if self._wav is None and not self._failed:
            self._setup()
        if self._wav is None or self._encoder is None or any(lab not in self._voices for lab in labels):
            return {}
        mid, half = (span.start + span.end) / 2, max(span.duration, MIN_EMBED_S) / 2
        a, b = max(0, int((mid - half) * SAMPLE_RATE)), min(len(self._wav), int((mid + half) * SAMPLE_RATE))
        if b - a < MIN_EMBED_S * SAMPLE_RATE * 0.9:
            return {}
        vec = self._encoder.embed_mels([self._encoder.mel(self._wav[a:b])])[0]
        return {lab: float(vec @ self._voices[lab]) for lab in labels}
