"""Search queries: parsed once, turned into a SQL condition for SQLite (FTS5) or PostgreSQL (tsvector).

Syntax: words separated by spaces must all occur (AND); ``a OR b`` (or ``a | b``) either; ``-word`` or
``NOT word`` must not occur; ``"..."`` a phrase: its words adjacent and in order. OR binds tighter than the
implicit AND (``退款 账单 OR 发票`` is 退款 AND (账单 OR 发票)). A word is tokenized like the utterances (jieba
search mode, dictionary bigrams and single characters, see :mod:`callscribe.store.tokens`) and matched as
written: Chinese text in a query is found where it was said, with its characters in that order (``退款账单`` finds
退款账单, not 退款 ... 账单: type ``退款 账单`` for both anywhere); English words match whole words. Operators are
upper case; ``or`` and ``not`` are ordinary words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FunctionElement,
    and_,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from callscribe.store.models import UtteranceRow
from callscribe.store.records import QueryError
from callscribe.store.tokens import Tokenizer, phrase_pattern

_LEX = re.compile(r'"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class Atom:
    tokens: tuple[str, ...]  # all among the utterance's search tokens
    patterns: tuple[str, ...] = ()  # LIKE patterns over utterances.norm (CJK runs as written, phrases)
    marks: tuple[str, ...] = ()  # what snippets mark
    negated: bool = False


@dataclass(frozen=True)
class Query:
    """``clauses`` are AND-ed; the atoms of one clause are OR-ed."""

    text: str
    clauses: tuple[tuple[Atom, ...], ...]

    @property
    def marks(self) -> set[str]:
        """What a hit's snippet marks: the words and CJK runs of the positive terms."""
        return {m for clause in self.clauses for a in clause if not a.negated for m in a.marks}


def parse(query: str, tokenizer: Tokenizer) -> Query:
    """Parse a query; :class:`QueryError` (one line) when it has nothing to look for."""
    items: list[tuple[str, str]] = []  # (kind, value): kind is "word", "phrase", "or", "not"
    for m in _LEX.finditer(query):
        phrase, word = m.group(1), m.group(2)
        if phrase is not None:
            items.append(("phrase", phrase))
        elif word in ("OR", "|"):
            items.append(("or", word))
        elif word == "NOT":
            items.append(("not", word))
        elif word == "AND":
            continue
        elif word.startswith("-") and len(word) > 1:
            items.append(("not", "-"))
            items.append(("word", word[1:]))
        else:
            items.append(("word", word))
    clauses: list[list[Atom]] = []
    negate, join = False, False
    for kind, value in items:
        if kind == "not":
            negate = True
            continue
        if kind == "or":
            join = bool(clauses)
            continue
        atom = _atom(kind, value, negate, tokenizer)
        negate = False
        if atom is None:
            join = False
            continue
        if join and clauses:
            clauses[-1].append(atom)
        else:
            clauses.append([atom])
        join = False
    shown = " ".join(query.split())
    if not clauses:
        raise QueryError(f"search query {shown!r} has no words to look for")
    if not any(not a.negated for c in clauses for a in c):
        raise QueryError(f"search query {shown!r} only says what to leave out (NOT / -word): add a word to find")
    return Query(query, tuple(tuple(c) for c in clauses))


def _atom(kind: str, value: str, negated: bool, tokenizer: Tokenizer) -> Atom | None:
    terms = tokenizer.query_terms(value)
    if not terms.tokens:
        return None
    if kind == "phrase":
        patterns: tuple[str, ...] = (phrase_pattern(value),)
    else:
        patterns = tuple(f"%{run}%" for run in terms.runs)
    return Atom(terms.tokens, patterns, terms.marks, negated)


class unindexed(FunctionElement[Any]):
    """A column that SQLite must not use an index for (``+column``); the column itself elsewhere."""

    name = "unindexed"
    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _plain(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(unindexed, "sqlite")
def _plus(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


def fts5_string(tokens: tuple[str, ...]) -> str:
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in tokens)


def _tsquery_string(tokens: tuple[str, ...]) -> str:
    return " & ".join("'" + t.replace("'", "''") + "'" for t in tokens)


def condition(q: Query, dialect: str, probe: bool | str = False) -> ColumnElement[bool]:
    """The SQL condition on ``utterances`` that a matching utterance meets. ``probe``: each candidate utterance is
    checked instead of reading from the matches (see :func:`index_match` and :mod:`callscribe.store.plan`)."""
    if dialect not in ("sqlite", "postgresql"):  # pragma: no cover - Store refuses other databases first
        raise QueryError(f"search is not supported on {dialect}")
    ands = []
    for clause in q.clauses:
        ors = [_atom_condition(a, dialect, probe) for a in clause]
        ands.append(or_(*ors) if len(ors) > 1 else ors[0])
    return and_(*ands) if ands else false()


_PLAIN_TOKEN = re.compile(r"[a-z0-9\u3400-\u4dbf\u4e00-\u9fff]+")  # what FTS5's unicode61 keeps as one token


def index_match(tokens: tuple[str, ...], dialect: str, probe: bool | str = False) -> ColumnElement[bool]:
    """Utterances whose search tokens include all of ``tokens``. ``probe`` (true): checked on each candidate
    utterance rather than read from the index, so the plan walks the calls newest first. SQLite: ``+id IN
    (matches)``, the set of matches made once; ``"row"``: in the row's own ``tokens`` (a space-separated token
    list, what FTS5 indexed) where every token is plain letters, digits or CJK, which FTS5 sees the same way, so
    the matches are never all read. PostgreSQL: ``ts_match_vq(vector, query)``, the function behind ``@@``, which
    no index serves."""
    if dialect == "sqlite":
        if probe == "row" and all(_PLAIN_TOKEN.fullmatch(t) for t in tokens):
            spaced = literal(" ") + UtteranceRow.tokens + literal(" ")
            return and_(*(func.instr(spaced, f" {t} ") > 0 for t in tokens))
        fts = table("utterances_fts")
        match = literal_column("utterances_fts").op("MATCH", return_type=Boolean)(fts5_string(tokens))
        ids = select(literal_column("rowid")).select_from(fts).where(match)
        return (unindexed(UtteranceRow.id) if probe else UtteranceRow.id).in_(ids)
    vector = literal_column("utterances.search_vector")
    query = func.to_tsquery("simple", _tsquery_string(tokens))
    if probe:
        return func.ts_match_vq(vector, query, type_=Boolean)
    return vector.op("@@", return_type=Boolean)(query)


def _atom_condition(atom: Atom, dialect: str, probe: bool | str) -> ColumnElement[bool]:
    found = index_match(atom.tokens, dialect, probe)
    if atom.patterns:
        found = and_(found, *(UtteranceRow.norm.like(p) for p in atom.patterns))
    return not_(found) if atom.negated else found
