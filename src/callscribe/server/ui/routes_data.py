"""The desk's data: JSON twins of the pages, the waveform peaks, the audio (masked for viewers without ``pii``) and
the writes (corrections, glossary entries, verdicts, score overrides, review resolution). Writes from a signed-in
browser carry the session's CSRF token in ``X-CSRF-Token``; writes with a bearer key need none."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from callscribe.server.errors import ApiError
from callscribe.server.ui import media
from callscribe.server.ui.access import Viewer, data_viewer
from callscribe.server.ui.desk import build, shown_text
from callscribe.server.ui.listing import asks_for_numbers, calls_page, parse_filters
from callscribe.server.ui.live import snapshot
from callscribe.server.ui.render import compressed, desk_tz, local_time
from callscribe.server.ui.review import (
    HIT_VERDICTS,
    MAX_COMMENT,
    OVERRIDE,
    REOPENED,
    RESOLVED,
    glossary_entry,
    hit_note,
    precision_table,
    propose_entry,
    score_note,
)
from callscribe.server.ui.state import CallMedia, DeskState, correction_stamp, desk
from callscribe.text.pii import redact_text

router = APIRouter(prefix="/ui/api", include_in_schema=False)
MAX_TEXT = 5000
READ = Depends(data_viewer("review"))
WRITE = Depends(data_viewer("review", write=True))


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, code="invalid_value", param=param)


async def _body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        # a cross-site form cannot send this type without the browser asking us first (CORS preflight)
        raise ApiError(415, f"{request.url.path}: send the body as application/json", code="invalid_content_type")
    try:
        body = await request.json()
    except ValueError:
        raise _bad(f"{request.url.path}: the body is not JSON") from None
    if not isinstance(body, dict):
        raise _bad(f"{request.url.path}: the body must be a JSON object")
    return body


def _comment(body: dict[str, Any]) -> str:
    comment = body.get("comment") or ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise _bad(f"comment: expected text of at most {MAX_COMMENT} characters", "comment")
    return comment.strip()


def _record(d: DeskState, call_id: int) -> Any:
    record = d.store.call(call_id)
    if record is None:
        raise ApiError(404, f"no call {call_id}", code="call_not_found")
    return record


def _view(d: DeskState, call_id: int, viewer: Viewer) -> Any:
    store = d.store
    corrections = store.corrections(call_id)
    found = build(_record(d, call_id), corrections, store.verdicts(call_id), pii=viewer.pii)
    remember(d, call_id, found, corrections)
    return found


def remember(d: DeskState, call_id: int, found: Any, corrections: list[Any]) -> CallMedia:
    """Keep what the player's audio and peaks requests will need of this call."""
    call = found.transcript.call
    info = CallMedia(call.sha256, call.duration, found.private_spans, correction_stamp(corrections))
    d.media.put(call_id, info)
    return info


def _media(d: DeskState, call_id: int, *, spans: bool) -> CallMedia:
    """The call's recording identity (and, with ``spans``, its private stretches as of its latest correction)."""
    store = d.store
    cached = d.media.get(call_id)
    if cached is not None and not spans:
        return cached
    corrections = store.corrections(call_id)
    if cached is not None and cached.stamp == correction_stamp(corrections):
        return cached
    return remember(d, call_id, build(_record(d, call_id), corrections, [], pii=False), corrections)


@router.get("/calls")
async def list_calls(request: Request, viewer: Viewer = READ) -> dict[str, Any]:
    d = desk(request)
    f = parse_filters(dict(request.query_params))
    if f.errors:
        raise _bad("; ".join(f.errors))
    if f.q and not viewer.pii and asks_for_numbers(f.q):
        raise ApiError(403, "searching for numbers needs the 'pii' scope", "permission_error", "insufficient_scope")
    from callscribe.store import QueryError

    try:
        result = await run_in_threadpool(calls_page, d.store, f, desk_tz())
    except (QueryError, ValueError) as exc:
        raise _bad(str(exc), "q") from None
    hide = (lambda s: s) if viewer.pii else (lambda s: redact_text(s) if s else s)
    data = []
    for s in result.rows:
        row = jsonable_encoder(dataclasses.asdict(s))
        row.pop("source", None)
        row["name"] = hide(row["name"])
        row["mood"] = result.moods.get(s.id)
        data.append(row)
    return {"object": "list", "data": data, "next_offset": result.next_offset}


