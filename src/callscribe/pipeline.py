"""The pipeline: stages wired once, run by the local executor.

decode + speech map → speakers plan → clips → engine (batched across calls) → text (glossary, redaction) →
speakers finalize (bleed, overlaps, roles) → QA. Clips are cut lazily, a window of speech at a time, so a long call
never holds more than one engine batch of clip audio in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from callscribe import coverage
from callscribe.engines import base as engines
from callscribe.engines.base import Clip, Engine, EngineOptions, EngineResult
from callscribe.model import CallInfo, Redaction, Span, Transcript, Utterance, Word
from callscribe.options import Options
from callscribe.terms import check_terms
from callscribe.text.glossary import Glossary
from callscribe.utterances import build_utterances

log = logging.getLogger("callscribe")

# Clips per engine call (the engine batches within it), and the batch size engines are built with when the
# options leave it to them.
MIN_CLIPS_PER_ENGINE_CALL = 32
DEFAULT_ENGINE_BATCH = 8
_NO_AUDIO = np.zeros(0, np.float32)


@dataclass(frozen=True)
class CallError:
    """Why one call failed: a stage name and a one-line reason that names the file."""

    path: str
    stage: str
    reason: str

    def __str__(self) -> str:
        return self.reason if self.reason.startswith(self.path) else f"{self.path}: {self.reason}"


class StageError(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@dataclass
class _Call:
    """A call on its way through: prepared audio, its clip generator, and the results gathered so far."""

    info: CallInfo
    audio: Any  # callscribe.audio.DecodedAudio
    plan: Any  # callscribe.speakers.stage.SpeakerPlan
    clips: Iterator[Clip]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    results: list[tuple[Clip, EngineResult]] = field(default_factory=list)
    uncovered: list[tuple[Clip, Span]] = field(default_factory=list)  # speech left without text after recovery
    exhausted: bool = False


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Pipeline:
    """Transcribe calls with one engine instance; ``run`` batches clips across many calls."""

    def __init__(self, options: Options | dict[str, Any] | None = None, engine: Engine | None = None) -> None:
        self.options = Options.build(options)
        self._engine = engine
        self.engine_name = engine.name if engine is not None else None
        self.engine_reason = ""
        self.glossary = Glossary(self.options.hotwords, self.options.corrections)

    # -- engine -------------------------------------------------------------------------------------------------
    def resolve_engine_name(self) -> str:
        if self.engine_name is None:
            name = self.options.engine
            if name == "auto":
                name, self.engine_reason = engines.resolve_auto(self.options.model)
            self.engine_name = name
        return self.engine_name

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            o = self.options
            self._engine = engines.create(
                self.resolve_engine_name(),
                model=o.model,
                device=o.device,
                compute_type=o.compute_type,
                threads=o.threads,
                hub=o.hub,
                base_url=o.base_url,
                concurrency=o.concurrency,
                batch_size=o.batch_size or DEFAULT_ENGINE_BATCH,
            )
        return self._engine

    def engine_options(self) -> EngineOptions:
        o = self.options
        return EngineOptions(
            language=o.language,
            hotwords=(),  # the engine hears every clip unbiased; the glossary is tried where a term may be (terms.py)
            timestamps=o.timestamps,
            beam_size=o.beam_size,
            batch_size=o.batch_size,
            extra=dict(o.extra),
        )

    # -- per-call stages ----------------------------------------------------------------------------------------
    def prepare(self, source: str | Path | np.ndarray, *, sample_rate: int | None = None, sha: str = "") -> _Call:
        from callscribe import audio as audio_stage
        from callscribe.speakers import stage as speakers

        o = self.options
        if isinstance(source, np.ndarray):
            if sample_rate is None:
                raise ValueError("sample_rate is required with an array")
            prepared = audio_stage.prepare_array(source, sample_rate, o)
            path, call_id = "<array>", "array"
        else:
            path = str(source)
            prepared = audio_stage.prepare(path, o)
            call_id = Path(path).stem
        audio, timings = prepared.audio, dict(prepared.timings)
        t0 = time.perf_counter()
        try:
            plan = speakers.plan_speakers(audio, prepared.speech, o)
        except Exception as exc:
            audio.close()
            raise StageError("speakers", f"{path}: speaker stage failed: {one_line(exc)}") from exc
        timings["speakers"] = time.perf_counter() - t0
        info = CallInfo(
            id=call_id,
            path=path,
            sha256=sha,
            duration=round(audio.duration, 3),
            sample_rate=int(audio.source_rate),
            channels=int(audio.channels),
            codec=str(audio.codec),
        )
        notes = [*getattr(audio, "notes", ()), *plan.notes]
        if not any(plan.speech.get(ch) for ch in plan.speech):
            notes.append("no speech detected")
        clips = audio_stage.iter_clips(
            audio,
            plan.speech,
            call_id=call_id,
            max_clip_s=o.max_clip_s,
            pad_s=o.pad_s,
            normalize=o.normalize,
            denoise=o.denoise,
            labels=plan.labels or None,
        )
        return _Call(info, audio, plan, clips, timings, notes)

    def assemble(self, call: _Call, engine_seconds: float) -> Transcript:
        """Engine results → utterances → text fixes → speakers finalize → QA notes."""
        from callscribe.speakers import stage as speakers

        t0 = time.perf_counter()
        built = build_utterances(
            call.results, call.uncovered, self.glossary, script=self.options.zh_script, language=self.options.language
        )
        checked = check_terms(built.utterances, self.glossary, lambda us: self._reread(call, us, biased=True))
        utterances = checked.utterances
        notes = [*call.notes, *built.notes, *checked.notes]
        languages = [u.language for u in utterances if u.language]
        language = self.options.language or (max(set(languages), key=languages.count) if languages else None)
        timings = dict(call.timings)
        timings["engine"] = round(engine_seconds, 4)
        t = Transcript(
            call=call.info,
            utterances=tuple(utterances),
            engine=self._engine.describe() if self._engine is not None else str(self.engine_name),
            language=language,
        engine_notes = dict.fromkeys(note for _, result in call.results for note in result.notes)  # once per call
        notes += [note for note in engine_notes if note not in notes]
            options={**self.options.to_dict(), "result_key": self.options.result_key()},
            timings=timings,
            hotwords_found=checked.found,
            terms=tuple(checked.hits),
            notes=tuple(notes),
        )
        t1 = time.perf_counter()
        t = speakers.finalize(t, call.audio, call.plan, self.options)
        timings["speakers"] = timings.get("speakers", 0.0) + time.perf_counter() - t1
        t = self._postprocess(t)
        timings["text"] = time.perf_counter() - t0
        return replace(t, timings={k: round(v, 4) for k, v in timings.items()})

    def _postprocess(self, t: Transcript) -> Transcript:
        if "pii" in self.options.redact:
            from callscribe.text.pii import redact_transcript

            t, spans = redact_transcript(t)
            redactions = tuple(Redaction(s.start, s.end, s.kind, s.channel) for s in spans)
            t = replace(t, redactions=redactions, notes=(*t.notes, f"redacted {len(redactions)} PII item(s)"))
        return t

    # -- running ------------------------------------------------------------------------------------------------
    def _hear(
        self, batch: list[tuple[_Call, Clip]], engine_time: dict[int, float]
    ) -> list[tuple[_Call, BaseException]]:
        """Run the engine on a batch and file each result with its call; return the calls that failed.

        When the batch fails, each call's clips are tried on their own, so one bad call does not sink the others.
        """
        t0 = time.perf_counter()
        try:
            results = self.engine.transcribe([c for _, c in batch], self.engine_options())
        except Exception as exc:
            calls = list({id(call): call for call, _ in batch}.values())
            if len(calls) == 1:
                return [(calls[0], exc)]
            failed = []
            for call in calls:
                failed += self._hear([(c, clip) for c, clip in batch if c is call], engine_time)
            return failed
        owner = {id(clip): call for call, clip in batch}
        kept, uncovered = coverage.recover(
            list(zip((c for _, c in batch), results, strict=True)),
            lambda clip, piece, speech: self._cut(owner[id(clip)], clip, piece, speech),
            self._hear_again,
        )
        elapsed = time.perf_counter() - t0
        total = sum(c.duration for _, c in batch) or 1.0
        for (call, clip), pairs, left in zip(batch, kept, uncovered, strict=True):
            engine_time[id(call)] = engine_time.get(id(call), 0.0) + elapsed * clip.duration / total
            for heard, result in pairs:
                heard.audio = _NO_AUDIO  # heard: keep where it was, not its samples (long calls)
                call.results.append((heard, result))
            call.uncovered += [(clip, span) for span in left]
        return []

    def _cut(self, call: _Call, clip: Clip, piece: Span, speech: list[Span]) -> Clip:
        """A piece of ``clip``'s channel read again from the call's audio, for a second decode."""
        from callscribe.audio.segment import ClipPlan, clip_audio

        pad = coverage.PIECE_PAD_S
        start, end = max(0.0, piece.start - pad), min(call.audio.duration, piece.end + pad)
        plan = ClipPlan(clip.channel, piece, tuple(speech), start, end, clip.speaker)
        new = clip_audio(call.audio, plan, normalize=self.options.normalize, denoise=self.options.denoise)
        new.call_id, new.index = clip.call_id, clip.index
        return new

    def _reread(
        self, call: _Call, utterances: Sequence[Utterance], *, biased: bool = False
    ) -> list[tuple[str, tuple[Word, ...]]]:
        """Utterances decoded again (with the glossary when ``biased``): ``(text in the call's script, words)``."""
        from callscribe.text.script import applies_to, converter

        clips = [
            self._cut(call, Clip(call.info.id, u.channel, u.start, _NO_AUDIO, u.speaker), u.span, [u.span])
            for u in utterances
        ]
        convert = converter(self.options.zh_script)
        out = []
        languages = [u.language for u in utterances]
        hotwords = self.glossary.terms if biased else ()
        for clip, result in zip(clips, self._hear_again(clips, languages, hotwords), strict=True):
            fix = convert if applies_to(result.language or self.options.language) else (lambda text: text)
            words = tuple(
                Word(fix(w.text), round(clip.start + w.start, 3), round(clip.start + w.end, 3), w.probability)
                for seg in result.segments
                for w in seg.words
            )
            out.append((fix(result.text), words))
        return out

    def _hear_again(
        self, clips: list[Clip], languages: Sequence[str | None], hotwords: tuple[str, ...] = ()
    ) -> list[EngineResult]:
        """A second decode, each clip in the language its first reading found; when it fails the first reading
        stands, the call goes on."""
        base = replace(self.engine_options(), hotwords=hotwords)
        groups: dict[str | None, list[int]] = {}
        for i, language in enumerate(languages):
            groups.setdefault(self.options.language or language, []).append(i)
        out: list[EngineResult] = [EngineResult(segments=()) for _ in clips]
        try:
            for language, indices in groups.items():
                heard = self.engine.transcribe([clips[i] for i in indices], replace(base, language=language))
                for i, result in zip(indices, heard, strict=True):
                    out[i] = result
            return out
        except Exception as exc:
            log.warning("second decode of %d piece(s) failed, first readings stand: %s", len(clips), one_line(exc))
            return [EngineResult(segments=()) for _ in clips]

    def transcribe(self, source: str | Path | np.ndarray, *, sample_rate: int | None = None) -> Transcript:
        """One call, start to finish (the Python API)."""
        sha = sha256_file(Path(source)) if not isinstance(source, np.ndarray) else ""
        for item in self.run([(source, sha)], sample_rate=sample_rate):
            if isinstance(item, CallError):
                raise StageError(item.stage, str(item))
            return item
        raise RuntimeError("pipeline produced nothing")  # pragma: no cover

    def run(
        self,
        sources: Iterable[tuple[str | Path | np.ndarray, str]],
        *,
        sample_rate: int | None = None,
        workers: int = 2,
        lookahead: int = 8,
        on_clip_batch: Callable[[int], None] | None = None,
    ) -> Iterator[Transcript | CallError]:
        """Yield a Transcript or a CallError per source, batching engine work across calls.

        Decoding and VAD of the next ``lookahead`` calls run in ``workers`` threads while the engine works.
        """
        batch_clips = max(MIN_CLIPS_PER_ENGINE_CALL, self.options.batch_size)
        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="callscribe-prep")
        pending: list[tuple[str, Future[_Call]]] = []
        source_iter = iter(sources)
        active: list[_Call] = []
        engine_time: dict[int, float] = {}

        def refill() -> None:
            while len(pending) < max(1, lookahead):
                try:
                    src, sha = next(source_iter)
                except StopIteration:
                    return
                label = "<array>" if isinstance(src, np.ndarray) else str(src)
                pending.append((label, pool.submit(self.prepare, src, sample_rate=sample_rate, sha=sha)))

        try:
            refill()
            while True:
                batch: list[tuple[_Call, Clip]] = []
                while len(batch) < batch_clips:
                    for call in active:
                        while not call.exhausted and len(batch) < batch_clips:
                            clip = next(call.clips, None)
                            if clip is None:
                                call.exhausted = True
                            else:
                                batch.append((call, clip))
                    if len(batch) >= batch_clips or not pending:
                        break
                    label, fut = pending.pop(0)
                    refill()
                    try:
                        active.append(fut.result())
                    except StageError as exc:
                        yield CallError(label, exc.stage, str(exc))
                    except Exception as exc:
                        yield CallError(label, getattr(exc, "stage", "decode"), _with_path(label, one_line(exc)))
                if batch:
                    for call, exc in self._hear(batch, engine_time):
                        active.remove(call)
                        call.audio.close()
                        yield CallError(call.info.path, "engine", _with_path(call.info.path, one_line(exc)))
                    if on_clip_batch is not None:
                        on_clip_batch(len(batch))
                for call in [c for c in active if c.exhausted]:
                    active.remove(call)
                    try:
                        yield self.assemble(call, engine_time.pop(id(call), 0.0))
                    except Exception as exc:
                        log.debug("assembly failed", exc_info=True)
                        yield CallError(call.info.path, "postprocess", _with_path(call.info.path, one_line(exc)))
                    finally:
                        call.audio.close()
                if not batch and not pending and not active:
                    return
        finally:
            for call in active:
                call.audio.close()
            pool.shutdown(wait=True, cancel_futures=True)


def _with_path(path: str, reason: str) -> str:
    return reason if reason.startswith(path) else f"{path}: {reason}"
