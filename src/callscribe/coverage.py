"""Coverage: every second of speech the speech map found ends up under text, or is flagged.

After each engine call, a clip's speech spans are compared with the segments the engine returned. Two ways of losing
speech are seen in practice (Whisper's batched decoding is one pass per window, with no seek):

- a *hole*: a stretch of speech (often the clip's tail) that no segment covers, because the output stopped early;
- a *thin* segment: its times span many seconds of speech, but its text is far too short for them (the decoder closed
  the segment at the window's end after skipping most of it).

Both are decoded again in short pieces, one per pause-delimited stretch of speech and without the first pass's text
as context. A hole gets whatever its pieces say; a thin segment is replaced by its pieces when they say clearly more.
Speech still without text afterwards comes back as ``uncovered`` spans, which the transcript flags.

Engine-agnostic: this looks only at clips and :class:`EngineResult` segments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from callscribe.engines.base import Clip, EngineResult, EngineSegment
from callscribe.model import Span, is_cjk

# A segment is "thin" when it holds fewer syllables per second of speech than this. Conversational Mandarin and
# English run at 3-6 syllables a second; slow speech with hesitations rarely falls under 2.
MIN_SYLLABLES_PER_S = 1.5
THIN_MIN_SPEECH_S = 3.0  # shorter segments are never called thin (a slow "嗯……好的" is fine)
TIME_SLACK_S = 0.3  # engine segment times are this rough at either end
REDO_MIN_S = 0.5  # holes shorter than this are timestamp jitter, not lost speech
FLAG_MIN_S = 1.0  # speech still without text over this long is flagged
PIECE_MAX_S = 12.0  # re-decoded pieces are at most this long
PIECE_PAD_S = 0.2
REPLACE_GAIN = 1.2  # a thin segment is replaced when its pieces hold this many times its syllables...
REPLACE_MIN_EXTRA = 2  # ... and at least this many more
UNCOVERED = "uncovered"  # the flag on an utterance that stands for speech without text

_LATIN_WORD = re.compile(r"[A-Za-z']+")
_VOWELS = re.compile(r"[aeiouy]+", re.IGNORECASE)
_DIGIT = re.compile(r"\d")


def syllables(text: str) -> int:
    """A rough syllable count: a CJK character or a digit is one; a Latin word counts its vowel groups."""
    count = sum(1 for ch in text if is_cjk(ch) and ch.isalnum()) + len(_DIGIT.findall(text))
    for word in _LATIN_WORD.findall(text):
        groups = len(_VOWELS.findall(word))
        if len(word) > 3 and word[-1] in "eE" and word[-2] not in "aeiouylAEIOUYL":
            groups -= 1  # a silent final e: "there", "phone"
        count += max(1, groups)
    return count


def _subtract(spans: Sequence[Span], cover: Sequence[Span]) -> list[Span]:
    """The parts of ``spans`` outside every span of ``cover``."""
    out: list[Span] = []
    cover = sorted(cover)
    for span in spans:
        start = span.start
        for c in cover:
            if c.end <= start or c.start >= span.end:
                continue
            if c.start > start:
                out.append(Span(start, c.start))
            start = max(start, c.end)
            if start >= span.end:
                break
        if start < span.end:
            out.append(Span(start, span.end))
    return out


def _speech_in(speech: Sequence[Span], window: Span) -> list[Span]:
    return [Span(max(s.start, window.start), min(s.end, window.end)) for s in speech if s.overlaps(window)]


def _seconds(spans: Sequence[Span]) -> float:
    return sum(s.duration for s in spans)


@dataclass
class Redo:
    """Speech of one clip to decode again: ``regions`` in call time, and the segments that a better reading replaces."""

    clip: Clip
    result: EngineResult
    holes: list[Span] = field(default_factory=list)
    thin: list[tuple[int, Span]] = field(default_factory=list)  # (segment index, its span in call time)

    @property
    def regions(self) -> list[Span]:
        return [*self.holes, *(span for _, span in self.thin)]


def check(clip: Clip, result: EngineResult) -> Redo | None:
    """What of ``clip``'s speech its result leaves without credible text; ``None`` when all is covered."""
    if not clip.speech:
        return None
    speech = _speech_in(clip.speech, Span(clip.start, clip.end))
    thin: list[tuple[int, Span]] = []
    credible: list[Span] = []
    for i, seg in enumerate(result.segments):
        window = _window(clip, seg)
        if _is_thin(seg, window, speech):
            thin.append((i, Span(max(clip.start, window.start), min(clip.end, window.end))))
        else:
            credible.append(window)
    holes = [h for h in _subtract(speech, credible + [s for _, s in thin]) if h.duration >= REDO_MIN_S]
    if not thin and not holes:
        return None
    return Redo(clip, result, _merge_close(holes), thin)


def _window(clip: Clip, seg: EngineSegment) -> Span:
    """The call time a segment claims, widened by the slack of engine timestamps."""
    return Span(clip.start + seg.start - TIME_SLACK_S, clip.start + max(seg.end, seg.start) + TIME_SLACK_S)


