"""auto_batch_size: rows that fit in free GPU memory, from a Qwen3-ASR config.json of either layout."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from callscribe.engines.qwen3_batch import (
    CPU_BATCH,
    MAX_BATCH,
    SAFETY,
    auto_batch_size,
    bytes_per_row,
    model_parts,
)

GIB = 1 << 30
# The published dimensions (config.json of Qwen/Qwen3-ASR-1.7B and -0.6B).
AUDIO_17 = {"encoder_layers": 24, "d_model": 1024, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
            "num_mel_bins": 128, "downsample_hidden_size": 480, "output_dim": 2048}  # fmt: skip
TEXT_17 = {"num_hidden_layers": 28, "hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 8,
           "head_dim": 128, "intermediate_size": 6144, "vocab_size": 151936}  # fmt: skip
AUDIO_06 = {"encoder_layers": 18, "d_model": 896, "encoder_attention_heads": 14, "encoder_ffn_dim": 3584,
            "num_mel_bins": 128, "downsample_hidden_size": 480, "output_dim": 1024}  # fmt: skip
TEXT_06 = {"num_hidden_layers": 28, "hidden_size": 1024, "num_attention_heads": 16, "num_key_value_heads": 8,
           "head_dim": 128, "intermediate_size": 3072, "vocab_size": 151936}  # fmt: skip
# A 20 s clip (the longest the pipeline cuts) with the engine's default budget: 10 tokens a second + 24.
CLIP_S, BUDGET = 20.0, 224


def qwen_asr_layout(audio: dict[str, Any], text: dict[str, Any]) -> dict[str, Any]:
    return {"model_type": "qwen3_asr", "thinker_config": {"audio_config": dict(audio), "text_config": dict(text)}}


def hf_layout(audio: dict[str, Any], text: dict[str, Any]) -> dict[str, Any]:
    return {"model_type": "qwen3_asr", "audio_config": dict(audio), "text_config": dict(text)}


BIG, SMALL = qwen_asr_layout(AUDIO_17, TEXT_17), qwen_asr_layout(AUDIO_06, TEXT_06)
FREE = [g * GIB for g in (1, 3, 6, 10, 16, 24, 40, 60, 75, 130)]


def test_more_free_memory_never_means_fewer_rows() -> None:
    for config in (BIG, SMALL):
        sizes = [auto_batch_size(config, "cuda", BUDGET, CLIP_S, free_bytes=free) for free in FREE]
        assert sizes == sorted(sizes)
        assert sizes[0] < sizes[-1] == MAX_BATCH
        assert all(1 <= n <= MAX_BATCH and (n < 8 or n % 8 == 0) for n in sizes)


def test_the_smaller_model_fits_more_rows() -> None:
    assert bytes_per_row(SMALL, BUDGET, CLIP_S) < bytes_per_row(BIG, BUDGET, CLIP_S)
    pairs = [
        (
            auto_batch_size(SMALL, "cuda", BUDGET, CLIP_S, free_bytes=f),
            auto_batch_size(BIG, "cuda", BUDGET, CLIP_S, free_bytes=f),
        )
        for f in FREE
    ]
    assert all(small >= big for small, big in pairs)
    assert any(small > big for small, big in pairs)


def test_both_checkpoint_layouts_give_the_same_answer() -> None:
    for audio, text in ((AUDIO_17, TEXT_17), (AUDIO_06, TEXT_06)):
        a, b = qwen_asr_layout(audio, text), hf_layout(audio, text)
        assert model_parts(a) == model_parts(b)
        for free in FREE:
            assert auto_batch_size(a, "cuda:0", BUDGET, CLIP_S, free_bytes=free) == auto_batch_size(
                b, "cuda:0", BUDGET, CLIP_S, free_bytes=free
            )


def test_each_output_token_costs_one_kv_entry_per_layer() -> None:
    per_token = 28 * 8 * 128 * 2 * 2  # layers x kv heads x head_dim x (K, V) x bf16 bytes
    grown = bytes_per_row(BIG, BUDGET + 1000, CLIP_S) - bytes_per_row(BIG, BUDGET, CLIP_S)
    assert grown == pytest.approx(SAFETY * 1000 * per_token, abs=2)
    # longer clips and longer prompts cost more; float32 about twice bfloat16
    assert bytes_per_row(BIG, BUDGET, 30.0) > bytes_per_row(BIG, BUDGET, CLIP_S) > bytes_per_row(BIG, BUDGET, 2.0)
    assert bytes_per_row(BIG, BUDGET, CLIP_S, prompt_tokens=400) > bytes_per_row(BIG, BUDGET, CLIP_S)
    assert bytes_per_row(BIG, BUDGET, CLIP_S, dtype_bytes=4) > 1.9 * bytes_per_row(BIG, BUDGET, CLIP_S)


def test_clamps_and_cpu() -> None:
    assert auto_batch_size(BIG, "cuda", BUDGET, CLIP_S, free_bytes=GIB) == 1  # headroom leaves nothing: still 1
    assert auto_batch_size(BIG, "cuda", BUDGET, 1.0, free_bytes=1000 * GIB) == MAX_BATCH
    some = auto_batch_size(BIG, "cuda", BUDGET, CLIP_S, free_bytes=5 * GIB)
    assert 1 <= some < 8 or some % 8 == 0
    assert auto_batch_size(BIG, "cpu", BUDGET, CLIP_S, free_bytes=1000 * GIB) == CPU_BATCH
    assert auto_batch_size(BIG, "mps", BUDGET, CLIP_S) == CPU_BATCH


def test_a_config_that_is_not_qwen3_asr_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="audio_config/text_config"):
        auto_batch_size({"model_type": "whisper", "d_model": 512}, "cuda", BUDGET, CLIP_S, free_bytes=10 * GIB)
    broken = copy.deepcopy(BIG)
    del broken["thinker_config"]["text_config"]["vocab_size"]
    with pytest.raises(ValueError, match="vocab_size"):
        bytes_per_row(broken, BUDGET, CLIP_S)


@pytest.fixture(scope="module")
def tiny_asr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("qwen_asr")
    from tiny_qwen import build_qwen_asr

    return build_qwen_asr(tmp_path_factory.mktemp("tiny-qwen3-batch"))


def test_reads_a_real_checkpoint_config(tiny_asr: Path) -> None:
    """The config.json the official classes write (tiny sizes) has every key the estimate reads."""
    from tiny_qwen import TINY

    config = json.loads((tiny_asr / "config.json").read_text(encoding="utf-8"))
    audio, text = model_parts(config)
    assert text["num_hidden_layers"] == TINY.text_layers and audio["d_model"] == TINY.audio_width
    tiny = bytes_per_row(config, BUDGET, CLIP_S)
    assert 0 < tiny < bytes_per_row(SMALL, BUDGET, CLIP_S)
    assert auto_batch_size(config, "cuda", BUDGET, CLIP_S, free_bytes=4 * GIB) == MAX_BATCH


def test_the_pipeline_hands_the_engine_one_batch_per_call(tiny_asr: Path, examples_dir: Path) -> None:
    """Real calls through the pipeline and the real qwen3 engine: every generate() gets at most one engine batch,
    and the engine sized without a batch size (CPU) says so with its batch_size."""
    from callscribe.engines import base
    from callscribe.pipeline import Pipeline

    assert base.create("qwen3", model=str(tiny_asr), batch_size=0).batch_size == CPU_BATCH
    engine = base.create("qwen3", model=str(tiny_asr), batch_size=4)
    thinker = engine.backend.model.thinker
    rows: list[int] = []

    def prompt_pass(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        if kwargs.get("input_features") is not None:
            rows.append(int(kwargs["input_ids"].shape[0]))

    hook = thinker.register_forward_pre_hook(prompt_pass, with_kwargs=True)
    heard: list[int] = []
    quick = {"recover": False, "tokens_per_second": 2, "token_margin": 4}
    try:
        calls = sorted(p for p in examples_dir.iterdir() if p.suffix in (".wav", ".mp3"))
        out = list(
            Pipeline({"engine": "qwen3", "extra": quick}, engine=engine).run(
                ((p, "") for p in calls), on_clip_batch=heard.append
            )
        )
    finally:
        hook.remove()
    assert len(out) == len(calls) and all(hasattr(t, "utterances") for t in out)
    assert heard and max(heard) <= 4 and sum(heard) >= len(calls)
    assert rows and max(rows) <= 4 and len(rows) >= len(heard)


def test_the_engine_sizes_cuda_batches_from_the_free_memory_it_reads(
    tiny_asr: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """batch_size 0 on CUDA: the engine reads the free memory (stubbed here: no GPU) with its model loaded and
    divides it by the per-row estimate of its own config, for a 30 s clip and its budget."""
    from callscribe.engines import base, qwen3_batch
    from callscribe.engines.qwen3 import AUTO_BATCH_CLIP_S

    engine = base.create("qwen3", model=str(tiny_asr), batch_size=0)
    row = bytes_per_row(engine.batch_config(), engine.budget(AUTO_BATCH_CLIP_S, {}), AUTO_BATCH_CLIP_S, dtype_bytes=4)
    asked: list[str] = []
    free = {"bytes": 0}

    def reading(device: str) -> int:
        asked.append(device)
        return free["bytes"]

    monkeypatch.setattr(qwen3_batch, "free_cuda_bytes", reading)
    monkeypatch.setattr(engine, "device", "cuda:0")
    sizes = []
    for rows in (3, 21, 50, 10_000):
        free["bytes"] = qwen3_batch.MIN_HEADROOM_BYTES + rows * row
        sizes.append(engine._auto_batch_size())
    assert asked == ["cuda:0"] * 4
    assert sizes == [3, 16, 48, MAX_BATCH]
