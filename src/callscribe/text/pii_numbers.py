"""Which digit runs are phone, ID or card numbers: the number checks behind :func:`callscribe.text.pii.find_pii`.

A run (see :mod:`callscribe.text.digit_runs`) is cut into valid numbers covering as many of its digits as possible.
Each number is checked the way it is built: mobile/landline/hotline/North-American patterns for phones, region
code + birth date + GB 11643 check character for ID numbers, network digit + Luhn for cards. A number that fails
only its check character (one digit misheard) is still masked when it is unmistakably shaped like an ID (valid
region and birth date, 18 characters) or follows an ID/card cue; such a match carries ``verified=False``.
"""

from __future__ import annotations

import re

from callscribe.text.digit_runs import DigitRun

MAX_DIGITS = 22  # longest digit string one match may hold (a 19-digit card plus a little slack)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
# First two digits of a resident ID: province-level region codes (GB/T 2260), 71/81/82/83 for Taiwan, Hong Kong,
# Macao and the residence permits of their residents, 91 for foreigners' permanent residence.
_ID_REGIONS = frozenset(
    map(
        str,
        (61, 62, 63, 64, 65, 71, 81, 82, 83, 91),
    )
) | frozenset(
    map(
        str,
        (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54),
    )
)

_MOBILE_GROUPS = {(11,), (3, 4, 4), (3, 8), (4, 3, 4), (3, 3, 5), (7, 4)}
_NANP_GROUPS = {(3, 3, 4)}
_HOTLINE_GROUPS = {(10,), (3, 3, 4), (3, 4, 3)}
_ID_GROUPS = {(18,), (6, 8, 4), (6, 4, 4, 4), (4, 4, 4, 4, 2), (6, 8, 3, 1), (17, 1)}


def number_kinds(run: DigitRun, lang: str | None, cue: str | None) -> list[tuple[int, int, str, bool]]:
    """Cut ``run`` into numbers: ``[(first group, end group, kind, verified)]``.

    ``cue`` is ``"ID"`` or ``"CARD"`` when the words just before the run say what follows ("身份证", "card number").
    """
    n = len(run.groups)
    cuts = [k == 0 or k == n or _can_cut(run, k) for k in range(n + 1)]
    # best[i] = (digits covered from group i on, -numbers used, plan)
    best: list[tuple[int, int, list[tuple[int, int, str, bool]]]] = [(0, 0, [])] * (n + 1)
    for i in range(n - 1, -1, -1):
        choice = best[i + 1]
        if cuts[i]:
            size = 0
            for j in range(i + 1, n + 1):
                size += run.groups[j - 1]
                if size > MAX_DIGITS:
                    break
                if not cuts[j]:
                    continue
                found = _classify(run, i, j, lang, cue)
                if found is None:
                    continue
                covered, count, plan = best[j]
                option = (covered + size, count - 1, [(i, j, *found), *plan])
                if option[:2] > choice[:2]:
                    choice = option
        best[i] = choice
    return _absorb_neighbours(run, best[0][2])


def _absorb_neighbours(run: DigitRun, plan: list[tuple[int, int, str, bool]]) -> list[tuple[int, int, str, bool]]:
    """Stretch each number over spoken digits that flow on from it without a pause (a misheard extra digit)."""
    out: list[tuple[int, int, str, bool]] = []
    for k, (i, j, kind, verified) in enumerate(plan):
        low = out[-1][1] if out else 0
        high = plan[k + 1][0] if k + 1 < len(plan) else len(run.groups)
        while i > low and run.spoken_groups[i - 1] and run.spoken_groups[i] and run.seps[i] in ("", " "):
            i -= 1
        while j < high and run.spoken_groups[j] and run.spoken_groups[j - 1] and run.seps[j] in ("", " "):
            j += 1
        out.append((i, j, kind, verified))
    return out


def _can_cut(run: DigitRun, k: int) -> bool:
    sep = run.seps[k]
    if sep in (" ", ","):
        return True
    return sep == "" and run.spoken_groups[k - 1] and run.spoken_groups[k]


