"""The review desk over HTTP on a real ``callscribe serve``: sign-in and sessions, CSRF, scopes, the calls page's
filters and search, the call page's data with and without ``pii`` (text and audio), writes landing in the store,
the agents page and its workbook, the admin page."""

from __future__ import annotations

import io
import re
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
from ui_desk_fixtures import API_KEY, ENGINES, OPEN_BILLING, PHONE_FORMS, Desk, running_desk

from callscribe.store import Store

pytestmark = pytest.mark.evalset


@pytest.fixture(scope="module", params=ENGINES)
def desk(request: pytest.FixtureRequest, evalset: Path, examples_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    with running_desk(tmp_path_factory.mktemp("desk"), evalset, examples_dir, request.param) as d:
        yield d


def _rows(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-call="(\d+)">', html)]


def _get(desk: Desk, path: str, key: str = API_KEY) -> httpx.Response:
    return httpx.get(desk.url + path, headers=desk.headers(key), timeout=60)


def test_sign_in_makes_a_strict_httponly_session_and_writes_need_its_csrf_token(desk: Desk) -> None:
    with httpx.Client(base_url=desk.url, timeout=60) as browser:
        first = browser.get("/", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"].startswith("/login?next=")
        form = browser.get("/login?next=/agents")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        bad = browser.post("/login", data={"key": "not-a-key", "csrf": csrf, "next": "/agents"}, follow_redirects=False)
        assert bad.status_code == 401 and "cs_session" not in bad.headers.get("set-cookie", "")
        csrf = re.search(r'name="csrf" value="([^"]+)"', bad.text).group(1)
        ok = browser.post("/login", data={"key": desk.review_key, "csrf": csrf, "next": "https://evil.example/"},
                          follow_redirects=False)  # fmt: skip
        assert ok.status_code == 303 and ok.headers["location"] == "/"  # never off-site
        cookie = ok.headers["set-cookie"]
        assert "cs_session=" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert desk.review_key not in cookie
        page = browser.get("/")
        assert page.status_code == 200 and "desk-review" in page.text
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)
        call = desk.ids["zh_one"]
        body = {"resolved": True, "comment": "checked"}
        assert browser.post(f"/ui/api/calls/{call}/review", json=body).status_code == 403  # no CSRF token
        wrong = browser.post(f"/ui/api/calls/{call}/review", json=body, headers={"X-CSRF-Token": "x" * len(token)})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "csrf_failed"
        good = browser.post(f"/ui/api/calls/{call}/review", json=body, headers={"X-CSRF-Token": token})
        assert good.status_code == 200, good.text
        assert browser.get("/admin").status_code == 403  # review scope only
        out = browser.post("/logout", data={"csrf": token}, follow_redirects=False)
        assert out.status_code == 303
        assert browser.get("/", follow_redirects=False).status_code == 303
    with Store(desk.db) as store:
        (v,) = [v for v in store.verdicts(call) if v.verdict == "review_resolved"]
        assert v.reviewer == "desk-review" and v.note == "checked"
    # a bearer key needs no CSRF token, and an unknown one is refused
    assert httpx.post(f"{desk.url}/ui/api/calls/{call}/review", json={"resolved": False},
                      headers=desk.headers(desk.pii_key)).status_code == 200  # fmt: skip
    assert httpx.get(f"{desk.url}/ui/api/calls/{call}", headers=desk.headers("nope")).status_code == 401


def test_calls_page_filters_sorts_pages_and_searches_chinese(desk: Desk) -> None:
    ids = desk.ids
    everyone = _rows(_get(desk, "/").text)
    assert sorted(everyone) == sorted(ids.values())
    assert _rows(_get(desk, "/?agent=A1").text) == [ids["zh_two"], ids["zh_one"]]  # newest first
    assert _rows(_get(desk, "/?queue=support").text) == [ids["en_three"]]
    assert _rows(_get(desk, "/?since=2026-02-01&until=2026-02-03").text) == [ids["zh_billing"], ids["en_three"]]
    assert _rows(_get(desk, "/?since=2026-01-06&until=2026-01-06").text) == []
    scores = {n: c.qa.score for n, c in desk.calls.items()}
    low = _rows(_get(desk, "/?max_score=10").text)
    assert low and sorted(low) == sorted(ids[n] for n, s in scores.items() if s <= 10)
    by_score = _rows(_get(desk, "/?sort=score").text)
    assert [scores[n] for n in sorted(scores, key=lambda n: by_score.index(ids[n]))] == sorted(scores.values())
    review = _rows(_get(desk, "/?review=yes").text)
    assert sorted(review) == sorted(ids[n] for n, c in desk.calls.items() if c.qa.needs_review)
    failed = _rows(_get(desk, "/?rule=mentions_trip").text)
    trip = {
        n
        for n, c in desk.calls.items()
        if any(r.id == "mentions_trip" and not r.passed and r.graded for r in c.qa.rules)
    }
    assert trip and sorted(failed) == sorted(ids[n] for n in trip)
    # full-text search in Chinese: the calls where it was said
    said = [n for n, c in desk.calls.items() if any("景德镇" in u.text for u in c.transcript.utterances)]
    assert said and sorted(_rows(_get(desk, "/?q=景德镇").text)) == sorted(ids[n] for n in said)
    assert _rows(_get(desk, "/?q=退款").text) == []
    assert 'class="error"' in _get(desk, "/?q=，。").text  # a query with nothing to look for: one error line
    # pages of one: every call once, then no next link
    seen, offset = [], 0
    while True:
        html = _get(desk, f"/?per=1&offset={offset}").text
        seen += _rows(html)
        found = re.search(r'href="/\?[^"]*offset=(\d+)[^"]*" rel="next"', html)
        if not found:
            break
        offset = int(found.group(1))
    assert seen == everyone
    # customer mood: the scan agrees with each call's stored QA
    moods = {n: (c.qa.sentiment.get("by_party") or {}).get("customer") for n, c in desk.calls.items()}
    found = {}
    for mood in ("negative", "neutral", "positive", "unknown"):
        data = httpx.get(f"{desk.url}/ui/api/calls?mood={mood}", headers=desk.headers(API_KEY)).json()
        found[mood] = {r["id"] for r in data["data"]}
        assert all(r["mood"] == mood for r in data["data"]) and data["next_offset"] is None
    assert found == {mood: {ids[n] for n, m in moods.items() if _mood(m) == mood} for mood in found}
    assert len([m for m in found.values() if m]) >= 2  # the calls differ
    assert "No live calls right now." in _get(desk, "/?state=live&lang=en").text


def _mood(mean: float | None) -> str:
    if mean is None:
        return "unknown"
    return "positive" if mean >= 0.2 else "negative" if mean <= -0.2 else "neutral"


def test_interface_is_chinese_by_default_and_english_on_request(desk: Desk) -> None:
    zh = _get(desk, f"/calls/{desk.ids['zh_one']}").text
    assert '<html lang="zh-CN">' in zh and "质检结果" in zh and "坐席" in zh
    with httpx.Client(base_url=desk.url, headers=desk.headers(API_KEY), timeout=60) as c:
        switch = c.get("/lang/en?next=/agents", follow_redirects=False)
        assert switch.status_code == 303 and switch.headers["location"] == "/agents"
        c.cookies.set("cs_lang", "en")
        en = c.get(f"/calls/{desk.ids['zh_one']}").text
    assert '<html lang="en">' in en and "Quality check" in en and "质检结果" not in en


def test_reviewer_without_pii_gets_masked_text_and_tone_masked_audio(desk: Desk) -> None:
    call = desk.ids[OPEN_BILLING]
    for path in (f"/calls/{call}", f"/ui/api/calls/{call}", "/", "/?q=手机号", "/live", "/ui/api/live",
                 "/ui/api/calls?q=%E6%89%8B%E6%9C%BA"):  # fmt: skip
        body = _get(desk, path, desk.review_key).text
        assert not [f for f in PHONE_FORMS if f in body], path
    # searching for the number would tell which calls hold it: refused without pii
    assert _rows(_get(desk, "/?q=一三八", desk.pii_key).text) == [call]
    refused = _get(desk, "/?q=一三八", desk.review_key).text
    assert _rows(refused) == [] and "pii" in refused
    assert _get(desk, "/ui/api/calls?q=138", desk.review_key).status_code == 403
    shown = _get(desk, f"/ui/api/calls/{call}", desk.review_key).json()
    (masked,) = [t for t in shown["turns"] if t["masked"]]
    assert "[PHONE]" in masked["text"] and masked["role"] == "customer"
    full = _get(desk, f"/ui/api/calls/{call}", desk.pii_key).json()
    assert any("一三八" in t["text"] for t in full["turns"])
    # correcting a masked utterance needs pii (the reviewer never saw what it says)
    refused = httpx.post(f"{desk.url}/ui/api/calls/{call}/corrections", headers=desk.headers(desk.review_key),
                         json={"utterance": masked["i"], "text": "[PHONE]。"})  # fmt: skip
    assert refused.status_code == 403
    # audio: a 1 kHz tone over the number (on both channels: bleed), the rest as recorded
    plain = _wav(_get(desk, f"/ui/api/calls/{call}/audio", desk.pii_key).content)
    hidden = _wav(_get(desk, f"/ui/api/calls/{call}/audio", desk.review_key).content)
    rate = hidden[1]
    a, b = int(masked["start"] * rate) + 200, int(masked["end"] * rate) - 200
    for ch in range(hidden[0].shape[1]):
        spectrum = np.abs(np.fft.rfft(hidden[0][a:b, ch].astype(np.float64)))
        assert abs(np.argmax(spectrum) * rate / (b - a) - 1000) < 5
    before = int(masked["start"] * rate) - rate  # a second before the number: untouched
    assert np.array_equal(hidden[0][before - rate // 2 : before], plain[0][before - rate // 2 : before])
    ranged = httpx.get(f"{desk.url}/ui/api/calls/{call}/audio", headers={**desk.headers(desk.review_key),
                       "Range": "bytes=0-99"})  # fmt: skip
    assert ranged.status_code == 206 and len(ranged.content) == 100


def _wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return frames.reshape(-1, w.getnchannels()), w.getframerate()


def test_corrections_verdicts_and_glossary_land_in_the_store(desk: Desk) -> None:
    call = desk.ids["zh_two"]
    h = desk.headers(desk.pii_key)
    view = httpx.get(f"{desk.url}/ui/api/calls/{call}", headers=h).json()
    turn = next(t for t in view["turns"] if len(t["text"]) > 4)
    new_text = turn["text"][:2] + "滨海新区" + turn["text"][2:]
    r = httpx.post(
        f"{desk.url}/ui/api/calls/{call}/corrections", headers=h, json={"utterance": turn["i"], "text": new_text}
    )
    assert r.status_code == 200, r.text
    assert r.json()["proposal"]["right"].find("滨海新区") >= 0
    again = httpx.get(f"{desk.url}/ui/api/calls/{call}", headers=h).json()
    assert again["turns"][turn["i"]]["text"] == new_text and again["turns"][turn["i"]]["edited"]["by"] == "desk-pii"
    form = httpx.post(
        f"{desk.url}/ui/api/calls/{call}/score",
        headers=h,
        content='{"score": 1}',
        params={},
    )
    assert form.status_code == 415  # not JSON: what a cross-site form would send
    bad = httpx.post(f"{desk.url}/ui/api/calls/{call}/corrections", headers=h, json={"utterance": 999, "text": "x"})
    assert bad.status_code == 400 and "utterance" in bad.json()["error"]["message"]
    entry = httpx.post(
        f"{desk.url}/ui/api/calls/{call}/glossary", headers=h, json={"wrong": "冰台新区", "right": "滨海新区"}
    )
    assert entry.json() == {"entry": "冰台新区 => 滨海新区", "added": True}
    assert httpx.post(f"{desk.url}/ui/api/calls/{call}/glossary", headers=h,
                      json={"wrong": "a => b", "right": "c"}).status_code == 400  # fmt: skip
    rule = next(r for r in desk.calls["zh_two"].qa.rules if r.hits)
    v = httpx.post(f"{desk.url}/ui/api/calls/{call}/verdicts", headers=h,
                   json={"rule": rule.id, "hit": 0, "verdict": "false_hit", "comment": "misheard"})  # fmt: skip
    assert v.status_code == 200, v.text
    s = httpx.post(f"{desk.url}/ui/api/calls/{call}/score", headers=h, json={"score": 20, "comment": "fair"})
    assert s.status_code == 200
    assert httpx.post(f"{desk.url}/ui/api/calls/{call}/score", headers=h, json={"score": 1e9}).status_code == 400
    with Store(desk.db) as store:
        (c,) = store.corrections(call)
        assert (c.utterance, c.before, c.after, c.author) == (turn["i"], turn["text"], new_text, "desk-pii")
        assert "冰台新区 => 滨海新区" in store.terms()
        kinds = {(x.verdict, x.rule_id) for x in store.verdicts(call)}
        assert ("false_hit", rule.id) in kinds and ("score_override", None) in kinds
    shown = httpx.get(f"{desk.url}/ui/api/calls/{call}", headers=h).json()
    hit = next(r for r in shown["qa"]["rules"] if r["id"] == rule.id)["hits"][0]
    assert hit["verdict"]["verdict"] == "false_hit" and hit["verdict"]["comment"] == "misheard"
    assert shown["override"]["score"] == 20
    admin = _get(desk, "/admin?lang=en").text
    row = re.search(rf'<tr data-rule="{re.escape(rule.id)}">(.*?)</tr>', admin, re.S).group(1)
    assert "<b>0%</b>" in row  # one false hit judged, none confirmed
    assert "冰台新区 =&gt; 滨海新区" in admin
    assert _get(desk, "/ui/api/precision", desk.pii_key).status_code == 403


def test_agents_page_and_workbook(desk: Desk) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    page = _get(desk, "/agents?by=month&lang=en").text
    assert "<svg" in page and "A1" in page and "2026-01" in page and "mentions_trip" in page
    x = _get(desk, "/agents.xlsx?by=month")
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(x.content)).active
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["agent", "month", "calls"]
    agents = {row[0]: row[2] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert agents["A1"] == 2 and sum(agents.values()) == len(desk.ids)