@router.get("/calls/{call_id}")
async def get_call(call_id: int, request: Request, viewer: Viewer = READ) -> dict[str, Any]:
    d = desk(request)
    found = await run_in_threadpool(_view, d, call_id, viewer)
    return jsonable_encoder(found.view)


@router.get("/calls/{call_id}/peaks")
async def peaks(call_id: int, request: Request, _: Viewer = READ) -> Response:
    d = desk(request)
    info = await run_in_threadpool(_media, d, call_id, spans=False)
    audio = d.audio_path(info.sha256)
    if audio is None:
        raise ApiError(404, f"call {call_id}: its recording is not kept on this server", code="audio_not_found")
    async with d.media_gate:
        try:
            data = await run_in_threadpool(media.peaks_bytes, d.folder / "peaks", info.sha256, audio, info.duration)
        except ValueError as exc:
            raise ApiError(422, str(exc), code="unsupported_audio") from None
    return compressed(request, data, "application/json", {"Cache-Control": "private, max-age=86400"})


@router.get("/calls/{call_id}/audio")
async def audio(call_id: int, request: Request, viewer: Viewer = READ) -> Response:
    d = desk(request)
    info = await run_in_threadpool(_media, d, call_id, spans=not viewer.pii)
    source = d.audio_path(info.sha256)
    if source is None:
        raise ApiError(404, f"call {call_id}: its recording is not kept on this server", code="audio_not_found")
    mask = () if viewer.pii else info.spans
    async with d.media_gate:
        try:
            path = await run_in_threadpool(media.playback_file, d.folder / "audio", info.sha256, source, mask)
        except ValueError as exc:
            raise ApiError(422, str(exc), code="unsupported_audio") from None
    media_type = "audio/wav" if path.suffix == ".wav" else None
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, no-cache"})


