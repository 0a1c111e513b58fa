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
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from callscribe import call_language, coverage
from callscribe.clip_pool import ClipPool
from callscribe.engines import base as engines
from callscribe.engines.base import Clip, Engine, EngineOptions, EngineResult
from callscribe.model import CallInfo, Redaction, Span, Transcript, Utterance, Word
from callscribe.options import Options
from callscribe.pipeline_types import CallError, StageError, _Call, one_line, sha256_file
from callscribe.terms import check_terms
from callscribe.text.glossary import Glossary
from callscribe.utterances import build_utterances

log = logging.getLogger("callscribe")

# Clips per engine call at least (the engine batches within it). Engines are built with the options' batch size;
# 0 leaves it to them (qwen3 sizes it from the device's free memory, whisper from the device).
MIN_CLIPS_PER_ENGINE_CALL = 32
# Clips gathered across calls before any of them is heard, in engine batches (engines that pad rows to a batch
# say how many with a ``batch_size`` attribute). The pool is sorted by duration and heard one batch per engine call,
# so each batch holds clips of similar length: less padding, no short clip decoding until a long one ends.
POOL_FACTOR = 4
# Calls whose decoded audio stays open while their clips wait in the pool (besides ``lookahead`` being prepared).
MAX_OPEN_CALLS = 64
# False hands the engine the whole pool in one call and lets it sort (the benchmark compares the two).
BUCKETS_IN_PIPELINE = True
_NO_AUDIO = np.zeros(0, np.float32)


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
                batch_size=o.batch_size,
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
        engine_notes = dict.fromkeys(note for _, result in call.results for note in result.notes)  # once per call
        notes += [note for note in engine_notes if note not in notes]
        languages = [u.language for u in utterances if u.language]
        language = self.options.language or (max(set(languages), key=languages.count) if languages else None)
        timings = dict(call.timings)
        timings["engine"] = round(engine_seconds, 4)
        t = Transcript(
            call=call.info,
            utterances=tuple(utterances),
            engine=self._engine.describe() if self._engine is not None else str(self.engine_name),
            language=language,
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

    def _with_language(self, call: _Call, engine_time: dict[int, float]) -> _Call:
        if self.options.language is None and isinstance(self.engine, engines.DetectsLanguage):
            engine_time[id(call)] = call_language.tag(call, self.engine)
        return call

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
        pool_factor: int | None = None,
        fair: bool = False,
    ) -> Iterator[Transcript | CallError]:
        """Yield a Transcript or a CallError per source as each call finishes, batching engine work across calls.

        Decoding and VAD of the next ``lookahead`` calls run in ``workers`` threads while the engine works. Clips
        wait in a pool gathered across calls. When the engine pads rows to a batch of ``B`` (it has ``batch_size``)
        the pool holds ``max(MIN_CLIPS_PER_ENGINE_CALL, pool_factor * B)`` clips (``pool_factor`` defaults to
        ``POOL_FACTOR``); it is sorted by duration and heard one batch per engine call, so a batch holds clips of
        similar length from several calls. Other engines get ``max(MIN_CLIPS_PER_ENGINE_CALL, batch_size)`` clips
        (or their ``clips_per_call``) per call in arrival order, or with ``fair`` in turns (:meth:`ClipPool.fill`).
        Sources are asked for more on every pass, so one that turns up meanwhile (the service) joins the run. A call
        is yielded as soon as its last clip is heard; when an engine call fails, each call in it is tried alone.

        Memory: the audio of at most one pool of clips (each at most ``max_clip_s``; a heard clip drops its
        samples) plus one clip read ahead per call, and the decoded audio of at most ``MAX_OPEN_CALLS`` calls with
        clips in the pool besides the ``lookahead`` being prepared.
        """
        executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="callscribe-prep")
        pending: list[tuple[str, Future[_Call]]] = []
        source_iter = iter(sources)
        active: list[_Call] = []
        engine_time: dict[int, float] = {}
        pool: ClipPool[_Call] = ClipPool()
        sizing: list[int | None] = []  # the engine's batch, once known (None: it does not batch rows)
        factor = POOL_FACTOR if pool_factor is None else max(1, pool_factor)

        def refill() -> None:
            while len(pending) < max(1, lookahead):
                try:
                    src, sha = next(source_iter)
                except StopIteration:
                    return
                label = "<array>" if isinstance(src, np.ndarray) else str(src)
                pending.append((label, executor.submit(self.prepare, src, sample_rate=sample_rate, sha=sha)))

        def engine_batch() -> int | None:
            if not sizing:  # asked once a call is ready: a run whose every file fails never loads the engine
                try:
                    size = getattr(self.engine, "batch_size", None)
                except Exception:  # _hear meets the same error and reports it for every call
                    size = None
                sizing.append((self.options.batch_size or size) if isinstance(size, int) and size > 0 else None)
            return sizing[0]

        def clips_per_call() -> int:  # engines that do not pad rows; one may ask for fewer (it hears one at a time)
            preferred = getattr(self.engine, "clips_per_call", None)
            floor = preferred if isinstance(preferred, int) and preferred > 0 else MIN_CLIPS_PER_ENGINE_CALL
            return max(floor, self.options.batch_size)

        def admit(label: str, fut: Future[_Call]) -> Iterator[CallError]:
            try:
                active.append(self._with_language(fut.result(), engine_time))
            except StageError as exc:
                yield CallError(label, exc.stage, str(exc))
            except Exception as exc:
                yield CallError(label, getattr(exc, "stage", "decode"), _with_path(label, one_line(exc)))

        def gather() -> Iterator[CallError]:
            while True:
                refill()  # a feed that ran dry may hold new sources now (the service's queue)
                while fair and pending and pending[0][1].done() and len(active) < MAX_OPEN_CALLS:
                    yield from admit(*pending.pop(0))  # prepared meanwhile: its clips take turns from now on
                if active:
                    batch = engine_batch()
                    size = max(MIN_CLIPS_PER_ENGINE_CALL, factor * batch) if batch else clips_per_call()
                    pool.fill(active, size, fair)
                    if len(pool) >= size or len(active) >= MAX_OPEN_CALLS:
                        return
                if not pending:
                    return
                yield from admit(*pending.pop(0))

        def drop(call: _Call) -> None:
            active[:] = [c for c in active if c is not call]
            pool.drop(call)

        def finish() -> Iterator[Transcript | CallError]:
            for call in [c for c in active if pool.done(c)]:
                drop(call)
                try:
                    yield self.assemble(call, engine_time.pop(id(call), 0.0))
                except Exception as exc:
                    log.debug("assembly failed", exc_info=True)
                    yield CallError(call.info.path, "postprocess", _with_path(call.info.path, one_line(exc)))
                finally:
                    call.audio.close()

        try:
            refill()
            while True:
                yield from gather()
                if not len(pool) and not pending and not active:
                    return
                for group in pool.groups(sizing[0] if sizing and BUCKETS_IN_PIPELINE else None):
                    group = [(call, clip) for call, clip in group if pool.holds(call)]  # its call may have failed
                    if not group:
                        continue
                    for call, exc in self._hear(group, engine_time):
                        drop(call)
                        engine_time.pop(id(call), None)
                        call.audio.close()
                        yield CallError(call.info.path, "engine", _with_path(call.info.path, one_line(exc)))
                    pool.heard(group)
                    if on_clip_batch is not None:
                        on_clip_batch(len(group))
                    yield from finish()
                yield from finish()  # calls without speech
        finally:
            for call in active:
                call.audio.close()
            executor.shutdown(wait=True, cancel_futures=True)


def _with_path(path: str, reason: str) -> str:
    return reason if reason.startswith(path) else f"{path}: {reason}"
