"""The first schema: calls, utterances, words, speakers, QA, review, glossary, jobs, API keys, search index.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from callscribe.store.coltypes import BigId, JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = JSONType
BIGID = BigId


def _id(big: bool = False) -> sa.Column:
    return sa.Column("id", BIGID if big else sa.Integer(), nullable=False)


def _fk(column: str, target: str, big: bool = False, ondelete: str = "CASCADE", nullable: bool = False) -> sa.Column:
    return sa.Column(
        column, BIGID if big else sa.Integer(), sa.ForeignKey(target, ondelete=ondelete), nullable=nullable
    )


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "calls",
        _id(),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("options_key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("codec", sa.String(64), nullable=False),
        _time("call_time", nullable=True),
        sa.Column("agent_id", sa.String(128), nullable=True),
        sa.Column("queue", sa.String(128), nullable=True),
        sa.Column("meta", JSON, nullable=False),
        sa.Column("engine", sa.String(255), nullable=False),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("doc", JSON, nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("talk_s", sa.Float(), nullable=False),
        sa.Column("agent_talk_s", sa.Float(), nullable=False),
        sa.Column("customer_talk_s", sa.Float(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.UniqueConstraint("sha256", "options_key", name="uq_calls_sha256_options_key"),
        sqlite_autoincrement=True,
    )
    for col in ("call_time", "agent_id", "queue", "needs_review"):
        op.create_index(f"ix_calls_{col}", "calls", [col])

    op.create_table(
        "utterances",
        _id(big=True),
        _fk("call_id", "calls.id"),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(64), nullable=True),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("overlap", sa.Boolean(), nullable=False),
        sa.Column("flags", JSON, nullable=False),
        sa.Column("redactions", JSON, nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("norm", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_utterances"),
        sa.UniqueConstraint("call_id", "idx", name="uq_utterances_call_id_idx"),
    )
    op.create_index("ix_utterances_role", "utterances", ["role"])

    op.create_table(
        "words",
        _id(big=True),
        _fk("utterance_id", "utterances.id", big=True),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_words"),
        sa.UniqueConstraint("utterance_id", "idx", name="uq_words_utterance_id_idx"),
    )

    op.create_table(
        "speakers",
        _id(),
        _fk("call_id", "calls.id"),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("role_confidence", sa.Float(), nullable=True),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("talk_time", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_speakers"),
        sa.UniqueConstraint("call_id", "idx", name="uq_speakers_call_id_idx"),
    )

    op.create_table(
        "qa_results",
        _id(),
        _fk("call_id", "calls.id"),
        sa.Column("call_key", sa.String(255), nullable=False),
        sa.Column("scorecard", sa.String(128), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("review_reasons", JSON, nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("sentiment", JSON, nullable=False),
        sa.Column("sentiment_overall", sa.Float(), nullable=True),
        sa.Column("customer_sentiment", sa.Float(), nullable=True),
        sa.Column("customer_trend", sa.String(16), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_qa_results"),
        sa.UniqueConstraint("call_id", name="uq_qa_results_call_id"),
    )

    op.create_table(
        "rule_results",
        _id(),
        _fk("qa_id", "qa_results.id"),
        _fk("call_id", "calls.id"),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("graded", sa.Boolean(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("earned", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_results"),
        sa.UniqueConstraint("qa_id", "rule_id", name="uq_rule_results_qa_id_rule_id"),
    )
    op.create_index("ix_rule_results_call_id", "rule_results", ["call_id"])
    op.create_index("ix_rule_results_rule_id_passed", "rule_results", ["rule_id", "passed"])

    op.create_table(
        "rule_hits",
        _id(big=True),
        _fk("rule_result_id", "rule_results.id"),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("utterance", sa.Integer(), nullable=True),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("low_confidence", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rule_hits"),
        sa.UniqueConstraint("rule_result_id", "idx", name="uq_rule_hits_rule_result_id_idx"),
    )

    op.create_table(
        "utterance_sentiment",
        _id(big=True),
        _fk("qa_id", "qa_results.id"),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("utterance", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_utterance_sentiment"),
        sa.UniqueConstraint("qa_id", "idx", name="uq_utterance_sentiment_qa_id_idx"),
    )

    op.create_table(
        "corrections",
        _id(),
        _fk("call_id", "calls.id"),
        sa.Column("utterance", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_corrections"),
    )
    op.create_index("ix_corrections_call_id", "corrections", ["call_id"])

    op.create_table(
        "verdicts",
        _id(),
        _fk("call_id", "calls.id"),
        sa.Column("rule_id", sa.String(128), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_verdicts"),
    )
    op.create_index("ix_verdicts_call_id", "verdicts", ["call_id"])

    op.create_table(
        "glossary_terms",
        _id(),
        sa.Column("term", sa.String(128), nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_glossary_terms"),
        sa.UniqueConstraint("term", name="uq_glossary_terms_term"),
    )

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _fk("call_id", "calls.id", ondelete="SET NULL", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])

    op.create_table(
        "api_keys",
        _id(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        _time("created_at"),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )

    _search_index()


def _search_index() -> None:
    """FTS5 over the pre-joined tokens on SQLite; a generated tsvector with a GIN index on PostgreSQL."""
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE utterances_fts USING fts5(tokens, content='utterances', content_rowid='id', "
            "tokenize='unicode61 remove_diacritics 0')"
        )
        op.execute(
            "CREATE TRIGGER utterances_fts_insert AFTER INSERT ON utterances BEGIN "
            "INSERT INTO utterances_fts(rowid, tokens) VALUES (new.id, new.tokens); END"
        )
        op.execute(
            "CREATE TRIGGER utterances_fts_delete AFTER DELETE ON utterances BEGIN "
            "INSERT INTO utterances_fts(utterances_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); END"
        )
        op.execute(
            "CREATE TRIGGER utterances_fts_update AFTER UPDATE OF tokens ON utterances BEGIN "
            "INSERT INTO utterances_fts(utterances_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); "
            "INSERT INTO utterances_fts(rowid, tokens) VALUES (new.id, new.tokens); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "ALTER TABLE utterances ADD COLUMN search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, tokens)) STORED"
        )
        op.execute("CREATE INDEX ix_utterances_search_vector ON utterances USING gin (search_vector)")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS utterances_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS utterances_fts")
    for table in (
        "api_keys",
        "jobs",
        "glossary_terms",
        "verdicts",
        "corrections",
        "utterance_sentiment",
        "rule_hits",
        "rule_results",
        "qa_results",
        "speakers",
        "words",
        "utterances",
        "calls",
    ):
        op.drop_table(table)
