"""A database of calls: every call, utterance and QA result in SQLite or PostgreSQL, searchable in Chinese.

from callscribe.store import Store, CallMeta
store = Store("sqlite:///calls.db")                   # or postgresql://user:pw@host/db, default $CALLSCRIBE_DB
call_id = store.add(transcript, qa, meta=CallMeta(agent_id="A17", call_time=when))
hits = store.search('退款 -发票', role="customer")     # SearchHit: call, times, role, text, snippet "[退款]"
report = store.agent_report(by="week")

No SQL outside this package: every surface (CLI, server, review desk) goes through :class:`Store`.
See docs/store.md.
"""

from __future__ import annotations

from callscribe.store.bulk import Added, NewCall
from callscribe.store.connect import DEFAULT_URL, ENV_VAR, masked, resolve_url
from callscribe.store.records import (
    AgentPeriod,
    ApiKey,
    CallMeta,
    CallRecord,
    CallSummary,
    Correction,
    Job,
    QueryError,
    SearchHit,
    StoreError,
    Verdict,
)
from callscribe.store.store import Store

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "Added",
    "AgentPeriod",
    "ApiKey",
    "CallMeta",
    "CallRecord",
    "CallSummary",
    "Correction",
    "Job",
    "NewCall",
    "QueryError",
    "SearchHit",
    "Store",
    "StoreError",
    "Verdict",
    "masked",
    "resolve_url",
]
