from __future__ import annotations

from pathlib import Path

import pytest

from callscribe.text.glossary import Glossary, GlossaryError


def test_parse_terms_and_corrections(tmp_path: Path) -> None:
    f = tmp_path / "hot.txt"
    f.write_text(
        "# products\n宽带套餐\nQwen3-ASR\n冰台新区 => 滨海新区\nwen three => Qwen3\n\n宽带套餐\n", encoding="utf-8"
    )
    g = Glossary.load(f)
    assert g.terms == ("宽带套餐", "Qwen3-ASR", "滨海新区", "Qwen3")
    assert g.corrections == (("冰台新区", "滨海新区"), ("wen three", "Qwen3"))


def test_correct_cjk_anywhere_latin_whole_words() -> None:
    g = Glossary.parse("冰台新区 => 滨海新区\nwen three => Qwen3\ncard => Card")
    assert g.correct("我想问我在冰台新区有房。") == "我想问我在滨海新区有房。"
    assert g.correct("Try Wen Three today") == "Try Qwen3 today"
    assert g.correct("cardboard and card") == "cardboard and Card"


def test_found_terms() -> None:
    g = Glossary.parse("滨海新区\nrefund\n宽带")
    assert g.found("我在滨海新区, please refund it") == ("滨海新区", "refund")
    assert g.found("refunded") == ()


def test_bad_lines_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GlossaryError, match=r"hot\.txt:2"):
        Glossary.parse("ok\n=> right", source="hot.txt")
    with pytest.raises(GlossaryError, match="not found"):
        Glossary.load(tmp_path / "missing.txt")
