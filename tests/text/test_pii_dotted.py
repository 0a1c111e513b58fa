"""Phone numbers read digit by digit that Whisper wrote as dotted groups, and dotted numbers that are not phones."""

from __future__ import annotations

import pytest

from callscribe.text.pii import find_pii, redact_text


@pytest.mark.parametrize(
    ("text", "number", "language"),
    [
        ("call me at 5.5.5.867.5.309", "5.5.5.867.5.309", "en"),
        ("My number is 5.5.5.867.5.309.", "5.5.5.867.5.309", None),
        ("it's 4.1.5.555.0.1.3.2, thanks", "4.1.5.555.0.1.3.2", "en"),
        ("我的电话是1.3.8.0013.8000", "1.3.8.0013.8000", "zh"),
    ],
)
def test_dotted_digit_groups_are_a_phone(text: str, number: str, language: str | None) -> None:
    matches = find_pii(text, language)
    assert [(m.kind, m.text) for m in matches] == [("PHONE", number)]
    assert number not in redact_text(text, language)


@pytest.mark.parametrize(
    "text",
    [
        "it costs 3.5 dollars",
        "version 3.5.1 is out",
        "Python 3.11.4.2.1 fixed it",
        "it went up 1.2.3.4 percent",
        "the server is 20.0.0.138",
        "IP 192.168.1.100",
        "order number 5.5.5.867.5.309",
        "release 1.2.3.4567",
        "读数是 2.5.3.867",
    ],
)
def test_decimals_versions_and_addresses_stay(text: str) -> None:
    assert find_pii(text, "en") == []
    assert find_pii(text, "zh") == []
