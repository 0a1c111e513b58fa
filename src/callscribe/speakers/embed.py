"""Speaker embeddings: resemblyzer's pretrained voice encoder, run on 16 kHz float32 windows.

The weights ship in the ``resemblyzer`` wheel (extra ``[diarize]``). Importing the ``resemblyzer`` package
pulls in ``webrtcvad``, whose import needs ``pkg_resources`` (gone from setuptools >= 81), so this module finds
the wheel's ``pretrained.pt`` without importing the package and runs the same network (3-layer LSTM, linear,
ReLU, L2 norm) on the same features (40-band power mel, 25 ms window, 10 ms hop; librosa's mel filters). The
encoder is loaded once per process.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger("callscribe")

SAMPLE_RATE = 16_000
MEL_BANDS = 40
MEL_WIN = 400  # 25 ms
MEL_HOP = 160  # 10 ms
HIDDEN = 256
EMBED_DIM = 256
LAYERS = 3
TARGET_DBFS = -30.0  # the level the encoder was trained on
INT16_MAX = 32767.0

_LOCK = threading.Lock()


class EncoderUnavailable(RuntimeError):
    """The speaker encoder cannot be loaded (extra ``[diarize]`` not installed)."""


def weights_path() -> Path:
    """Where resemblyzer's ``pretrained.pt`` lives, found without importing the package."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable(
            "speaker diarization needs the [diarize] extra: pip install 'callscribe[diarize]' (resemblyzer, torch)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.exists():
        raise EncoderUnavailable(f"{path}: resemblyzer is installed but its pretrained.pt is missing")
    return path


class VoiceEncoder:
    """Turns mel windows into unit-length 256-d speaker embeddings."""

    def __init__(self, path: Path | None = None, threads: int = 0) -> None:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EncoderUnavailable("speaker diarization needs torch (extra [diarize])") from exc
        self._torch = torch
        self._threads = threads
        path = path or weights_path()
        state = torch.load(path, map_location="cpu", weights_only=False)["model_state"]
        self.lstm = torch.nn.LSTM(MEL_BANDS, HIDDEN, LAYERS, batch_first=True)
        self.linear = torch.nn.Linear(HIDDEN, EMBED_DIM)
        self.lstm.load_state_dict({k[len("lstm.") :]: v for k, v in state.items() if k.startswith("lstm.")})
        linear = {k[len("linear.") :]: v for k, v in state.items() if k.startswith("linear.")}
        self.linear.load_state_dict(linear)
        self.lstm.eval()
        self.linear.eval()
        import librosa

        basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=MEL_WIN, n_mels=MEL_BANDS)
        self._mel_basis = basis.astype(np.float32)
        self._window = np.hanning(MEL_WIN + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa uses
        log.debug("speaker encoder loaded from %s", path)

    def mel(self, wav: np.ndarray) -> np.ndarray:
        """Power mel spectrogram, shape (frames, 40); frame i is centred on sample ``i * 160``."""
        pad = MEL_WIN // 2
        x = np.pad(wav.astype(np.float32), (pad, pad), mode="constant")
        n = 1 + (len(x) - MEL_WIN) // MEL_HOP
        if n <= 0:
            return np.zeros((0, MEL_BANDS), dtype=np.float32)
        idx = np.arange(MEL_WIN)[None, :] + MEL_HOP * np.arange(n)[:, None]
        spec = np.abs(np.fft.rfft(x[idx] * self._window, axis=1)) ** 2
        return (spec.astype(np.float32) @ self._mel_basis.T).astype(np.float32)

    def embed_mels(self, windows: list[np.ndarray]) -> np.ndarray:
        """Embed mel windows (each (frames, 40)); windows of equal length are batched together."""
        torch = self._torch
        out = np.zeros((len(windows), EMBED_DIM), dtype=np.float32)
        by_len: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_len.setdefault(len(w), []).append(i)
        with _LOCK, torch.inference_mode():
            previous = torch.get_num_threads()
            if self._threads:
                torch.set_num_threads(self._threads)
            try:
                for length, idx in by_len.items():
                    if length == 0:
                        continue
                    batch = torch.from_numpy(np.stack([windows[i] for i in idx]))
                    _, (hidden, _) = self.lstm(batch)
                    raw = torch.relu(self.linear(hidden[-1]))
                    raw = raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-9)
                    out[idx] = raw.numpy()
            finally:
                torch.set_num_threads(previous)
        return out


def normalize_level(wav: np.ndarray, speech_mask: np.ndarray | None = None) -> np.ndarray:
    """Scale ``wav`` so its speech sits at the encoder's training level (−30 dBFS): its mel is not log-scaled."""
    part = wav if speech_mask is None or not speech_mask.any() else wav[speech_mask]
    rms = float(np.sqrt(np.mean(np.square(part, dtype=np.float64)))) if len(part) else 0.0
    if rms <= 1e-7:
        return wav
    change_db = TARGET_DBFS - 20.0 * np.log10(rms)
    return (wav * (10.0 ** (change_db / 20.0))).astype(np.float32)


@lru_cache(maxsize=1)
def get_encoder() -> VoiceEncoder:
    """The process-wide encoder (loaded on first use)."""
    return VoiceEncoder()
