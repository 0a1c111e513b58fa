"""The review desk under test: a real ``callscribe serve`` with a call store of calls made from evalset-dev speech,
their recordings in the server's data folder, keys with and without the ``pii`` scope, and headless Chromium.

Calls: the store tests' calls (:mod:`store_fixtures`: three two-party stereo calls from evalset-dev speech and the
Mandarin billing example, transcribed by the real pipeline with the reference-text engine; the example redacted at
ingest) plus the billing example transcribed *without* redaction, so its stored text holds the customer's phone
number (一三八，零零一二，三四五六): a reviewer without ``pii`` must never receive it; and the first call heard by the
bundled Whisper with word timestamps (real words with times, for the word highlight).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for _extra in (ROOT / "tests" / "store", ROOT / "tests" / "server"):
    if str(_extra) not in sys.path:
        sys.path.insert(0, str(_extra))

from server_fixtures import API_KEY, RunningServer, create_key, start_server, stop_server  # noqa: E402
from store_fixtures import CARD, ENGINES, StoreCall, fresh_url, store_calls  # noqa: E402

from callscribe.store import CallMeta, Store  # noqa: E402

__all__ = [
    "API_KEY",
    "ENGINES",
    "GAP_CALL",
    "Desk",
    "chrome",
    "desk_calls",
    "network_bodies",
    "running_desk",
    "screenshot",
    "sign_in",
    "smallest_chart_text",
]

CHROMIUM = Path(os.environ.get("CALLSCRIBE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CALLSCRIBE_CHROMEDRIVER", "/usr/bin/chromedriver"))
SCREENSHOTS_VAR = "CALLSCRIBE_UI_SCREENSHOTS"
PHONE_SPOKEN = "一三八，零零一二，三四五六"  # what the billing example's customer says
PHONE_FORMS = ("一三八", "零零一二", "三四五六", "13800123456", "138 0012", "0012 3456")
OPEN_BILLING = "zh_billing_open"  # the unredacted billing call
WHISPER_CALL = "zh_whisper"  # heard by Whisper, with word times
GAP_CALL = "zh_gap"  # one customer turn never heard: speech without text, flagged uncovered


@functools.lru_cache(maxsize=1)
def desk_calls(evalset: str, examples: str) -> tuple[StoreCall, ...]:
    """The store tests' calls plus the billing example stored unredacted."""
    from speakers_calls import ReferenceEngine, example_turns

    import callscribe
    from callscribe.qa import run_qa

    calls = store_calls(evalset, examples)
    heard = tuple(example_turns(Path(examples), "zh_billing_stereo_8k.wav"))
    options = {"language": "zh", "channel_roles": ("agent", "customer")}
    t = callscribe.Pipeline(options, engine=ReferenceEngine(heard)).transcribe(
        Path(examples) / "zh_billing_stereo_8k.wav"
    )
    meta = CallMeta("C3", datetime(2026, 2, 4, 16, 45, tzinfo=timezone.utc), "complaints")
    open_billing = StoreCall(OPEN_BILLING, t, run_qa(t, CARD), heard, meta)
    # the first call again, heard by the bundled Whisper with word times (the words the player highlights)
    first = calls[0]
    options = {"engine": "whisper", "language": "zh", "channel_roles": ("agent", "customer"), "timestamps": "word"}
    w = callscribe.Pipeline(options).transcribe(first.transcript.call.path)
    meta = CallMeta("W9", datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc), "sales")
    whisper = StoreCall(WHISPER_CALL, w, run_qa(w, CARD), first.turns, meta)
    # the first call again (a second of silence added: another recording), its longest turn never heard: coverage
    # flags that speech as uncovered
    longest = max(first.turns, key=lambda x: x.end - x.start)
    heard = tuple(x for x in first.turns if x is not longest)
    options = {"language": "zh", "channel_roles": ("agent", "customer")}
    g = callscribe.Pipeline(options, engine=ReferenceEngine(heard)).transcribe(_padded(first.transcript.call.path))
    meta = CallMeta("G7", datetime(2026, 3, 10, 9, 30, tzinfo=timezone.utc), "retention")
    return (*calls, open_billing, whisper, StoreCall(GAP_CALL, g, run_qa(g, CARD), heard, meta))


def _padded(path: str | Path) -> Path:
    """A copy of a recording with a second of silence at its end (its own sha256, the same speech)."""
    import numpy as np
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    out = Path(tempfile.mkdtemp(prefix="callscribe-desk-")) / f"gap_{Path(path).stem}.wav"
    atexit.register(shutil.rmtree, out.parent, True)
    sf.write(str(out), np.concatenate([data, np.zeros((rate, data.shape[1]), np.int16)]), rate, subtype="PCM_16")
    return out


@dataclass
class Desk:
    server: RunningServer
    db: str
    ids: dict[str, int]  # call id by name
    calls: dict[str, StoreCall]
    review_key: str  # review only: redacted text and audio
    pii_key: str  # review + pii

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


