"""Audio in: decoding to 16 kHz per channel, the speech map (VAD), and cutting clips for the engines."""

from callscribe.audio.decode import (
    BLOCK_FRAMES,
    SAMPLE_RATE,
    AudioError,
    DecodedAudio,
    decode,
    from_array,
    is_audio,
    probe_seconds,
)
from callscribe.audio.enhance import denoise, normalize_loudness, rms_dbfs
from callscribe.audio.files import add_progress_listener, file_kind, open_regular
from callscribe.audio.segment import MAX_CLIP_S, ClipPlan, clip_audio, iter_clips, plan_clips
from callscribe.audio.vad import PreparedAudio, SpeechMap, prepare, prepare_array, vad_session

__all__ = [
    "BLOCK_FRAMES",
    "MAX_CLIP_S",
    "SAMPLE_RATE",
    "AudioError",
    "ClipPlan",
    "DecodedAudio",
    "PreparedAudio",
    "SpeechMap",
    "add_progress_listener",
    "clip_audio",
    "decode",
    "denoise",
    "file_kind",
    "from_array",
    "is_audio",
    "iter_clips",
    "normalize_loudness",
    "open_regular",
    "plan_clips",
    "prepare",
    "prepare_array",
    "probe_seconds",
    "rms_dbfs",
    "vad_session",
]
