"""The review desk in a real Chromium (Debian's, headless, through chromedriver): the calls page's filters and
search, seeking by clicking a turn, the highlight following playback, keyboard control, a correction that survives a
reload and is audited in the store, a verdict, and a reviewer without ``pii`` whose browser never receives the
customer's phone number. With ``CALLSCRIBE_UI_SCREENSHOTS=docs/img`` the pages are also saved as 1280x800 PNGs."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ui_desk_fixtures import (
    OPEN_BILLING,
    PHONE_FORMS,
    WHISPER_CALL,
    Desk,
    chrome,
    network_bodies,
    open_call,
    row_ids,
    running_desk,
    screenshot,
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


def test_calls_page_filters_and_searches(browser, desk: Desk) -> None:
    by = selenium_by()
    browser.get(desk.url + "/")
    assert sorted(row_ids(browser)) == sorted(desk.ids.values())
    screenshot(browser, "ui-calls")
    box = browser.find_element(by.NAME, "q")
    box.send_keys("景德镇")
    box.submit()
    wait_for(browser, lambda d: "q=" in d.current_url, "the search")
    said = [n for n, c in desk.calls.items() if any("景德镇" in u.text for u in c.transcript.utterances)]
    assert said and sorted(row_ids(browser)) == sorted(desk.ids[n] for n in said)
    browser.get(desk.url + "/")
    agent = browser.find_element(by.NAME, "agent")
    agent.send_keys("A1")
    agent.submit()
    wait_for(browser, lambda d: "agent=A1" in d.current_url, "the agent filter")
    assert row_ids(browser) == [desk.ids["zh_two"], desk.ids["zh_one"]]
    browser.find_element(by.CSS_SELECTOR, 'a.sort[data-sort="score"]').click()
    wait_for(browser, lambda d: "sort=" in d.current_url, "sorting")
    scores = [desk.calls[n].qa.score for n in ("zh_two", "zh_one")]
    shown = [next(desk.calls[n].qa.score for n in desk.ids if desk.ids[n] == i) for i in row_ids(browser)]
    assert shown == sorted(scores, reverse=True)


def test_clicking_a_turn_seeks_and_playback_moves_the_highlight(browser, desk: Desk) -> None:
    by = selenium_by()
    open_call(browser, desk, "zh_one")
    turns = browser.find_elements(by.CSS_SELECTOR, "#transcript .turn")
    assert len(turns) >= 3
    target = turns[2]
    start = float(target.get_attribute("data-start"))
    target.find_element(by.CSS_SELECTOR, ".text").click()
    wait_for(browser, lambda d: abs(_time(d) - start) < 0.05, "the seek")
    assert "playing" in target.get_attribute("class")
    # play from the first turn: the highlight moves on to the next turn when the audio gets there
    first, second = turns[0], turns[1]
    first.find_element(by.CSS_SELECTOR, ".meta .t").click()
    wait_for(browser, lambda d: "playing" in first.get_attribute("class"), "the first turn highlighted")
    browser.find_element(by.TAG_NAME, "body").send_keys(" ")  # space: play
    next_start = float(second.get_attribute("data-start"))
    wait_for(browser, lambda d: _time(d) > next_start + 0.3, "playback to reach the second turn", timeout=40)
    wait_for(browser, lambda d: "playing" in second.get_attribute("class"), "the highlight to move")
    assert "playing" not in first.get_attribute("class") or float(first.get_attribute("data-end")) > _time(browser)
    browser.find_element(by.TAG_NAME, "body").send_keys(" ")  # space: pause
    wait_for(browser, lambda d: d.execute_script("return document.getElementById('audio').paused"), "pause")
    # j / k: next and previous turn
    turns[0].find_element(by.CSS_SELECTOR, ".meta .t").click()
    browser.find_element(by.TAG_NAME, "body").send_keys("j")
    wait_for(browser, lambda d: abs(_time(d) - next_start) < 0.05, "j to the next turn")
    browser.find_element(by.TAG_NAME, "body").send_keys("k")
    wait_for(browser, lambda d: abs(_time(d) - float(first.get_attribute("data-start"))) < 0.05, "k back")
    before = _time(browser)
    browser.find_element(by.TAG_NAME, "body").send_keys("\ue014")  # arrow right: 5 s on
    wait_for(browser, lambda d: abs(_time(d) - (before + 5)) < 0.05, "arrow right")


def test_the_playing_word_is_highlighted(browser, desk: Desk) -> None:
    by = selenium_by()
    open_call(browser, desk, WHISPER_CALL)
    words = browser.execute_script("return JSON.parse(document.getElementById('call-data').textContent).words")
    k = max(range(len(words)), key=lambda i: len(words[i]))
    assert len(words[k]) >= 4  # Whisper's word times reached the page
    turn = browser.find_elements(by.CSS_SELECTOR, "#transcript .turn")[k]
    text = turn.find_element(by.CSS_SELECTOR, ".text").text
    turn.find_element(by.CSS_SELECTOR, ".meta .t").click()
    spans = wait_for(browser, lambda d: turn.find_elements(by.CSS_SELECTOR, ".w"), "the word spans")
    assert len(spans) == len(words[k]) and turn.find_element(by.CSS_SELECTOR, ".text").text == text
    browser.find_element(by.TAG_NAME, "body").send_keys(" ")
    seen: list[int] = []
    while _time(browser) < words[k][-2][1]:
        lit = browser.execute_script(
            "const w = document.querySelector('#transcript .w.on'); if (!w) return null;"
            "const turn = w.closest('.turn'); const all = Array.from(turn.querySelectorAll('.w'));"
            "return [all.indexOf(w), +turn.dataset.i, document.getElementById('audio').currentTime];"
        )
        if lit is None:
            continue
        index, turn_index, now = lit
        _, start, end, _ = words[k][index]
        assert turn_index == k and start - 0.25 <= now <= end + 0.25  # the lit word is the one playing
        if not seen or seen[-1] != index:
            seen.append(index)
    browser.find_element(by.TAG_NAME, "body").send_keys(" ")
    assert len(seen) >= 3 and seen == sorted(seen)  # the highlight moved on from word to word


def test_a_correction_survives_a_reload_and_is_audited(browser, desk: Desk) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    by = selenium_by()
    call = desk.ids["zh_one"]
    open_call(browser, desk, "zh_one")
    turn = browser.find_elements(by.CSS_SELECTOR, "#transcript .turn")[1]
    before = turn.find_element(by.CSS_SELECTOR, ".text").text
    ActionChains(browser).move_to_element(turn).perform()
    turn.find_element(by.CSS_SELECTOR, "button.edit").click()
    area = turn.find_element(by.TAG_NAME, "textarea")
    after = before[:-1] + "滨海新区。" if before else "滨海新区。"
    area.clear()
    area.send_keys(after)
    turn.find_element(by.CSS_SELECTOR, "button.save").click()
    wait_for(browser, lambda d: "editing" not in turn.get_attribute("class"), "the save")
    assert turn.find_element(by.CSS_SELECTOR, ".text").text == after
    screenshot_toast = browser.find_element(by.CSS_SELECTOR, "#toast button")  # "add to glossary"
    screenshot_toast.click()
    dialog = browser.find_element(by.ID, "glossary-dialog")
    wait_for(browser, lambda d: dialog.get_attribute("open") is not None, "the glossary dialog")
    right = dialog.find_element(by.NAME, "right").get_attribute("value")
    wrong = dialog.find_element(by.NAME, "wrong").get_attribute("value")
    assert "滨海新区" in right and right != wrong
    dialog.find_element(by.CSS_SELECTOR, 'button[type="submit"]').click()
    wait_for(browser, lambda d: dialog.get_attribute("open") is None, "the glossary entry")
    browser.refresh()
    wait_for(browser, lambda d: d.find_elements(by.CSS_SELECTOR, "#transcript .turn"), "the reload")
    again = browser.find_elements(by.CSS_SELECTOR, "#transcript .turn")[1]
    assert again.find_element(by.CSS_SELECTOR, ".text").text == after
    assert "desk-pii" in again.find_element(by.CSS_SELECTOR, ".edited").text
    with Store(desk.db) as store:
        (c,) = [c for c in store.corrections(call) if c.utterance == 1]
        assert (c.before, c.after, c.author, c.field) == (before, after, "desk-pii", "text")
        assert abs((datetime.now(timezone.utc) - c.created_at.replace(tzinfo=timezone.utc)).total_seconds()) < 600
        assert f"{wrong} => {right}" in store.terms()


def test_a_verdict_is_saved(browser, desk: Desk) -> None:
    by = selenium_by()
    name = next(n for n, c in desk.calls.items() if n != OPEN_BILLING and any(r.hits for r in c.qa.rules))
    call = desk.ids[name]
    open_call(browser, desk, name)
    hit = browser.find_element(by.CSS_SELECTOR, "li.hit .verdict")
    rule = hit.get_attribute("data-rule")
    hit.find_element(by.CSS_SELECTOR, ".v-comment").send_keys("heard right")
    hit.find_element(by.CSS_SELECTOR, "button.v-correct").click()
    wait_for(browser, lambda d: "on" in hit.find_element(by.CSS_SELECTOR, "button.v-correct").get_attribute("class"),
             "the verdict")  # fmt: skip
    with Store(desk.db) as store:
        found = [v for v in store.verdicts(call) if v.rule_id == rule]
    assert found and found[-1].verdict == "correct" and found[-1].reviewer == "desk-pii"
    assert found[-1].note.endswith("heard right")
    browser.refresh()
    again = wait_for(browser, lambda d: d.find_element(by.CSS_SELECTOR, "li.hit .verdict button.v-correct"), "reload")
    assert "on" in again.get_attribute("class")


def test_reviewer_without_pii_never_receives_the_number(desk: Desk) -> None:
    by = selenium_by()
    call = desk.ids[OPEN_BILLING]
    bodies: list[tuple[str, str, bool]] = []
    driver = chrome()
    try:
        sign_in(driver, desk.url, desk.review_key)
        driver.get_log("performance")  # start afresh
        driver.get(f"{desk.url}/")
        wait_for(driver, lambda d: d.find_elements(by.CSS_SELECTOR, "tr[data-call]"), "the calls page")
        bodies += network_bodies(driver)
        open_call(driver, desk, OPEN_BILLING)
        number = next(t for t in driver.find_elements(by.CSS_SELECTOR, "#transcript .turn") if "masked" in
                      t.get_attribute("class"))  # fmt: skip
        number.find_element(by.CSS_SELECTOR, ".text").click()  # seek there and play over the number
        driver.find_element(by.TAG_NAME, "body").send_keys(" ")
        end = float(number.get_attribute("data-end"))
        wait_for(driver, lambda d: _time(d) > end, "playback over the number", timeout=40)
        driver.find_element(by.TAG_NAME, "body").send_keys(" ")
        number.find_element(by.CSS_SELECTOR, ".text").click()
        screenshot(driver, "ui-call-zh")
        bodies += network_bodies(driver)
        driver.get(f"{desk.url}/?q=手机号")
        bodies += network_bodies(driver)
        driver.get(f"{desk.url}/live")
        wait_for(driver, lambda d: d.find_elements(by.CSS_SELECTOR, "#live-jobs th"), "the live page")
        bodies += network_bodies(driver)
        dom = driver.page_source
    finally:
        driver.quit()
    urls = [u for u, _, _ in bodies]
    for part in (f"/calls/{call}", f"/ui/api/calls/{call}/peaks", f"/ui/api/calls/{call}/audio", "/ui/api/live"):
        assert any(part in u for u in urls), part
    assert not any("/v1/calls" in u for u in urls)
    for url, body, encoded in bodies:
        text = base64.b64decode(body).decode("utf-8", "replace") if encoded else body
        leaked = [f for f in PHONE_FORMS if f in text]
        assert not leaked, f"{url} sent {leaked}"
    page = next(b for u, b, _ in bodies if u.endswith(f"/calls/{call}"))
    assert "[PHONE]" in page and not [f for f in PHONE_FORMS if f in dom]


def test_agents_page_shows_the_chart_and_table(browser, desk: Desk) -> None:
    by = selenium_by()
    browser.get(f"{desk.url}/agents?by=month")
    bars = browser.find_elements(by.CSS_SELECTOR, ".chart-box svg rect")
    assert len(bars) >= 3  # bars and legend swatches
    rows = browser.find_elements(by.CSS_SELECTOR, "table#agents tr")
    assert len(rows) == 1 + len({(c.meta.agent_id, c.meta.call_time.strftime("%Y-%m")) for c in desk.calls.values()})
    assert smallest_chart_text(browser, ".chart-box svg") >= 10  # the chart is not scaled down past legibility
    screenshot(browser, "ui-agents")
