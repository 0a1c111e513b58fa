"""The desk's pages: calls ``/``, a call ``/calls/{id}``, agents ``/agents`` (+ ``/agents.xlsx``), live calls
``/live`` and rule precision ``/admin``. Each also answers ``Authorization: Bearer KEY``; without a key or session
a page answers with the sign-in form."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from callscribe.server.errors import ApiError
from callscribe.server.ui import agents as agent_pages
from callscribe.server.ui.access import Viewer, here, resolve
from callscribe.server.ui.charts import sentiment_svg
from callscribe.server.ui.desk import build
from callscribe.server.ui.i18n import request_lang, translator
from callscribe.server.ui.listing import asks_for_numbers, calls_page, parse_filters
from callscribe.server.ui.live import snapshot
from callscribe.server.ui.render import desk_tz, page
from callscribe.server.ui.review import RulePrecision, precision_table
from callscribe.server.ui.routes_data import remember
from callscribe.server.ui.state import desk

router = APIRouter(include_in_schema=False)


def gate(request: Request, scope: str = "review") -> Viewer | Response:
    """The viewer, or the response to send instead: the sign-in form (303) or a 403 page."""
    try:
        viewer = resolve(request)
    except ApiError:
        viewer = None
    if viewer is None:
        return RedirectResponse("/login?next=" + quote(here(request), safe=""), status_code=303)
    if not viewer.principal.allows(scope):
        t = translator(request_lang(request))
        return page(request, "message.html", viewer, status=403, title=t("err.forbidden.title"),
                    message=t("err.forbidden", scope=scope))  # fmt: skip
    request.state.principal = viewer.principal
    return viewer


def no_store(request: Request, viewer: Viewer) -> Response:
    t = translator(request_lang(request))
    return page(request, "message.html", viewer, status=501, title=t("err.no_store.title"), message=t("err.no_store"))


@router.get("/")
async def calls(request: Request) -> Response:
    viewer = gate(request)
    if not isinstance(viewer, Viewer):
        return viewer
    d = desk(request)
    if not d.has_store:
        return no_store(request, viewer)
    f = parse_filters(dict(request.query_params))
    live = snapshot(request.app) if f.state in ("live", "all") else []
    error = ""
    result = None
    if f.q and not viewer.pii and asks_for_numbers(f.q):
        error = translator(request_lang(request))("calls.no_number_search")
    elif f.state != "live":
        from callscribe.store import QueryError

        try:
            result = await run_in_threadpool(calls_page, d.store, f, desk_tz())
        except (QueryError, ValueError) as exc:
            error = str(exc)
    return page(request, "calls.html", viewer, f=f, result=result, live=live, error=error)


@router.get("/calls/{call_id}")
async def call(call_id: int, request: Request) -> Response:
    viewer = gate(request)
    if not isinstance(viewer, Viewer):
        return viewer
    d = desk(request)
    if not d.has_store:
        return no_store(request, viewer)
    store = d.store

    def load() -> Any:
        record = store.call(call_id)
        if record is None:
            return None
        corrections = store.corrections(call_id)
        found = build(record, corrections, store.verdicts(call_id), pii=viewer.pii)
        remember(d, call_id, found, corrections)
        return found, record

    found = await run_in_threadpool(load)
    t = translator(request_lang(request))
    if found is None:
        return page(request, "message.html", viewer, status=404, title=t("err.not_found.title"),
                    message=t("err.no_call", id=call_id))  # fmt: skip
    view, record = found
    labels = {"customer": t("role.customer"), "agent": t("role.agent"), "none": t("call.no_sentiment"),
              "title": t("call.sentiment")}  # fmt: skip
    chart = sentiment_svg(view.view["sentiment"]["points"], record.summary.duration, labels)
    has_audio = d.audio_path(record.summary.sha256) is not None
    return page(request, "call.html", viewer, c=view.view, chart=chart, has_audio=has_audio)


@router.get("/agents")
async def agents(request: Request) -> Response:
    viewer = gate(request)
    if not isinstance(viewer, Viewer):
        return viewer
    d = desk(request)
    if not d.has_store:
        return no_store(request, viewer)
    q = agent_pages.parse(dict(request.query_params))
    try:
        periods = await run_in_threadpool(agent_pages.report, d.store, q, desk_tz())
        error = ""
    except ValueError as exc:
        periods, error = [], str(exc)
    found = agent_pages.rows(periods)
    return page(request, "agents.html", viewer, q=q, rows=found, error=error, chart=agent_pages.chart(found),
                rules=agent_pages.rules_table(periods))  # fmt: skip


@router.get("/agents.xlsx")
async def agents_xlsx(request: Request) -> Response:
    viewer = gate(request)
    if not isinstance(viewer, Viewer):
        return viewer
    q = agent_pages.parse(dict(request.query_params))
    store = desk(request).store
    data = await run_in_threadpool(
        lambda: agent_pages.xlsx(agent_pages.rows(agent_pages.report(store, q, desk_tz())), q.by)
    )
    disposition = f'attachment; filename="agents-by-{q.by}.xlsx"'
    headers = {"Content-Disposition": disposition, "Cache-Control": "no-store"}
    return Response(data, media_type=agent_pages.XLSX_TYPE, headers=headers)


@router.get("/live")
async def live(request: Request) -> Response:
    viewer = gate(request)
    if not isinstance(viewer, Viewer):
        return viewer
    return page(request, "live.html", viewer)


@router.get("/admin")
async def admin(request: Request) -> Response:
    viewer = gate(request, "admin")
    if not isinstance(viewer, Viewer):
        return viewer
    d = desk(request)
    if not d.has_store:
        return no_store(request, viewer)
    store = d.store

    def figures() -> tuple[list[RulePrecision], int, list[str]]:
        table, reviewed = precision_table(store, d.ledger.ids())
        return table, reviewed, store.terms()

    table, reviewed, terms = await run_in_threadpool(figures)
    return page(request, "admin.html", viewer, table=table, reviewed=reviewed,
                entries=[x for x in terms if "=>" in x], terms=[x for x in terms if "=>" not in x])  # fmt: skip