@router.post("/calls/{call_id}/corrections")
async def correct(call_id: int, request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    body = await _body(request)
    index, text = body.get("utterance"), body.get("text")
    if not isinstance(index, int) or isinstance(index, bool):
        raise _bad("utterance: expected the utterance's index (an integer)", "utterance")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise _bad(f"text: expected text of at most {MAX_TEXT} characters", "text")
    text = " ".join(text.split()) if "\n" in text else text.strip()
    d = desk(request)
    store = d.store

    def save() -> dict[str, Any]:
        record = _record(d, call_id)
        corrections = store.corrections(call_id)
        view = build(record, corrections, [], pii=viewer.pii)
        turns = view.view["turns"]
        if not 0 <= index < len(turns):
            raise _bad(f"utterance: call {call_id} has utterances 0-{len(turns) - 1}, not {index}", "utterance")
        if turns[index]["masked"]:
            raise ApiError(403, "this utterance holds personal data: correcting it needs the 'pii' scope",
                           "permission_error", "insufficient_scope")  # fmt: skip
        before = shown_text(record, corrections, index)
        if before == text:
            raise _bad("text: unchanged", "text")
        c = store.add_correction(call_id, before, text, author=viewer.name, utterance=index)
        d.media.drop(call_id)
        d.ledger.add(call_id)
        fresh = build(record, [*corrections, c], [], pii=viewer.pii).view
        proposal = propose_entry(before, text)
        return {"correction": jsonable_encoder(dataclasses.asdict(c)) | {"before": fresh["corrections"][-1]["before"],
                                                                         "after": fresh["corrections"][-1]["after"]},
                "turn": fresh["turns"][index], "at_local": local_time(c.created_at),
                "proposal": None if proposal is None else {"wrong": proposal[0], "right": proposal[1]}}  # fmt: skip

    return await run_in_threadpool(save)


@router.post("/calls/{call_id}/glossary")
async def glossary(call_id: int, request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    body = await _body(request)
    wrong, right = body.get("wrong"), body.get("right")
    if not isinstance(wrong, str) or not isinstance(right, str):
        raise _bad("wrong, right: expected the mis-heard form and its right form as text")
    try:
        entry = glossary_entry(wrong, right)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    d = desk(request)

    def save() -> int:
        _record(d, call_id)
        return int(d.store.add_terms([entry]))

    added = await run_in_threadpool(save)
    return {"entry": entry, "added": bool(added)}


@router.post("/calls/{call_id}/verdicts")
async def verdict(call_id: int, request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    body = await _body(request)
    rule, hit, value = body.get("rule"), body.get("hit"), body.get("verdict")
    comment = _comment(body)
    if value not in HIT_VERDICTS:
        raise _bad(f"verdict: expected one of {', '.join(HIT_VERDICTS)}", "verdict")
    if not isinstance(rule, str) or not rule:
        raise _bad("rule: expected a rule id", "rule")
    if hit is not None and (not isinstance(hit, int) or isinstance(hit, bool)):
        raise _bad("hit: expected the hit's index in the rule's hits, or null for the rule itself", "hit")
    d = desk(request)

    def save() -> dict[str, Any]:
        record = _record(d, call_id)
        found = next((r for r in (record.qa or {}).get("rules", ()) if r["id"] == rule), None)
        if found is None:
            raise _bad(f"rule: call {call_id} has no QA result for rule {rule!r}", "rule")
        if hit is None:
            note = comment
        elif 0 <= hit < len(found.get("hits", ())):
            note = hit_note(hit, float(found["hits"][hit]["start"]), comment)
        else:
            raise _bad(f"hit: rule {rule!r} has {len(found.get('hits', ()))} hit(s) in call {call_id}", "hit")
        v = d.store.add_verdict(call_id, value, reviewer=viewer.name, rule_id=rule, note=note)
        d.ledger.add(call_id)
        return {"verdict": jsonable_encoder(dataclasses.asdict(v)), "at_local": local_time(v.created_at)}

    return await run_in_threadpool(save)


@router.post("/calls/{call_id}/score")
async def override(call_id: int, request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    body = await _body(request)
    score = body.get("score")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise _bad("score: expected a number", "score")
    comment = _comment(body)
    d = desk(request)

    def save() -> dict[str, Any]:
        record = _record(d, call_id)
        top = record.summary.max_score
        if score < 0 or (top is not None and score > top):
            raise _bad(f"score: expected 0 to {top:g}" if top is not None else "score: expected 0 or more", "score")
        v = d.store.add_verdict(call_id, OVERRIDE, reviewer=viewer.name, note=score_note(float(score), comment))
        d.ledger.add(call_id)
        return {"verdict": jsonable_encoder(dataclasses.asdict(v)), "at_local": local_time(v.created_at)}

    return await run_in_threadpool(save)


@router.post("/calls/{call_id}/review")
async def resolve_review(call_id: int, request: Request, viewer: Viewer = WRITE) -> dict[str, Any]:
    body = await _body(request)
    resolved = body.get("resolved")
    if not isinstance(resolved, bool):
        raise _bad("resolved: expected true or false", "resolved")
    comment = _comment(body)
    d = desk(request)

    def save() -> dict[str, Any]:
        _record(d, call_id)
        v = d.store.add_verdict(call_id, RESOLVED if resolved else REOPENED, reviewer=viewer.name, note=comment)
        d.ledger.add(call_id)
        return {"verdict": jsonable_encoder(dataclasses.asdict(v)), "at_local": local_time(v.created_at)}

    return await run_in_threadpool(save)


@router.get("/live")
async def live(request: Request, viewer: Viewer = READ) -> dict[str, Any]:
    d = desk(request)
    calls = snapshot(request.app)
    if not viewer.pii:
        for c in calls:
            for line in c["lines"]:
                line["text"] = redact_text(line["text"])
            c["alerts"] = [redact_text(a) for a in c["alerts"]]
    jobs: list[dict[str, Any]] = []
    if d.has_store:
        store = d.store
        found = await run_in_threadpool(lambda: [*store.jobs(state="running"), *store.jobs(state="queued")])
        for j in found:
            name = str(j.payload.get("name") or "")
            jobs.append({"id": j.id, "state": j.state, "name": name if viewer.pii else redact_text(name),
                         "agent_id": j.payload.get("agent_id"), "queue": j.payload.get("queue"),
                         "created_at": j.created_at.isoformat()})  # fmt: skip
    return {"calls": calls, "jobs": jobs}


@router.get("/precision")
async def precision(request: Request, _: Viewer = Depends(data_viewer("admin"))) -> dict[str, Any]:  # noqa: B008
    d = desk(request)
    store = d.store

    rows, reviewed = await run_in_threadpool(precision_table, store, d.ledger.ids())
    return {
        "reviewed_calls": reviewed,
        "rules": [dataclasses.asdict(r) | {"judged": r.judged, "precision": r.precision} for r in rows],
    }
