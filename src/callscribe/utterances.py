"""Engine results → utterances in call time: script conversion, glossary post-correction, uncovered speech flagged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from callscribe.coverage import UNCOVERED
from callscribe.engines.base import Clip, EngineResult
from callscribe.model import Span, Utterance, Word
from callscribe.text import script as zh_script
from callscribe.text.glossary import Glossary


@dataclass
class Assembled:
    utterances: list[Utterance]
    flags: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def build_utterances(
    results: Sequence[tuple[Clip, EngineResult]],
    uncovered: Sequence[tuple[Clip, Span]],
    glossary: Glossary,
    *,
    script: str,
    language: str | None,
) -> Assembled:
    """One utterance per engine segment, sorted by time; speech left without text becomes a flagged empty one.

    Mandarin text is put into ``script`` before the glossary sees it, so ``wrong => right`` pairs and every later stage
    match one form of each word.
    """
    out = Assembled([])
    convert = zh_script.converter(script)
    for clip, result in sorted(results, key=lambda cr: cr[0].index):
        out.flags.update(result.flags)
        lang = result.language or language
        fix = convert if zh_script.applies_to(lang) else (lambda text: text)
        for seg in result.segments:
            text = glossary.correct(fix(seg.text)).strip()
            if not text:
                continue
            words = tuple(
                Word(fix(w.text), round(clip.start + w.start, 3), round(clip.start + w.end, 3), w.probability)
                for w in seg.words
            )
            out.utterances.append(
                Utterance(
                    start=round(clip.start + seg.start, 3),
                    end=round(clip.start + seg.end, 3),
                    channel=clip.channel,
                    speaker=clip.speaker,
                    text=text,
                    words=words,
                    confidence=seg.confidence,
                    language=result.language,
                    flags=result.flags,
                )
            )
    for clip, span in uncovered:
        out.utterances.append(
            Utterance(
                start=round(span.start, 3),
                end=round(span.end, 3),
                channel=clip.channel,
                speaker=clip.speaker,
                text="",
                flags=(UNCOVERED,),
            )
        )
    out.utterances.sort(key=lambda u: (u.start, u.channel))
    if uncovered:
        spans = sorted(span for _, span in uncovered)
        seconds = sum(s.duration for s in spans)
        where = ", ".join(f"{s.start:.1f}-{s.end:.1f}s" for s in spans)
        out.notes.append(f"{seconds:.1f} s of speech has no text after a second decode (flagged uncovered: {where})")
    if out.flags:
        out.notes.append(
            f"engine flags on some clips: {', '.join(sorted(out.flags))}"
            + (" (unresolved: still looping after every retry, cut)" if "unresolved" in out.flags else "")
        )
    return out
