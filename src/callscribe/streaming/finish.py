"""A stream that ended, made into a call like any other: a Transcript of its finals, redacted, checked by QA.

The finals, exactly as they were heard (before any live masking), become the utterances; the start message's roles
become the speakers (confidence 1: the client said so). Redaction is the batch pipeline's
(:func:`callscribe.text.pii.redact_transcript`, numbers read across two utterances included), QA is
:func:`callscribe.qa.run_qa` with the server's scorecard.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from callscribe.model import CallInfo, QAResult, Redaction, Speaker, Transcript
from callscribe.options import Options
from callscribe.pipeline import one_line
from callscribe.streaming.session import StreamSession

log = logging.getLogger("callscribe.streaming")

SOURCE = "stream"


def live_options(session: StreamSession) -> Options:
    """The options a stream's transcript was made with (the server's, with the stream's language and terms)."""
    g = session.glossary
    return session.options.replace(language=session.language, hotwords=g.terms, corrections=g.corrections,
                                   redact=("pii",) if session.redact else ())  # fmt: skip


def result_key(session: StreamSession) -> str:
    """The store identity's options half: live transcripts differ from batch ones of the same audio."""
    return f"live-{live_options(session).result_key()}"


def call_name(session: StreamSession) -> str:
    return session.config.name or f"stream-{session.id}"


def assemble(session: StreamSession, *, path: str, sha256: str, engine: str) -> Transcript:
    """The stream's finals as a Transcript (unredacted)."""
    cfg = session.config
    utterances = tuple(sorted((f.utterance for f in session.finals), key=lambda u: (u.start, u.channel)))
    talk: dict[int, float] = {}
    for u in utterances:
        talk[u.channel] = talk.get(u.channel, 0.0) + u.duration
    speakers = tuple(
        Speaker(
            id=f"ch{ch}",
            channel=ch,
            role=cfg.role(ch),
            role_confidence=1.0 if cfg.role(ch) else None,
            evidence=("role given by the stream's start message",) if cfg.role(ch) else (),
            talk_time=round(talk[ch], 3),
        )
        for ch in sorted(talk)
    )
    metadata: dict[str, Any] = {"source": SOURCE, "stream_id": session.id, **cfg.extra}
    info = CallInfo(
        id=call_name(session),
        path=path,
        sha256=sha256,
        duration=round(session.received_s, 3),
        sample_rate=cfg.sample_rate,
        channels=cfg.channels,
        codec=cfg.encoding,
        metadata=metadata,
    )
    options = live_options(session)
    notes = ["transcribed live: one utterance per turn, decoded when the turn ended"]
    if session.disconnected:
        notes.append("the connection dropped before the client said stop; everything received is kept")
    failed = sum(1 for f in session.finals if "live-failed" in f.utterance.flags)
    if failed:
        notes.append(f"{failed} turn(s) could not be decoded live")
    empty = [f.utterance for f in session.finals if not f.utterance.text]
    if empty:
        where = ", ".join(f"{u.start:.1f}-{u.end:.1f}s" for u in empty)
        notes.append(f"{len(empty)} turn(s) of speech came back without text (flagged uncovered: {where})")
    return Transcript(
        call=info,
        utterances=utterances,
        engine=engine,
        language=session.language,
        options={**options.to_dict(), "result_key": result_key(session), "source": SOURCE},
        timings={"live": round(session.received_s, 3)},
        speakers=speakers,
        notes=tuple(notes),
    )


def redact(t: Transcript) -> Transcript:
    """The batch pipeline's redaction of a whole transcript, with the redacted stretches recorded."""
    from callscribe.text.pii import redact_transcript

    t, spans = redact_transcript(t)
    redactions = tuple(Redaction(s.start, s.end, s.kind, s.channel) for s in spans)
    return replace(t, redactions=redactions, notes=(*t.notes, f"redacted {len(redactions)} PII item(s)"))


def check(t: Transcript, options: Options) -> QAResult | None:
    """QA of the finished call (None, logged, when the checks fail: the transcript is still worth keeping)."""
    try:
        from callscribe.qa import run_qa

        return run_qa(t, options.scorecard)
    except Exception as exc:
        log.warning("quality checks of call %s failed: %s", t.call.id, one_line(exc))
        return None
