"""Build tiny random-weight Qwen3-ASR and Qwen3-ForcedAligner checkpoints with qwen-asr's own classes.

The checkpoints have the real layout (config.json, safetensors weights, tokenizer, feature extractor, chat
template), so everything that loads them goes through the same ``from_pretrained`` code as the published models.
Only the sizes are tiny: 2 layers, width 64, a byte-level tokenizer of 256 symbols plus the Qwen special tokens.
The random decoder is made to speak printable ASCII (its output rows for every other token are zeroed), so its
text is readable; it never produces an end-of-text token, so generation always runs to ``max_new_tokens``.

Run ``python tests/engines_qwen/tiny_qwen.py OUT_DIR`` to write the ASR model to ``OUT_DIR`` and the aligner to
``OUT_DIR/aligner`` (so ``--model OUT_DIR`` works as it is).
"""

from __future__ import annotations

import json
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEL_BINS = 128
SEED = 1234
# Aligner: 80 ms per timestamp class, 3000 classes cover 240 s (the real aligner's limit is 180 s).
TIMESTAMP_SEGMENT_MS = 80.0
CLASSIFY_NUM = 3000
LANGUAGES = ("Chinese", "English", "Cantonese", "Japanese", "Korean", "German", "French", "Spanish")
# Special tokens, in id order after the 256 byte symbols. "<asr_text>" is an ordinary added token: the model
# writes it between the language tag and the text, and decoding must keep it.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|audio_start|>",
    "<|audio_end|>",
    "<|audio_pad|>",
    "<timestamp>",
)
PLAIN_ADDED_TOKENS = ("<asr_text>",)
# The chat layout Qwen3-ASR uses: system = context, user = one audio, then the assistant turn.
CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "<|im_start|>{{ m['role'] }}{{ '\\n' }}"
    "{%- if m['content'] is string -%}{{ m['content'] }}"
    "{%- else -%}{%- for c in m['content'] -%}"
    "{%- if c['type'] == 'audio' -%}<|audio_start|><|audio_pad|><|audio_end|>"
    "{%- elif c['type'] == 'text' -%}{{ c['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "<|im_end|>{{ '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant{{ '\\n' }}{%- endif -%}"
)
SPEAKABLE = string.ascii_letters + " "
# The space row of the output layer is scaled up so the random text breaks into words for the aligner.
SPACE_BOOST = 2.5


@dataclass(frozen=True)
class Sizes:
    """The dimensions of a Qwen3-ASR checkpoint (defaults: tiny). Benchmarks pass the published ones."""

    audio_layers: int = 2
    audio_width: int = 64
    audio_heads: int = 2
    audio_ffn: int = 128
    downsample: int = 16
    text_layers: int = 2
    text_width: int = 64
    text_heads: int = 2
    kv_heads: int = 1
    head_dim: int = 32
    text_ffn: int = 128
    vocab_size: int | None = None  # None: just the test tokenizer's symbols
    mrope_section: tuple[int, int, int] = (6, 5, 5)  # sums to head_dim / 2
    tie_embeddings: bool = False


TINY = Sizes()


@dataclass(frozen=True)
class TinyQwen:
    asr: Path
    aligner: Path


def _tokenizer() -> Any:  # a Qwen2TokenizerFast
    from tokenizers import AddedToken as RawAddedToken
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    # One token per byte: the byte-level alphabet (which symbol gets which id does not matter).
    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    raw.decoder = decoders.ByteLevel()
    raw.add_special_tokens([RawAddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    raw.add_tokens([RawAddedToken(t, special=False, normalized=False) for t in PLAIN_ADDED_TOKENS])
    return Qwen2TokenizerFast(
        tokenizer_object=raw,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={
            "audio_token": "<|audio_pad|>",
            "audio_bos_token": "<|audio_start|>",
            "audio_eos_token": "<|audio_end|>",
        },
    )


def _config(tokenizer: Any, sizes: Sizes, *, aligner: bool) -> Any:  # a Qwen3ASRConfig
    from qwen_asr.core.transformers_backend import Qwen3ASRConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (*SPECIAL_TOKENS, *PLAIN_ADDED_TOKENS)}
    thinker = {
        "audio_config": {
            "num_mel_bins": MEL_BINS,
            "encoder_layers": sizes.audio_layers,
            "encoder_attention_heads": sizes.audio_heads,
            "encoder_ffn_dim": sizes.audio_ffn,
            "d_model": sizes.audio_width,
            "output_dim": sizes.text_width,  # must equal the decoder width
            "n_window": 50,  # the processor assumes 100-frame conv chunks
            "n_window_infer": 800,
            "max_source_positions": 1500,
            "downsample_hidden_size": sizes.downsample,
            "conv_chunksize": 500,
        },
        "text_config": {
            "vocab_size": sizes.vocab_size or len(tokenizer),
            "hidden_size": sizes.text_width,
            "intermediate_size": sizes.text_ffn,
            "num_hidden_layers": sizes.text_layers,
            "num_attention_heads": sizes.text_heads,
            "num_key_value_heads": sizes.kv_heads,
            "head_dim": sizes.head_dim,
            "max_position_embeddings": 65536,
            "rope_theta": 1_000_000.0,
            "rope_scaling": {"rope_type": "default", "mrope_section": list(sizes.mrope_section), "interleaved": True},
            "tie_word_embeddings": sizes.tie_embeddings,
        },
        "audio_token_id": ids["<|audio_pad|>"],
        "audio_start_token_id": ids["<|audio_start|>"],
        "audio_end_token_id": ids["<|audio_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    config = Qwen3ASRConfig(thinker_config=thinker, support_languages=list(LANGUAGES))
    if aligner:
        config.thinker_config.model_type = "qwen3_forced_aligner"
        config.thinker_config.classify_num = CLASSIFY_NUM
        config.timestamp_token_id = ids["<timestamp>"]
        config.timestamp_segment_time = TIMESTAMP_SEGMENT_MS
    return config


def _patch_config(folder: Path, config: Any) -> None:
    """Write the aligner fields that ``save_pretrained`` drops (the class-level model_type wins there)."""
    path = folder / "config.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["thinker_config"]["model_type"] = config.thinker_config.model_type
    data["thinker_config"]["classify_num"] = config.thinker_config.classify_num
    data["timestamp_token_id"] = config.timestamp_token_id
    data["timestamp_segment_time"] = config.timestamp_segment_time
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def build_qwen_asr(
    folder: str | Path,
    sizes: Sizes = TINY,
    *,
    aligner: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
) -> Path:
    """Write a random-weight Qwen3-ASR (or forced aligner) checkpoint of ``sizes`` to ``folder``.

    With the test tokenizer's own vocabulary the random decoder is limited to letters and spaces.
    """
    import torch
    from qwen_asr.core.transformers_backend import Qwen3ASRForConditionalGeneration, Qwen3ASRProcessor
    from transformers import WhisperFeatureExtractor

    folder = Path(folder)
    tokenizer = _tokenizer()
    config = _config(tokenizer, sizes, aligner=aligner)
    torch.manual_seed(SEED + int(aligner))
    with torch.device(device):
        model = Qwen3ASRForConditionalGeneration(config).to(getattr(torch, dtype)).eval()
    if not aligner and sizes.vocab_size is None:
        # Let the random decoder emit only letters and spaces, so its output is readable text.
        speakable = {tokenizer.convert_tokens_to_ids(tokenizer.tokenize(ch))[0] for ch in SPEAKABLE}
        with torch.no_grad():
            head = model.thinker.lm_head.weight
            mask = torch.zeros(head.shape[0], dtype=torch.bool, device=head.device)
            mask[sorted(speakable)] = True
            head[~mask] = 0.0
            head[tokenizer.convert_tokens_to_ids(tokenizer.tokenize(" "))[0]] *= SPACE_BOOST
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    features = WhisperFeatureExtractor(feature_size=MEL_BINS, sampling_rate=16_000)
    Qwen3ASRProcessor(feature_extractor=features, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE).save_pretrained(
        folder
    )
    if aligner:
        _patch_config(folder, config)
    return folder


def build_tiny_qwen(folder: str | Path) -> TinyQwen:
    """Write a tiny Qwen3-ASR model to ``folder`` and a tiny forced aligner to ``folder/aligner``."""
    root = Path(folder)
    return TinyQwen(asr=build_qwen_asr(root), aligner=build_qwen_asr(root / "aligner", aligner=True))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/engines_qwen/tiny_qwen.py OUT_DIR")
    built = build_tiny_qwen(sys.argv[1])
    sys.stdout.write(f"asr model: {built.asr}\naligner: {built.aligner}\n")
