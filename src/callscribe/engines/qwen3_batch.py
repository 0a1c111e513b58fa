"""How many clips the qwen3 engine can decode at once: an estimate from the checkpoint's config.json and free memory.

:func:`auto_batch_size` divides the GPU's free memory (less :data:`HEADROOM_SHARE` of it, at least
:data:`MIN_HEADROOM_BYTES`) by :func:`bytes_per_row`, the memory one batch row needs at its peak. Both checkpoint
layouts are read: qwen-asr's (``thinker_config.audio_config`` / ``thinker_config.text_config``) and the
transformers-native ``-hf`` one (top-level ``audio_config`` / ``text_config``); they give the same answer.

Assumptions behind :func:`bytes_per_row` (``dtype`` bytes per value, bfloat16 on CUDA; T = prompt tokens + audio
tokens, the prompt pass; S = T + the output budget, the longest sequence):

- Audio tokens: :data:`AUDIO_TOKENS_PER_S` per second of audio (100 mel frames a second, three stride-2
  convolutions over 1 s windows leave 13).
- Decoder KV cache: layers x kv_heads x head_dim x 2 (keys and values) x dtype x S. Rows of a batch are padded to
  its longest, so ``clip_s`` should be the longest clip of a batch.
- Logits: the prompt pass computes them at every position (qwen-asr's forward keeps no ``logits_to_keep``):
  T x vocab x dtype; then each step's scores in float32, a few copies (logits processors, the confidence
  recorder): :data:`STEP_LOGIT_COPIES` x vocab x 4.
- Decoder activations of the prompt pass, one layer at a time: T x (4 x hidden + 3 x intermediate) x dtype
  (attention projections and the SwiGLU MLP).
- Audio encoder: the first convolution's output (downsample_hidden x mel_bins / 2 x 50 frames a second) and one
  encoder layer (audio tokens x (3 x d_model + ffn)). qwen-asr encodes one clip at a time, so this is counted per
  row only to stay safe for an encoder that batches.
- x :data:`SAFETY` for allocator fragmentation, the cache growing by concatenation and temporaries not listed.

``benchmarks/qwen3_gpu_check.py`` measures the real peak memory per row (torch.cuda.max_memory_allocated) on a GPU
to check these constants. Devices other than CUDA get :data:`CPU_BATCH`: there a bigger batch buys little.
"""

from __future__ import annotations

import math
from typing import Any

AUDIO_TOKENS_PER_S = 13
MEL_FRAMES_PER_S = 100
PROMPT_TOKENS = 48  # chat template, language tag and a short context; pass more for a long glossary
STEP_LOGIT_COPIES = 3
SAFETY = 1.3
HEADROOM_SHARE = 0.10
MIN_HEADROOM_BYTES = 2 << 30
MAX_BATCH = 128
CPU_BATCH = 4
# Audio encoder defaults (the published 1.7B's), for a config.json that leaves them out.
_AUDIO_DEFAULTS = {"num_mel_bins": 128, "downsample_hidden_size": 480}


def model_parts(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(audio_config, text_config)`` from either checkpoint layout."""
    holder = config.get("thinker_config") if isinstance(config.get("thinker_config"), dict) else config
    audio, text = holder.get("audio_config"), holder.get("text_config")
    if not isinstance(audio, dict) or not isinstance(text, dict):
        raise ValueError(
            "config.json: no audio_config/text_config (neither under thinker_config nor at the top): "
            "not a Qwen3-ASR checkpoint"
        )
    return audio, text


def _int(part: dict[str, Any], *keys: str, default: int | None = None) -> int:
    for key in keys:
        value = part.get(key)
        if isinstance(value, int) and value > 0:
            return value
    if default is None:
        raise ValueError(f"config.json: {keys[0]} is missing from the model config")
    return default


def bytes_per_row(
    config: dict[str, Any],
    budget_tokens: int,
    clip_s: float,
    *,
    prompt_tokens: int = PROMPT_TOKENS,
    dtype_bytes: int = 2,
) -> int:
    """Peak memory one batch row needs for a clip of ``clip_s`` seconds and ``budget_tokens`` new tokens."""
    audio, text = model_parts(config)
    layers = _int(text, "num_hidden_layers")
    hidden = _int(text, "hidden_size")
    heads = _int(text, "num_attention_heads")
    kv_heads = _int(text, "num_key_value_heads", default=heads)
    head_dim = _int(text, "head_dim", default=hidden // heads)
    ffn = _int(text, "intermediate_size")
    vocab = _int(text, "vocab_size")
    enc_width = _int(audio, "d_model", "hidden_size")
    enc_ffn = _int(audio, "encoder_ffn_dim", "intermediate_size")
    mel = _int(audio, "num_mel_bins", default=_AUDIO_DEFAULTS["num_mel_bins"])
    conv = _int(audio, "downsample_hidden_size", default=_AUDIO_DEFAULTS["downsample_hidden_size"])

    audio_tokens = math.ceil(max(clip_s, 0.0) * AUDIO_TOKENS_PER_S)
    prompt = max(0, prompt_tokens) + audio_tokens
    longest = prompt + max(0, budget_tokens)
    kv = layers * kv_heads * head_dim * 2 * dtype_bytes * longest
    logits = prompt * vocab * dtype_bytes + STEP_LOGIT_COPIES * vocab * 4
    decoder = prompt * (4 * hidden + 3 * ffn) * dtype_bytes
    frames = math.ceil(max(clip_s, 0.0) * MEL_FRAMES_PER_S / 2)
    encoder = (frames * conv * (mel // 2) + audio_tokens * (3 * enc_width + enc_ffn)) * dtype_bytes
    return math.ceil(SAFETY * (kv + logits + decoder + encoder))


def free_cuda_bytes(device: str) -> int:
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def auto_batch_size(
    config: dict[str, Any],
    device: str,
    budget_tokens: int,
    clip_s: float,
    free_bytes: int | None = None,
    *,
    prompt_tokens: int = PROMPT_TOKENS,
    dtype_bytes: int = 2,
) -> int:
    """Rows that fit in the free memory of ``device`` (measured with the model loaded, unless ``free_bytes`` is
    given), clamped to 1..MAX_BATCH and rounded down to a multiple of 8 from 8 up. Not CUDA: :data:`CPU_BATCH`."""
    if not str(device).startswith("cuda"):
        return CPU_BATCH
    free = free_cuda_bytes(device) if free_bytes is None else int(free_bytes)
    usable = free - max(MIN_HEADROOM_BYTES, int(HEADROOM_SHARE * free))
    row = bytes_per_row(config, budget_tokens, clip_s, prompt_tokens=prompt_tokens, dtype_bytes=dtype_bytes)
    rows = max(1, min(MAX_BATCH, usable // row))
    return rows - rows % 8 if rows >= 8 else int(rows)


__all__ = ["auto_batch_size", "bytes_per_row", "model_parts"]
