"""The review desk in a real Chromium, continued: every filter of the calls page set through its form, sorting both
ways and paging; the waveform's channel lanes, role lanes and markers (rule hits, redactions, speech without text,
low confidence); the evidence of a rule jumping the player; ← and →; the manual score and "needs review" resolved
surviving a reload; the sentiment chart; the English interface."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui_desk_fixtures import (
    GAP_CALL,
    WHISPER_CALL,
    Desk,
    chrome,
    open_call,
    row_ids,
    running_desk,
    selenium_by,
    sign_in,
    smallest_chart_text,
    wait_for,
)

from callscribe.store import Store

pytestmark = [pytest.mark.evalset, pytest.mark.slow]


@pytest.fixture(scope="module")
def desk(evalset: Path, examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Desk:
    with running_desk(tmp_path_factory.mktemp("desk"), evalset, examples_dir) as d:
        yield d


@pytest.fixture(scope="module")
def browser(desk: Desk):
    driver = chrome()
    try:
        sign_in(driver, desk.url, desk.pii_key)
        yield driver
    finally:
        driver.quit()


def _time(driver) -> float:
    return float(driver.execute_script("return document.getElementById('audio').currentTime"))


def _filter(driver, desk: Desk, fields: dict[str, str]) -> list[int]:
    """Fill the calls page's filter form as a reviewer would (text typed, options picked, dates set) and apply it."""
    from selenium.webdriver.support.ui import Select

    by = selenium_by()
    driver.get(desk.url + "/")
    form = driver.find_element(by.ID, "filters")
    for name, value in fields.items():
        field = form.find_element(by.NAME, name)
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        elif field.get_attribute("type") == "date":  # typed input of a date field follows the browser's locale
            driver.execute_script("arguments[0].value = arguments[1]", field, value)
        else:
            field.send_keys(value)
    old = driver.find_element(by.TAG_NAME, "html")
    form.find_element(by.CSS_SELECTOR, 'button[type="submit"]').click()
    wait_for(driver, lambda d: old != d.find_element(by.TAG_NAME, "html") and "?" in d.current_url, "the filter")
    return row_ids(driver)


def _mood(mean: float | None) -> str:
    if mean is None:
        return "unknown"
    return "positive" if mean >= 0.2 else "negative" if mean <= -0.2 else "neutral"


