"""The glossary the search tokenizer uses, and keeping the search index in step with it."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import column, func, select, table, update

from callscribe.store.connect import db_errors
from callscribe.store.models import Base, GlossaryRow, UtteranceRow, utcnow
from callscribe.store.tokens import Tokenizer, phrase_pattern

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class IndexMixin:
    url: Any
    timeout: float
    dialect: str
    tokenizer: Tokenizer

    def _session(self, write: bool = False) -> AbstractContextManager[Session]:  # pragma: no cover - Store's
        raise NotImplementedError

    @db_errors
    def terms(self) -> list[str]:
        """The glossary terms the search tokenizer keeps whole."""
        with self._session() as s:
            return list(s.scalars(select(GlossaryRow.term).order_by(GlossaryRow.term)))

    @db_errors
    def add_terms(self, terms: Iterable[str]) -> int:
        """Add glossary terms: jieba keeps them whole from now on, and the stored utterances that contain one are
        tokenized again in the same transaction. Returns how many terms were new. Other processes see the terms
        when they next open the store."""
        wanted = list(dict.fromkeys(t.strip() for t in terms if t and t.strip()))
        with self._session() as s:
            have = set(s.scalars(select(GlossaryRow.term).where(GlossaryRow.term.in_(wanted))))
        new = [t for t in wanted if t not in have]
        self.tokenizer.add_terms(new)
        if not new:
            return 0
        with self._session(write=True) as s:
            s.add_all(GlossaryRow(term=t, created_at=utcnow()) for t in new)
            for term in new:
                rows = s.execute(
                    select(UtteranceRow.id, UtteranceRow.text, UtteranceRow.tokens).where(
                        UtteranceRow.norm.like(phrase_pattern(term))
                    )
                ).all()
                for r in rows:
                    tokens = " ".join(self.tokenizer.tokens(r.text))
                    if tokens != r.tokens:
                        s.execute(update(UtteranceRow).where(UtteranceRow.id == r.id).values(tokens=tokens))
        return len(new)

    def search_tokens(self, text: str) -> list[str]:
        """The tokens a text is indexed under (to explain a search)."""
        return self.tokenizer.tokens(text)

    @db_errors
    def reindex(self, batch: int = 2000) -> int:
        """Tokenize every utterance again (after a tokenizer change, or glossary terms another process added);
        returns how many utterances changed."""
        changed, last = 0, -1
        while True:
            with self._session() as s:
                rows = s.execute(
                    select(UtteranceRow.id, UtteranceRow.text, UtteranceRow.tokens)
                    .where(UtteranceRow.id > last)
                    .order_by(UtteranceRow.id)
                    .limit(batch)
                ).all()
            if not rows:
                return changed
            last = rows[-1].id
            updates = [(r.id, " ".join(self.tokenizer.tokens(r.text))) for r in rows]
            updates = [(i, tok) for (i, tok), r in zip(updates, rows, strict=True) if tok != r.tokens]
            if updates:
                with self._session(write=True) as s:
                    for i, tok in updates:
                        s.execute(update(UtteranceRow).where(UtteranceRow.id == i).values(tokens=tok))
                changed += len(updates)

    @db_errors
    def counts(self) -> dict[str, int]:
        """Rows per table, and ``search``: utterances in the search index."""
        out: dict[str, int] = {}
        with self._session() as s:
            for name, table in sorted(Base.metadata.tables.items()):
                out[name] = s.scalar(select(func.count()).select_from(table)) or 0
            out["search"] = s.scalar(select(func.count()).select_from(self._index_table())) or 0
        return out

    def _index_table(self) -> Any:
        if self.dialect == "sqlite":
            return table("utterances_fts_docsize")
        return select(UtteranceRow.id).where(column("search_vector").isnot(None)).subquery()