@contextmanager
def running_desk(tmp: Path, evalset: Path, examples: Path, kind: str = "sqlite", *args: str) -> Iterator[Desk]:
    """A server (``args``: more ``callscribe serve`` options) with a store (``kind``: sqlite, or postgresql when one
    can be had) of the desk calls (recordings kept), an admin key and two store keys."""
    calls = desk_calls(str(evalset), str(examples))
    with fresh_url(kind, tmp) as db:
        yield from _serve(tmp, db, calls, args)


def _serve(tmp: Path, db: str, calls: tuple[StoreCall, ...], args: tuple[str, ...] = ()) -> Iterator[Desk]:
    audio = tmp / "data" / "audio"
    audio.mkdir(parents=True)
    ids: dict[str, int] = {}
    with Store(db) as store:
        for c in calls:
            ids[c.name] = store.add(c.transcript, c.qa, meta=c.meta)
            src = Path(c.transcript.call.path)
            shutil.copyfile(src, audio / f"{c.transcript.call.sha256}{src.suffix.lower()}")
    review_key = create_key(db, "desk-review", "review")
    pii_key = create_key(db, "desk-pii", "review,pii")
    server = start_server(tmp, "--db", db, *args)
    try:
        yield Desk(server, db, ids, {c.name: c for c in calls}, review_key, pii_key)
    finally:
        stop_server(server)


# -- Chromium --------------------------------------------------------------------------------------------------------
def chrome(lang: str = "zh-CN") -> object:
    """Headless Debian Chromium through Selenium and chromedriver, 1280x800, with performance (network) logs."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the test extra)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian: apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                "--window-size=1280,800", "--autoplay-policy=no-user-gesture-required", f"--lang={lang}"):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    locale = lang.replace("-", "_") + ".UTF-8"  # the browser's own locale (date inputs, number formats)
    service = Service(str(CHROMEDRIVER), env={**os.environ, "LANGUAGE": lang.replace("-", "_"), "LANG": locale})
    driver = webdriver.Chrome(service=service, options=options)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
    )
    driver.execute_cdp_cmd("Network.enable", {})
    return driver


def sign_in(driver: object, base: str, key: str, next_path: str = "/") -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login?next={next_path}")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "key").send_keys(key)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()  # type: ignore[attr-defined]
    wait_for(driver, lambda d: "/login" not in d.current_url, "sign-in")


def wait_for(driver: object, check: object, what: str, timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check(driver)  # type: ignore[operator]
        except Exception:  # the page is between states
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def screenshot(driver: object, name: str) -> Path | None:
    """Save ``<name>.png`` under ``$CALLSCRIBE_UI_SCREENSHOTS`` when set (docs/img for the docs)."""
    folder = os.environ.get(SCREENSHOTS_VAR)
    if not folder:
        return None
    out = Path(folder)
    if not out.is_absolute():
        out = ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path


def smallest_chart_text(driver: object, svg_css: str) -> float:
    """The smallest text of the charts matching ``svg_css``, in CSS pixels as drawn (an SVG scaled down to fit its
    box scales its labels down with it)."""
    return float(
        driver.execute_script(  # type: ignore[attr-defined]
            "let least = Infinity; for (const svg of document.querySelectorAll(arguments[0])) {"
            "  const box = svg.viewBox.baseVal; const scale = svg.getBoundingClientRect().width / box.width;"
            "  for (const t of svg.querySelectorAll('text')) {"
            "    least = Math.min(least, parseFloat(getComputedStyle(t).fontSize) * scale); } }"
            "return least;",
            svg_css,
        )
    )


def network_bodies(driver: object) -> list[tuple[str, str, bool]]:
    """(url, body, base64-encoded) of every response the current page received since the last call (Chrome's
    performance log, then CDP ``Network.getResponseBody``; call it before leaving a page)."""
    out = []
    for entry in driver.get_log("performance"):  # type: ignore[attr-defined]
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.responseReceived":
            continue
        params = message["params"]
        try:
            body = driver.execute_cdp_cmd("Network.getResponseBody", {"requestId": params["requestId"]})  # type: ignore[attr-defined]
        except Exception:  # no body kept (a redirect, media streamed in ranges)
            out.append((params["response"]["url"], "", False))
            continue
        out.append((params["response"]["url"], body.get("body", ""), bool(body.get("base64Encoded"))))
    return out


def selenium_by():
    from selenium.webdriver.common.by import By

    return By


def row_ids(driver) -> list[int]:
    """The call ids of the calls page's rows, in order."""
    return [
        int(e.get_attribute("data-call")) for e in driver.find_elements(selenium_by().CSS_SELECTOR, "tr[data-call]")
    ]


def open_call(driver, desk: Desk, name: str) -> dict:
    """Open a call's page, wait for its waveform, and give back the page's call data."""
    driver.get(f"{desk.url}/calls/{desk.ids[name]}")
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.waveReady === '1'"), "the waveform")
    return driver.execute_script("return JSON.parse(document.getElementById('call-data').textContent)")
