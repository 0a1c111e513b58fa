"""Open the HTML report in headless Chromium and check the charts were drawn where the layout puts them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from insights_callgen import make_calls

from callscribe.outputs.report import HISTOGRAM_COLOUR, PASS_COLOUR, TOPIC_COLOUR, TRAJECTORY_COLOUR, write_report
from callscribe.qa.insights import compute_insights, load_calls

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 2000


def screenshot(page: Path, png: Path, profile: Path) -> np.ndarray:
    """Render ``page`` with headless Chromium; the screenshot as an RGB array (decoded with PyAV)."""
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}",
        page.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    with av.open(str(png)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def _box(img: np.ndarray, colour: str) -> tuple[int, int, int, int, int]:
    """(pixels, top, bottom, left, right) of the pixels that are exactly ``colour``."""
    rgb = tuple(int(colour[k : k + 2], 16) for k in (1, 3, 5))
    ys, xs = np.nonzero(np.all(img == np.array(rgb, dtype=np.uint8), axis=2))
    if len(ys) == 0:
        return 0, 0, 0, 0, 0
    return len(ys), int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs chromium")
def test_report_renders_charts_in_chromium(tmp_path: Path) -> None:
    make_calls(tmp_path / "out", n=50)
    calls, _ = load_calls(tmp_path / "out", agent_pattern=r"(?P<agent>A\d+)_")
    page = write_report(compute_insights(calls), tmp_path / "report.html")
    img = screenshot(page, tmp_path / "shot.png", tmp_path / "profile")
    assert img.shape == (HEIGHT, WIDTH, 3)
    colours = (HISTOGRAM_COLOUR, PASS_COLOUR, TOPIC_COLOUR, TRAJECTORY_COLOUR)
    hist, rules, topics, trend = (_box(img, c) for c in colours)
    for name, box in (("histogram", hist), ("rules", rules), ("topics", topics), ("trajectory", trend)):
        assert box[0] > 500, f"{name} chart not drawn"
    middle = WIDTH // 2
    # two columns: histogram and topics on the left, rule pass rates and sentiment on the right
    assert hist[4] < middle and topics[4] < middle
    assert rules[3] > middle and trend[3] > middle
    # first row above the second
    assert hist[2] < topics[1] and rules[2] < trend[1]
    # the tallest histogram bar reaches higher than the others, and pass-rate bars are not all full
    assert hist[2] - hist[1] > 100
    assert rules[4] - rules[3] < WIDTH // 2
