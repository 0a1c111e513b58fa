"""The access scopes (no web framework needed: the CLI's ``keys`` commands use them too)."""

from __future__ import annotations

# ingest: send audio and follow jobs; review: read and search transcripts; pii: fetch recordings; admin: everything.
SCOPES = ("ingest", "review", "pii", "admin")
