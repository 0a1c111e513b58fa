"""Build tiny random-weight Qwen3-ASR checkpoints of the transformers-native (``-hf``) layout with transformers' own
classes (transformers >= 5.13, which has Qwen3-ASR built in).

The same idea as :mod:`tiny_qwen` (the qwen-asr layout), reusing its :class:`Sizes`, byte-level tokenizer and
"speak printable letters" trick: the checkpoint is written with ``save_pretrained`` (config.json with top-level
``audio_config`` / ``text_config``, safetensors weights, tokenizer, feature extractor, chat template), so loading it
goes through the same ``from_pretrained`` code as ``Qwen/Qwen3-ASR-1.7B-hf``. The random decoder only speaks
letters and spaces and never ends, so generation always runs to ``max_new_tokens``.

Run ``python tests/engines_qwen/tiny_qwen_hf.py OUT_DIR`` to write the ASR model to ``OUT_DIR`` and the forced
aligner to ``OUT_DIR/aligner``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tiny_qwen import (
    CLASSIFY_NUM,
    MEL_BINS,
    PLAIN_ADDED_TOKENS,
    SEED,
    SPACE_BOOST,
    SPEAKABLE,
    SPECIAL_TOKENS,
    TIMESTAMP_SEGMENT_MS,
    TINY,
    Sizes,
    TinyQwen,
    _tokenizer,
)

# The chat layout of the -hf checkpoints: a system turn (the context; empty when there is none), a user turn with
# one audio placeholder per audio, assistant turns as given (a prefilled answer), then the generation prompt.
ASR_CHAT_TEMPLATE = (
    "{%- set system = namespace(text='') -%}"
    "{%- for m in messages if m['role'] == 'system' -%}"
    "{%- if m['content'] is string -%}{%- set system.text = system.text + m['content'] -%}"
    "{%- else -%}{%- for c in m['content'] if c['type'] == 'text' -%}"
    "{%- set system.text = system.text + c['text'] -%}{%- endfor -%}{%- endif -%}"
    "{%- endfor -%}"
    "<|im_start|>system{{ '\\n' }}{{ system.text }}<|im_end|>{{ '\\n' }}<|im_start|>user{{ '\\n' }}"
    "{%- for m in messages if m['role'] == 'user' and m['content'] is not string -%}"
    "{%- for c in m['content'] if c['type'] == 'audio' -%}<|audio_start|><|audio_pad|><|audio_end|>{%- endfor -%}"
    "{%- endfor -%}"
    "<|im_end|>{{ '\\n' }}"
    "{%- for m in messages if m['role'] == 'assistant' -%}<|im_start|>assistant{{ '\\n' }}"
    "{%- if m['content'] is string -%}{{ m['content'] }}"
    "{%- else -%}{%- for c in m['content'] if c['type'] == 'text' -%}{{ c['text'] }}{%- endfor -%}{%- endif -%}"
    "<|im_end|>{{ '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant{{ '\\n' }}{%- endif -%}"
)
# The forced aligner's input: the audio, then every word followed by a start and an end timestamp slot.
ALIGNER_CHAT_TEMPLATE = (
    "{%- for m in messages if m['content'] is not string -%}"
    "{%- for c in m['content'] if c['type'] == 'audio' -%}<|audio_start|><|audio_pad|><|audio_end|>{%- endfor -%}"
    "{%- for c in m['content'] if c['type'] == 'text' -%}{{ c['text'] }}<timestamp><timestamp>{%- endfor -%}"
    "{%- endfor -%}"
)


def _config(tokenizer: Any, sizes: Sizes, *, aligner: bool) -> Any:  # a transformers Qwen3ASRConfig
    from transformers import Qwen3ASRConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (*SPECIAL_TOKENS, *PLAIN_ADDED_TOKENS)}
    extra: dict[str, Any] = {"num_labels": CLASSIFY_NUM} if aligner else {}
    return Qwen3ASRConfig(
        audio_config={
            "model_type": "qwen3_asr_encoder",
            "num_mel_bins": MEL_BINS,
            "encoder_layers": sizes.audio_layers,
            "encoder_attention_heads": sizes.audio_heads,
            "encoder_ffn_dim": sizes.audio_ffn,
            "d_model": sizes.audio_width,
            "output_dim": sizes.text_width,  # must equal the decoder width
            "n_window": 50,  # the processor assumes 100-frame chunks
            "n_window_infer": 800,
            "downsample_hidden_size": sizes.downsample,
            "max_position_embeddings": 13,  # positions inside one 100-frame chunk after the convolutions
        },
        text_config={
            "model_type": "qwen3",
            "vocab_size": sizes.vocab_size or len(tokenizer),
            "hidden_size": sizes.text_width,
            "intermediate_size": sizes.text_ffn,
            "num_hidden_layers": sizes.text_layers,
            "num_attention_heads": sizes.text_heads,
            "num_key_value_heads": sizes.kv_heads,
            "head_dim": sizes.head_dim,
            "max_position_embeddings": 65536,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0},
            "tie_word_embeddings": sizes.tie_embeddings,
        },
        audio_token_id=ids["<|audio_pad|>"],
        timestamp_token_id=ids["<timestamp>"],
        pad_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|endoftext|>"], ids["<|im_end|>"]],
        tie_word_embeddings=sizes.tie_embeddings,
        **extra,
    )


def build_qwen_asr_hf(
    folder: str | Path,
    sizes: Sizes = TINY,
    *,
    aligner: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
) -> Path:
    """Write a random-weight ``-hf`` Qwen3-ASR (or forced aligner) checkpoint of ``sizes`` to ``folder``.

    With the test tokenizer's own vocabulary the random decoder is limited to letters and spaces.
    """
    import torch
    from transformers import (
        Qwen3ASRFeatureExtractor,
        Qwen3ASRForConditionalGeneration,
        Qwen3ASRForTokenClassification,
        Qwen3ASRProcessor,
    )

    folder = Path(folder)
    tokenizer = _tokenizer()
    config = _config(tokenizer, sizes, aligner=aligner)
    torch.manual_seed(SEED + int(aligner))
    model_class = Qwen3ASRForTokenClassification if aligner else Qwen3ASRForConditionalGeneration
    with torch.device(device):
        model = model_class(config).to(getattr(torch, dtype)).eval()
    if not aligner and sizes.vocab_size is None:
        # Let the random decoder emit only letters and spaces, so its output is readable text.
        speakable = {tokenizer.convert_tokens_to_ids(tokenizer.tokenize(ch))[0] for ch in SPEAKABLE}
        with torch.no_grad():
            head = model.lm_head.weight
            mask = torch.zeros(head.shape[0], dtype=torch.bool, device=head.device)
            mask[sorted(speakable)] = True
            head[~mask] = 0.0
            head[tokenizer.convert_tokens_to_ids(tokenizer.tokenize(" "))[0]] *= SPACE_BOOST
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    features = Qwen3ASRFeatureExtractor(feature_size=MEL_BINS, sampling_rate=16_000)
    Qwen3ASRProcessor(
        feature_extractor=features,
        tokenizer=tokenizer,
        chat_template=ALIGNER_CHAT_TEMPLATE if aligner else ASR_CHAT_TEMPLATE,
        timestamp_segment_time=TIMESTAMP_SEGMENT_MS,
    ).save_pretrained(folder)
    return folder


def build_tiny_qwen_hf(folder: str | Path) -> TinyQwen:
    """Write a tiny ``-hf`` Qwen3-ASR model to ``folder`` and a tiny ``-hf`` forced aligner to ``folder/aligner``."""
    root = Path(folder)
    return TinyQwen(asr=build_qwen_asr_hf(root), aligner=build_qwen_asr_hf(root / "aligner", aligner=True))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/engines_qwen/tiny_qwen_hf.py OUT_DIR")
    built = build_tiny_qwen_hf(sys.argv[1])
    sys.stdout.write(f"asr model: {built.asr}\naligner: {built.aligner}\n")