def _classify(run: DigitRun, i: int, j: int, lang: str | None, cue: str | None) -> tuple[str, bool] | None:
    start = sum(run.groups[:i])
    digits = run.digits[start : start + sum(run.groups[i:j])]
    groups = run.groups[i:j]
    spoken = any(run.spoken_groups[i:j])
    if run.chinese:
        lang = "zh"  # North-American formats are never read out in Chinese numerals
    seps = run.seps[i + 1 : j]
    if "." in seps and (spoken or set(seps) != {"."}):
        return None
    if "X" in digits[:-1]:
        return None
    if _is_phone(digits, groups, spoken, lang):
        return "PHONE", True
    id_shaped = _id_shaped(digits)
    if id_shaped and (spoken or groups in _ID_GROUPS or digits[-1] == "X" or cue == "ID"):
        return "ID", _id_checksum(digits)
    if cue == "ID" and 15 <= len(digits) <= 18 and digits[:-1].isdigit():
        return "ID", False  # after "身份证...": a misheard or old 15-digit ID number
    if _is_card(digits) and (spoken or _card_groups(groups)):
        return "CARD", True
    if cue == "CARD" and _card_shaped(digits) and (spoken or _card_groups(groups)):
        return "CARD", False  # after "卡号...": one digit misheard still leaves the card readable
    return None


def _is_phone(d: str, groups: tuple[int, ...], spoken: bool, lang: str | None) -> bool:
    if len(d) < 7 or not d.isdigit():
        return False
    # country prefixes: +86 / 0086 for China, +1 / 1 for North America
    for prefix in ("0086", "86"):
        rest = groups if spoken else groups[1:]
        if (
            d.startswith(prefix)
            and len(d) == len(prefix) + 11
            and (spoken or groups[0] == len(prefix))
            and _is_phone(d[len(prefix) :], rest, spoken, lang)
        ):
            return True
    if len(d) == 11 and re.fullmatch(r"1[3-9]\d{9}", d) and (spoken or groups in _MOBILE_GROUPS):
        return True
    if len(d) == 11 and d[0] == "1" and d[1] in "23456789" and (spoken or groups == (1, 3, 3, 4)):
        return _is_phone(d[1:], groups[1:] if not spoken else groups, spoken, lang)
    if d[0] == "0" and d[1] != "0":
        area = 3 if d[1] in "12" else 4
        local = d[area:]
        if len(local) in (7, 8) and local[0] not in "01":
            rest = groups[1:]
            if spoken or len(groups) == 1 or (groups[0] == area and (len(rest) == 1 or sum(rest) == len(local))):
                return True
    if len(d) == 10 and d[:3] in ("400", "800") and (spoken or groups in _HOTLINE_GROUPS):
        return True
    if len(d) == 10 and d[0] in "23456789" and lang != "zh":
        # spoken digit by digit ("five five five one two three ...") or written (555) 123-4567
        return spoken or groups in _NANP_GROUPS or (groups == (10,) and lang == "en" and d[3] not in "01")
    return len(d) == 7 and d[0] in "23456789" and lang != "zh" and (spoken or groups == (3, 4))


def _id_shaped(d: str) -> bool:
    """18 characters with a real region code and birth date, whatever the check character says."""
    if len(d) != 18 or not d[:17].isdigit() or not (d[17].isdigit() or d[17] == "X"):
        return False
    if d[:2] not in _ID_REGIONS:
        return False
    year, month, day = int(d[6:10]), int(d[10:12]), int(d[12:14])
    return 1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31


def _id_checksum(d: str) -> bool:
    if len(d) != 18 or not d[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(d[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == d[17].upper()


def is_id(d: str) -> bool:
    """A resident ID number whose check character is right."""
    return _id_shaped(d) and _id_checksum(d)


def _luhn(d: str) -> bool:
    total = 0
    for k, c in enumerate(reversed(d)):
        v = int(c)
        if k % 2:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return total % 10 == 0


def _card_shaped(d: str) -> bool:
    if not d.isdigit():
        return False
    if len(d) == 15:
        return d[:2] in ("34", "37")
    return 16 <= len(d) <= 19 and d[0] in "3456"


def _is_card(d: str) -> bool:
    return _card_shaped(d) and _luhn(d)


def _card_groups(groups: tuple[int, ...]) -> bool:
    if len(groups) == 1 or groups in ((4, 6, 5), (6, 13)):
        return True
    return len(groups) >= 4 and all(g == 4 for g in groups[:-1]) and 1 <= groups[-1] <= 4
