"""The search tokenizer, query parser and snippets (no database)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from callscribe.store import QueryError
from callscribe.store.query import parse
from callscribe.store.tokens import Tokenizer, match_spans, norm, phrase_pattern, snippet

CJK = re.compile(r"[\u4e00-\u9fff]+")


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


def test_document_tokens_cover_words_jieba_cut_across(tok: Tokenizer) -> None:
    tokens = tok.tokens("我的话费多扣了五十块，网络也总断。")
    assert "话费" in tokens  # jieba alone cuts 我/的话/费多
    assert "网络" in tokens and "，" not in tokens and all(" " not in t for t in tokens)
    assert len(tokens) == len(set(tokens))


def test_english_is_lowercased_and_split_at_punctuation(tok: Tokenizer) -> None:
    assert tok.tokens("Hi, my E-Mail is WRONG!") == ["hi", "my", "e", "mail", "is", "wrong"]
    assert tok.tokens("ｉＰｈｏｎｅ坏了")[:1] == ["iphone"]  # full-width letters folded
    assert tok.tokens("，。！") == [] and tok.tokens("") == []


def test_query_terms_are_among_the_tokens_of_any_text_saying_them(tok: Tokenizer) -> None:
    text = "喜欢攀岩、徒步、滑雪的语言爱好者，以及过两天要带着全部家当去景德镇做陶瓷的白日梦想家。"
    doc = set(tok.tokens(text))
    run = text.replace("、", "").replace("，", "").replace("。", "")
    for size in (1, 2, 3, 4):
        for i in range(len(run) - size + 1):
            assert set(tok.query_terms(run[i : i + size]).tokens) <= doc, run[i : i + size]


def test_query_syntax(tok: Tokenizer) -> None:
    q = parse('退款 账单 OR 发票 -投诉 "my bill"', tok)
    shapes = [[(a.tokens, a.negated) for a in clause] for clause in q.clauses]
    assert shapes == [
        [(("退款",), False)],
        [(("账单",), False), (("发票",), False)],
        [(("投诉",), True)],
        [(("my", "bill"), False)],
    ]
    assert q.clauses[3][0].patterns == ("% my bill %",)
    assert q.marks == {"退款", "账单", "发票", "my", "bill"}
    assert parse("AND 退款 OR", tok).clauses == parse("退款", tok).clauses
    for bad in ("-退款", "NOT 退款 NOT 账单", "。。", ""):
        with pytest.raises(QueryError, match="search query"):
            parse(bad, tok)


def test_norm_and_phrase_patterns() -> None:
    assert norm("我的iPhone 坏了，退款！") == " 我的 iphone 坏了退款 "
    assert phrase_pattern("my  Bill") == "% my bill %" and phrase_pattern("退款 申请") == "%退款申请%"
    assert phrase_pattern("，") == ""


def test_snippets_mark_matches_in_the_original_text() -> None:
    assert snippet("我想申请退款，谢谢", ["退款"]) == "我想申请[退款]，谢谢"
    assert snippet("Hi, my bill; billing is WRONG.", ["my", "bill", "wrong"]) == "Hi, [my bill]; billing is [WRONG]."
    assert snippet("ｉＰｈｏｎｅ坏了", ["iphone"]) == "[ｉＰｈｏｎｅ]坏了"
    long = "前面的话" * 40 + "退款" + "后面的话" * 40
    cut = snippet(long, ["退款"], marks=("<b>", "</b>"))
    assert cut.startswith("…") and cut.endswith("…") and "<b>退款</b>" in cut and len(cut) < 140
    assert match_spans("退款退款", ["退款"]) == [(0, 4)]


def _mandarin_texts(evalset: Path, examples: Path) -> list[str]:
    rows = [json.loads(line) for line in (evalset / "manifest.jsonl").read_text("utf-8").splitlines() if line]
    texts = [r["text"] for r in rows if r["lang"] == "zh" and r["text"]]
    for line in (examples / "refs.jsonl").read_text("utf-8").splitlines():
        texts += [t["text"] for t in json.loads(line)["turns"] if CJK.search(t["text"])]
    return texts


@pytest.mark.evalset
def test_fts5_finds_short_words_with_these_tokens_and_not_with_trigrams(
    tok: Tokenizer, evalset: Path, examples_dir: Path
) -> None:
    """The measurement behind the design (docs/store.md): every 2- and 3-character word of real Mandarin
    references, searched in SQLite FTS5 over these tokens (as the store queries) and over trigrams."""
    import jieba

    texts = _mandarin_texts(evalset, examples_dir)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE ours USING fts5(t, n UNINDEXED, tokenize='unicode61 remove_diacritics 0')")
    db.execute("CREATE VIRTUAL TABLE tri USING fts5(t, tokenize='trigram')")
    for i, text in enumerate(texts):
        db.execute("INSERT INTO ours(rowid, t, n) VALUES (?, ?, ?)", (i, " ".join(tok.tokens(text)), norm(text)))
        db.execute("INSERT INTO tri(rowid, t) VALUES (?, ?)", (i, text))
    words = {w for text in texts for w in jieba.lcut(text) if len(w) in (2, 3) and CJK.fullmatch(w)}
    spans = {t[i : i + 2] for t in texts for i in range(len(t) - 1) if CJK.fullmatch(t[i : i + 2])}
    across = {w for w in spans - words if tok.is_word(w)}  # dictionary words jieba cut across (话费 in 我的话费)
    assert len(words) > 50 and len(across) > 10

    def ours(word: str) -> set[int]:
        atom = parse(word, tok).clauses[0][0]
        sql = "SELECT rowid FROM ours WHERE ours MATCH ?" + " AND n LIKE ?" * len(atom.patterns)
        return {r[0] for r in db.execute(sql, (" AND ".join(f'"{t}"' for t in atom.tokens), *atom.patterns))}

    def trigram(word: str) -> set[int]:
        return {r[0] for r in db.execute("SELECT rowid FROM tri WHERE tri MATCH ?", (f'"{word}"',))}

    for word in words | across:
        assert ours(word) == {i for i, t in enumerate(texts) if word in t}, word
    assert not any(trigram(w) for w in words | across if len(w) == 2)
