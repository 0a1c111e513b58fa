"""The live page in a real Chromium while a call streams to the same server's ``/v1/stream``: the call shows up with
its partial and final lines by role and its alerts, without ``pii`` masked in every response, and leaves the page
when it ends; the calls page's "live" filter lists it meanwhile."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ui_desk_fixtures import PHONE_FORMS, Desk, chrome, network_bodies, running_desk, sign_in, wait_for

pytestmark = [pytest.mark.evalset, pytest.mark.slow]
pytest.importorskip("websockets", reason="the live client needs websockets (the [server] extra)")

EXAMPLE = "zh_billing_stereo_8k.wav"  # the customer reads out a phone number


# The live checks' scorecard: the built-in greeting rule, and a flag rule on the agent's most common words, so that
# any Mandarin the agent is heard to say raises alerts whatever the recognizer makes of the rest.
CARD = """name: live_desk
language: zh
rules:
  - id: greeting
    role: agent
    window: {first_s: 15}
    points: 10
    check:
      phrases: [您好, 很高兴为您服务]
      match: fuzzy
  - id: agent_spoke
    kind: flag
    role: agent
    check:
      phrases: [您, 的, 是, 了, 我, 你, 请, 好, 有, 为, 以, 什么, 服务]
"""


@pytest.fixture(scope="module")
def desk(evalset: Path, examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Desk:
    tmp = tmp_path_factory.mktemp("desk")
    card = tmp / "live_card.yaml"
    card.write_text(CARD, encoding="utf-8")
    with running_desk(tmp, evalset, examples_dir, "sqlite", "--scorecard", str(card)) as d:
        yield d


def _cards(driver) -> list[dict[str, Any]]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#live-calls article.live-call')).map((c) => ({"
        "head: c.querySelector('h3').textContent,"
        "alerts: Array.from(c.querySelectorAll('p.alert')).map((a) => a.textContent),"
        "lines: Array.from(c.querySelectorAll('p.line')).map((l) => ({cls: l.className,"
        "who: l.querySelector('.who').textContent, text: l.querySelector('.text').textContent}))}))"
    )


def test_a_streaming_call_is_on_the_live_page_with_its_lines_and_alerts(desk: Desk, examples_dir: Path) -> None:
    from callscribe.cli_stream import load_pcm, play

    pcm, rate = load_pcm(examples_dir / EXAMPLE, None)
    url = desk.url.replace("http://", "ws://") + "/v1/stream"
    start = {"language": "zh", "roles": ["agent", "customer"], "metadata": {"agent_id": "L9", "queue": "billing"}}
    played: dict[str, Any] = {}
    driver = chrome()
    try:
        sign_in(driver, desk.url, desk.review_key, "/live")
        wait_for(driver, lambda d: d.find_elements("css selector", "#live-calls p.empty"), "the empty live page")
        driver.get_log("performance")
        player = threading.Thread(
            target=lambda: played.update(result=play(url, pcm, rate, speed=1.5, api_key=desk.server.key, start=start))
        )
        player.start()
        seen: list[dict[str, Any]] = []
        listed = False
        bodies: list[tuple[str, str, bool]] = []
        while player.is_alive():
            seen += [c for c in _cards(driver) if " · L9 · billing" in c["head"]]
            if not listed and seen:  # the calls page's live filter lists it too
                bodies += network_bodies(driver)
                driver.get(f"{desk.url}/?state=live")
                listed = "L9" in driver.find_element("css selector", "table.live-list").text
                driver.get(f"{desk.url}/live")
            time.sleep(0.4)
        player.join()
        time.sleep(2.5)  # one more poll after call_done
        after = [c for c in _cards(driver) if " · L9 · billing" in c["head"]]
        bodies += network_bodies(driver)
    finally:
        driver.quit()
    events = played["result"].events
    assert any(e["type"] == "call_done" for e in events), events[-3:]
    assert seen, "the streaming call was on the live page"
    assert listed, "the calls page's live filter listed the streaming call"
    lines = [line for c in seen for line in c["lines"]]
    assert lines and {line["who"] for line in lines} <= {"坐席", "客户"}
    assert any("partial" in line["cls"] for line in lines), "a partial line was shown"
    assert any("partial" not in line["cls"] and line["text"] for line in lines), "a final line was shown"
    alerts = [e for e in events if e["type"] == "alert"]
    assert any(a["rule"] == "agent_spoke" for a in alerts), [
        (e["role"], e["text"]) for e in events if e["type"] == "final"
    ]
    shown = {a for c in seen for a in c["alerts"]}
    for a in alerts:  # each alert the stream raised reached the page
        assert any(a["rule"] in s for s in shown), (a, shown)
    assert not after, "a finished call leaves the live page"
    # a reviewer without pii: nothing the browser received holds the number
    assert any("/ui/api/live" in u for u, _, _ in bodies)
    for u, body, encoded in bodies:
        text = base64.b64decode(body).decode("utf-8", "replace") if encoded else body
        assert not [f for f in PHONE_FORMS if f in text], u