def _is_thin(seg: EngineSegment, window: Span, speech: Sequence[Span]) -> bool:
    inside = _seconds(_speech_in(speech, window))
    return inside >= THIN_MIN_SPEECH_S and syllables(seg.text) < MIN_SYLLABLES_PER_S * inside


def _merge_close(spans: list[Span], gap: float = TIME_SLACK_S) -> list[Span]:
    out: list[Span] = []
    for s in sorted(spans):
        if out and s.start - out[-1].end <= gap:
            out[-1] = out[-1].union(s)
        else:
            out.append(s)
    return out


def pieces(redo: Redo) -> list[tuple[int, Span, list[Span]]]:
    """The regions cut at every pause: ``(region index, piece, speech spans inside)``.

    One piece per stretch of the speech map (a stretch longer than ``PIECE_MAX_S`` is cut evenly: the map found no
    pause inside it), so a decoder that stops after its first sentence cannot lose the next one again.
    """
    out: list[tuple[int, Span, list[Span]]] = []
    for r, region in enumerate(redo.regions):
        for s in _speech_in(redo.clip.speech, region):
            n = max(1, math.ceil(s.duration / PIECE_MAX_S))
            step = s.duration / n
            for k in range(n):
                part = Span(s.start + k * step, s.start + (k + 1) * step if k < n - 1 else s.end)
                out.append((r, part, [part]))
    return out


def merge(
    redo: Redo, heard: Sequence[tuple[int, Clip, EngineResult]]
) -> tuple[list[tuple[Clip, EngineResult]], list[Span]]:
    """Fold the pieces' results into the clip's: ``(clip results to keep, speech spans still uncovered)``.

    ``heard`` holds ``(region index, piece clip, result)`` for the pieces of :func:`pieces`.
    """
    clip = redo.clip
    holes = len(redo.holes)
    extra: list[tuple[Clip, EngineResult]] = []
    replaced: set[int] = set()
    confirmed: set[int] = set()
    for r, (index, _span) in enumerate(redo.thin, start=holes):
        inside = [(c, res) for region, c, res in heard if region == r]
        new = sum(syllables(res.text) for _, res in inside)
        old = syllables(redo.result.segments[index].text)
        if new >= old * REPLACE_GAIN and new >= old + REPLACE_MIN_EXTRA:
            replaced.add(index)
            extra += inside
        elif new >= old:
            confirmed.add(index)
    extra += [(c, res) for region, c, res in heard if region < holes and res.segments]
    kept = [s for i, s in enumerate(redo.result.segments) if i not in replaced]
    results = [(clip, _with(redo.result, kept, "recovered" if extra else ""))]
    results += [(c, _with(res, list(res.segments), "recovered")) for c, res in extra]
    speech = _speech_in(clip.speech, Span(clip.start, clip.end))
    covered = [
        _window(c, seg)
        for c, res in results
        for seg in res.segments
        if seg.text.strip() and not _is_thin(seg, _window(c, seg), speech)
    ]
    # A thin segment whose pieces said as much, no more, was read twice alike: its time counts as covered.
    covered += [span for i, span in redo.thin if i in confirmed]
    uncovered = [s for s in _merge_close(_subtract(speech, covered)) if s.duration >= FLAG_MIN_S]
    return results, uncovered


def recover(
    heard: Sequence[tuple[Clip, EngineResult]],
    cut: Callable[[Clip, Span, list[Span]], Clip],
    hear: Callable[[list[Clip], list[str | None]], list[EngineResult]],
) -> tuple[list[list[tuple[Clip, EngineResult]]], list[list[Span]]]:
    """Check every clip's coverage, decode what is missing again in one engine call, and merge.

    ``cut(clip, piece, speech)`` reads a piece of ``clip``'s channel as a new clip; ``hear(clips, languages)`` runs
    the engine, each clip in the language its first reading found.
    Returns, per input clip, the results to keep (the clip's own first) and the speech spans still uncovered.
    """
    redos = [check(c, r) for c, r in heard]
    jobs = [
        (k, region, cut(redos[k].clip, piece, speech))  # type: ignore[union-attr]
        for k, redo in enumerate(redos)
        if redo is not None
        for region, piece, speech in pieces(redo)
    ]
    # Pieces are heard in their clip's language: a short piece alone is too little to detect it from.
    languages = [heard[k][1].language for k, _, _ in jobs]
    results = hear([clip for _, _, clip in jobs], languages) if jobs else []
    out: list[list[tuple[Clip, EngineResult]]] = []
    uncovered: list[list[Span]] = []
    for k, (clip, result) in enumerate(heard):
        redo = redos[k]
        if redo is None:
            out.append([(clip, result)])
            uncovered.append([])
            continue
        mine = [(region, c, r) for (j, region, c), r in zip(jobs, results, strict=True) if j == k]
        kept, left = merge(redo, mine)
        out.append(kept)
        uncovered.append(left)
    return out, uncovered


def _with(result: EngineResult, segments: list[EngineSegment], flag: str) -> EngineResult:
    flags = result.flags if not flag or flag in result.flags else (*result.flags, flag)
    return EngineResult(segments=tuple(segments), language=result.language, flags=flags, notes=result.notes)