def test_every_filter_sorting_and_paging_through_the_form(browser, desk: Desk) -> None:
    ids, calls = desk.ids, desk.calls
    day = {n: c.meta.call_time.date().isoformat() for n, c in calls.items()}
    first, last = min(day.values()), max(day.values())
    inside = sorted(set(day.values()))[1:-1] or [first]
    got = _filter(browser, desk, {"since": inside[0], "until": inside[-1]})
    assert sorted(got) == sorted(ids[n] for n, d in day.items() if inside[0] <= d <= inside[-1])
    assert len(got) < len(ids) or first == last
    support = [ids[n] for n, c in calls.items() if c.meta.queue == "support"]
    assert support and _filter(browser, desk, {"queue": "support"}) == support
    scores = {n: c.qa.score for n, c in calls.items()}
    cut = sorted(scores.values())[len(scores) // 2]
    got = _filter(browser, desk, {"min_score": "0", "max_score": f"{cut:g}"})
    assert got and sorted(got) == sorted(ids[n] for n, s in scores.items() if s <= cut)
    failed = {r.id for c in calls.values() for r in c.qa.rules if r.graded and not r.passed}
    rule = sorted(failed)[0]
    want = [n for n, c in calls.items() if any(r.id == rule and r.graded and not r.passed for r in c.qa.rules)]
    assert sorted(_filter(browser, desk, {"rule": rule})) == sorted(ids[n] for n in want)
    for answer, flag in (("yes", True), ("no", False)):
        want = [n for n, c in calls.items() if bool(c.qa.needs_review) is flag]
        assert sorted(_filter(browser, desk, {"review": answer})) == sorted(ids[n] for n in want), answer
    moods = {n: _mood((c.qa.sentiment.get("by_party") or {}).get("customer")) for n, c in calls.items()}
    for mood in sorted(set(moods.values())):
        want = sorted(ids[n] for n, m in moods.items() if m == mood)
        assert sorted(_filter(browser, desk, {"mood": mood})) == want, mood
    assert sorted(_filter(browser, desk, {"state": "all"})) == sorted(ids.values())
    assert _filter(browser, desk, {"state": "live"}) == []  # nothing streams now: no finished calls, the live list
    assert browser.find_elements(selenium_by().CSS_SELECTOR, "p.empty")
    # sorting by a column head, both ways
    by = selenium_by()
    browser.get(desk.url + "/")
    by_id = {i: n for n, i in ids.items()}
    for expected in (sorted(scores.values(), reverse=True), sorted(scores.values())):
        browser.find_element(by.CSS_SELECTOR, 'a.sort[data-sort="score"]').click()
        wait_for(browser, lambda d: "sort=" in d.current_url, "sorting")
        assert [scores[by_id[i]] for i in row_ids(browser)] == expected
    # paging: two a page, following "next" to the end and "previous" back to the start
    browser.get(desk.url + "/?per=2")
    everyone = row_ids(browser)
    pages = [everyone]
    while links := browser.find_elements(by.CSS_SELECTOR, 'nav.pages a[rel="next"]'):
        links[0].click()
        wait_for(browser, lambda d: row_ids(d) and row_ids(d) != pages[-1], "the next page")
        pages.append(row_ids(browser))
    assert all(len(p) == 2 for p in pages[:-1]) and len(pages) == (len(ids) + 1) // 2
    assert sorted(i for p in pages for i in p) == sorted(ids.values())
    browser.find_element(by.CSS_SELECTOR, 'nav.pages a[rel="prev"]').click()
    wait_for(browser, lambda d: row_ids(d) == pages[-2], "the previous page")


def test_the_waveform_has_channel_and_role_lanes_and_markers(browser, desk: Desk) -> None:
    by = selenium_by()
    data = open_call(browser, desk, GAP_CALL)
    assert data["channels"] == 2
    names = [e.text for e in browser.find_elements(by.CSS_SELECTOR, ".chan-names span")]
    assert names == ["坐席", "客户"]  # one waveform lane per channel, named by role
    for lane in ("agent", "customer"):
        blocks = browser.find_elements(by.CSS_SELECTOR, f'#lanes .lane[data-lane="{lane}"] .blk.turn-blk')
        assert len(blocks) == data["turns"].count(lane) > 0
    marks = browser.find_elements(by.CSS_SELECTOR, "#marker-track .blk")
    assert len(marks) == len(data["markers"])
    assert any(m["kind"] == "uncovered" for m in data["markers"])
    assert browser.find_elements(by.CSS_SELECTOR, "#marker-track .blk.uncovered")
    gap = browser.find_element(by.CSS_SELECTOR, "#transcript .turn.uncovered")
    assert gap.find_element(by.CSS_SELECTOR, ".tag.uncovered").is_displayed()
    hatch = browser.execute_script("return getComputedStyle(arguments[0]).backgroundImage", gap)
    assert "gradient" in hatch  # speech without text is hatched in the transcript
    drawn = browser.execute_script(
        "const host = document.querySelector('#wave > div'); const root = host && host.shadowRoot;"
        "return root ? Array.from(root.querySelectorAll('[part~=\"region\"]')).filter("
        "(r) => r.getBoundingClientRect().width > 0).length : null"
    )
    assert drawn == len([m for m in data["markers"] if m["end"] > m["start"]])  # also drawn over the waveform
    ticks = browser.execute_script(
        "const root = document.querySelector('#wave > div').shadowRoot;"
        "const box = root.querySelector('[part~=\"timeline-wrapper\"]'); if (!box) return null;"
        "const labels = Array.from(box.querySelectorAll('div')).filter((d) => d.textContent && !d.children.length);"
        "return labels.map((d) => parseFloat(getComputedStyle(d).fontSize));"
    )
    assert ticks and min(ticks) >= 10  # the time scale under the waveform is legible
    # a marker block seeks the player
    target = next(m for m in data["markers"] if m["kind"] == "uncovered")
    block = browser.find_element(by.CSS_SELECTOR, "#marker-track .blk.uncovered")
    browser.execute_script("arguments[0].click()", block)
    wait_for(browser, lambda d: abs(_time(d) - target["start"]) < 0.05, "a marker's seek")
    # rule hits: failed red, passed green
    name = next(n for n, c in desk.calls.items() if any(r.hits for r in c.qa.rules))
    data = open_call(browser, desk, name)
    hits = [m for m in data["markers"] if m["kind"] == "hit"]
    assert len(hits) == sum(len(r.hits) for r in desk.calls[name].qa.rules)
    for passed, cls in ((False, "hit-fail"), (True, "hit-pass")):
        want = len([m for m in hits if bool(m["passed"]) is passed])
        assert len(browser.find_elements(by.CSS_SELECTOR, f"#marker-track .blk.{cls}")) == want
    # redactions: the billing example was redacted at ingest
    data = open_call(browser, desk, "zh_billing")
    assert any(m["kind"] == "redaction" for m in data["markers"])
    assert browser.find_elements(by.CSS_SELECTOR, "#marker-track .blk.redaction")
    # low confidence: Whisper's word probabilities
    data = open_call(browser, desk, WHISPER_CALL)
    low = [m for m in data["markers"] if m["kind"] == "lowconf"]
    assert low and len(browser.find_elements(by.CSS_SELECTOR, "#marker-track .blk.lowconf")) == len(low)
    assert browser.find_elements(by.CSS_SELECTOR, "#transcript .turn .lw, #transcript .turn.low")


def test_evidence_jumps_there_and_the_arrow_keys_step(browser, desk: Desk) -> None:
    by = selenium_by()
    name = next(n for n, c in desk.calls.items() if any(r.hits for r in c.qa.rules) and c.qa.rules)
    open_call(browser, desk, name)
    hits = browser.find_elements(by.CSS_SELECTOR, "li.hit")
    assert hits
    hit = hits[-1]
    at = float(hit.find_element(by.CSS_SELECTOR, "a.seek").get_attribute("data-seek"))
    assert at > 0.5
    hit.find_element(by.CSS_SELECTOR, ".evidence").click()  # the evidence text itself
    wait_for(browser, lambda d: abs(_time(d) - at) < 0.05, "the evidence's seek")
    playing = browser.find_elements(by.CSS_SELECTOR, "#transcript .turn.playing")
    assert playing and float(playing[0].get_attribute("data-start")) <= at + 0.05
    browser.find_element(by.TAG_NAME, "body").send_keys("\ue012")  # arrow left: 5 s back
    wait_for(browser, lambda d: abs(_time(d) - max(0.0, at - 5)) < 0.05, "arrow left")
    browser.find_element(by.TAG_NAME, "body").send_keys("\ue008\ue014")  # shift + arrow right: 1 s on
    wait_for(browser, lambda d: abs(_time(d) - (max(0.0, at - 5) + 1)) < 0.05, "shift + arrow right")


def test_manual_score_and_review_resolved_survive_a_reload(browser, desk: Desk) -> None:
    by = selenium_by()
    name = next(n for n, c in desk.calls.items() if c.qa.needs_review and n != GAP_CALL)
    call = desk.ids[name]
    open_call(browser, desk, name)
    assert browser.find_elements(by.CSS_SELECTOR, "svg.chart")  # the sentiment trajectory
    assert smallest_chart_text(browser, "svg.chart") >= 10  # drawn at its column's width: legible labels
    points = browser.find_elements(by.CSS_SELECTOR, "svg.chart circle.seek")
    assert points  # one point per sentence scored; a point seeks there
    at = float(points[-1].get_attribute("data-seek"))
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", points[-1])
    wait_for(browser, lambda d: abs(_time(d) - at) < 0.05, "a sentiment point's seek")
    top = desk.calls[name].qa.max_score or 10
    score = max(0.5, round(top / 2 * 2) / 2)
    form = browser.find_element(by.ID, "override")
    form.find_element(by.NAME, "score").send_keys(f"{score:g}")
    form.find_element(by.NAME, "comment").send_keys("listened twice")
    form.find_element(by.CSS_SELECTOR, 'button[type="submit"]').click()
    wait_for(browser, lambda d: d.find_element(by.ID, "override-by").text.startswith("desk-pii"), "the override")
    browser.find_element(by.ID, "review-comment").send_keys("all fine")
    browser.find_element(by.ID, "resolve").click()
    wait_for(browser, lambda d: d.find_element(by.ID, "resolve").get_attribute("data-resolved") == "true", "resolved")
    browser.refresh()
    wait_for(browser, lambda d: d.find_elements(by.ID, "shown-score"), "the reload")
    assert float(browser.find_element(by.ID, "shown-score").text) == score
    assert browser.find_element(by.ID, "override").find_element(by.NAME, "score").get_attribute("value") == f"{score:g}"
    assert "resolved" in browser.find_element(by.ID, "review-box").get_attribute("class")
    assert browser.find_element(by.ID, "resolve").get_attribute("data-resolved") == "true"
    with Store(desk.db) as store:
        kinds = [(v.verdict, v.reviewer) for v in store.verdicts(call)]
    assert ("score_override", "desk-pii") in kinds and ("review_resolved", "desk-pii") in kinds


def test_english_is_selectable(browser, desk: Desk) -> None:
    by = selenium_by()
    browser.get(f"{desk.url}/calls/{desk.ids['zh_one']}")
    assert browser.find_element(by.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    browser.find_element(by.CSS_SELECTOR, 'a[href^="/lang/en"]').click()
    wait_for(browser, lambda d: d.find_element(by.TAG_NAME, "html").get_attribute("lang") == "en", "English")
    assert "/calls/" in browser.current_url and "Quality check" in browser.page_source
    browser.find_element(by.CSS_SELECTOR, 'a[href^="/lang/zh-CN"]').click()
    wait_for(browser, lambda d: d.find_element(by.TAG_NAME, "html").get_attribute("lang") == "zh-CN", "Chinese")
