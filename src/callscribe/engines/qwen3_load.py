"""Finding Qwen3-ASR weights (local folder, Hugging Face or ModelScope) and choosing device and precision."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

from callscribe.engines.base import EngineError

log = logging.getLogger("callscribe")

DEFAULT_MODEL = "Qwen/Qwen3-ASR-1.7B"
HUBS = ("huggingface", "modelscope")
INSTALL_HINT = "pip install 'callscribe[qwen]' (on CPU machines install torch==2.13.0 first)"


def _cached_weights(name: str, hub: str) -> Path | None:
    """The folder holding ``name``'s config.json and weights when they are already on this machine."""
    path = Path(name).expanduser()
    candidates: list[Path] = []
    if path.is_dir():
        candidates.append(path)
    elif hub == "modelscope":
        root = Path(os.environ.get("MODELSCOPE_CACHE", Path.home() / ".cache" / "modelscope" / "hub"))
        candidates += [root / "models" / name, root / name]
    else:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
        if isinstance(found, str):
            candidates.append(Path(found).parent)
    for folder in candidates:
        config = folder / "config.json"
        if config.is_file() and any(folder.glob("*.safetensors")):
            try:
                if json.loads(config.read_text(encoding="utf-8")).get("model_type") == "qwen3_asr":
                    return folder
            except (OSError, ValueError):
                continue
    return None


def available(model: str | None = None, hub: str = "huggingface", **_: Any) -> tuple[bool, str]:
    if importlib.util.find_spec("qwen_asr") is None:
        return False, f"qwen-asr is not installed ({INSTALL_HINT})"
    name = model or DEFAULT_MODEL
    folder = _cached_weights(name, hub)
    if folder is None:
        return False, f"no Qwen3-ASR weights for {name} on this machine (not a model folder, not in the {hub} cache)"
    return True, f"Qwen3-ASR weights at {folder}"


def resolve_model(model: str | None, hub: str = "huggingface") -> str:
    """A local folder, or a hub id to download: what ``from_pretrained`` gets."""
    name = model or DEFAULT_MODEL
    if hub not in HUBS:
        raise EngineError(f"qwen3: unknown hub {hub!r}; use one of {', '.join(HUBS)}")
    path = Path(name).expanduser()
    if path.exists() or name.startswith(("/", ".", "~")):
        if not (path / "config.json").is_file():
            raise EngineError(f"qwen3: {name} is not a model folder (no config.json there)")
        return str(path)
    if hub == "modelscope":
        try:
            from modelscope import snapshot_download
        except ImportError:
            raise EngineError("qwen3: hub=modelscope needs the modelscope package (pip install modelscope)") from None
        log.info("downloading %s from ModelScope", name)
        return str(snapshot_download(name))
    return name  # transformers downloads it from Hugging Face on first use


def torch_setup(device: str, compute_type: str, threads: int) -> tuple[str, Any]:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if compute_type == "auto":
        compute_type = "bfloat16" if device.startswith("cuda") else "float32"
    dtype = getattr(torch, compute_type, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise EngineError(f"qwen3: compute_type {compute_type!r} is not a torch float type (bfloat16, float32...)")
    return device, dtype
