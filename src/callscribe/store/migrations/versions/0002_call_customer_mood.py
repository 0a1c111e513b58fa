"""The customer's mood on each call row (negative, neutral, positive, unknown), indexed with the call time, so the
calls of one mood can be listed newest first without reading their QA results.

Existing calls get it from their stored QA result's customer sentiment (``qa_results.customer_sentiment``) with the
thresholds of :func:`callscribe.qa.sentiment.label` when this revision was written (0.2 either side of zero);
calls without QA, or without customer speech, are ``unknown``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

POSITIVE_AT = 0.2


def upgrade() -> None:
    op.add_column("calls", sa.Column("customer_mood", sa.String(16), nullable=False, server_default="unknown"))
    mood = (
        f"CASE WHEN q.customer_sentiment >= {POSITIVE_AT} THEN 'positive' "
        f"WHEN q.customer_sentiment <= -{POSITIVE_AT} THEN 'negative' ELSE 'neutral' END"
    )
    op.execute(
        f"UPDATE calls SET customer_mood = (SELECT {mood} FROM qa_results q WHERE q.call_id = calls.id) "
        "WHERE id IN (SELECT call_id FROM qa_results WHERE customer_sentiment IS NOT NULL)"
    )
    op.create_index("ix_calls_customer_mood_call_time", "calls", ["customer_mood", "call_time"])


def downgrade() -> None:
    op.drop_index("ix_calls_customer_mood_call_time", table_name="calls")
    op.drop_column("calls", "customer_mood")
