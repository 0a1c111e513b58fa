"""Audio fixtures: real speech from evalset-dev, or espeak-ng speech when it is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from callscribe.audio import decode

SPEECH_FILE = "audio/en_librispeech_1995-1837-0001.wav"
ESPEAK_TEXT = (
    "Thank you for calling. My name is Anna, how can I help you today? "
    "I would like to check the balance of my account, please."
)


def _espeak_speech(tmp: Path) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("neither evalset-dev nor espeak-ng is available for test speech")
    wav = tmp / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), ESPEAK_TEXT], check=True, capture_output=True)
    with decode(wav) as audio:
        return audio.read(0)


@pytest.fixture(scope="session")
def speech(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """About 9 s of real speech, 16 kHz mono float32."""
    try:
        root = request.getfixturevalue("evalset")
    except pytest.skip.Exception:
        return _espeak_speech(tmp_path_factory.mktemp("espeak"))
    with decode(root / SPEECH_FILE) as audio:
        return audio.read(0)
