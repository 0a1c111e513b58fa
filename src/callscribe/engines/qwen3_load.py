"""Finding Qwen3-ASR weights (local folder, Hugging Face or ModelScope), telling their layout apart, and choosing
device and precision.

Two checkpoint layouts share ``model_type: "qwen3_asr"`` in config.json:

* ``qwen-asr``: the original release (``Qwen/Qwen3-ASR-1.7B``), run by the qwen-asr package; its config nests
  everything under ``thinker_config``.
* ``hf``: the transformers-native conversion (``Qwen/Qwen3-ASR-1.7B-hf``), run by transformers >= 5.13; its config
  has ``audio_config`` and ``text_config`` at the top.

The two libraries pin different transformers versions, so each layout needs its own environment (extra).
"""

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
QWEN_ASR = "qwen-asr"
HF = "hf"
LAYOUTS = (QWEN_ASR, HF)
INSTALL_HINTS = {
    QWEN_ASR: "pip install 'callscribe[qwen]' (on CPU machines install torch==2.13.0 first)",
    HF: "pip install 'callscribe[qwen-hf]' (on CPU machines install torch==2.13.0 first)",
}
INSTALL_HINT = INSTALL_HINTS[QWEN_ASR]
_LIBRARY = {QWEN_ASR: "qwen-asr", HF: "transformers >= 5.13 (with Qwen3-ASR built in)"}


def layout_of(config: dict[str, Any]) -> str | None:
    """``"qwen-asr"``, ``"hf"`` or None (not a Qwen3-ASR config) for a parsed config.json."""
    if config.get("model_type") != "qwen3_asr":
        return None
    if isinstance(config.get("thinker_config"), dict):
        return QWEN_ASR
    if isinstance(config.get("audio_config"), dict) and isinstance(config.get("text_config"), dict):
        return HF
    return None


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineError(f"qwen3: cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise EngineError(f"qwen3: {path} does not hold a JSON object")
    return data


def folder_layout(folder: Path) -> str:
    """The layout of a model folder, or one clear error saying what its config.json holds instead."""
    config = _read_config(folder)
    found = layout_of(config)
    if found is None:
        keys = ", ".join(sorted(k for k in config if k.endswith("_config"))) or "no *_config sections"
        raise EngineError(
            f"qwen3: {folder} is not a Qwen3-ASR checkpoint of a known layout (config.json has model_type "
            f"{config.get('model_type')!r} and {keys}; expected model_type 'qwen3_asr' with thinker_config "
            "(qwen-asr layout) or audio_config + text_config (transformers -hf layout))"
        )
    return found


def model_layout(name: str, hub: str = "huggingface") -> str:
    """The layout of a folder or hub id: from its config.json when it is on this machine, else from the name
    (``...-hf`` ids are transformers-native)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return folder_layout(path)
    cached = _cached_folder(name, hub)
    if cached is not None:
        found = layout_of(_read_config(cached))
        if found is not None:
            return found
    return HF if name.rstrip("/").lower().endswith("-hf") else QWEN_ASR


def library_available(layout: str) -> bool:
    """Whether the library that runs ``layout`` is importable here (without importing torch or models)."""
    if layout == QWEN_ASR:
        return importlib.util.find_spec("qwen_asr") is not None
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        return importlib.util.find_spec("transformers.models.qwen3_asr") is not None
    except (ImportError, ValueError):  # transformers itself is missing
        return False


def require_library(layout: str, what: str) -> None:
    """Raise one clear line naming the extra to install when ``layout``'s library is missing."""
    if not library_available(layout):
        raise EngineError(f"qwen3: {what} needs {_LIBRARY[layout]}, which is not installed; {INSTALL_HINTS[layout]}")


def _cached_folder(name: str, hub: str) -> Path | None:
    """The cache folder that holds ``name``'s config.json, if the hub cache has it."""
    if hub == "modelscope":
        root = Path(os.environ.get("MODELSCOPE_CACHE", Path.home() / ".cache" / "modelscope" / "hub"))
        for folder in (root / "models" / name, root / name):
            if (folder / "config.json").is_file():
                return folder
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(name, "config.json")
    except ValueError:  # not a valid repo id
        return None
    return Path(found).parent if isinstance(found, str) else None


def _cached_weights(name: str, hub: str) -> tuple[Path, str] | None:
    """The folder holding ``name``'s config.json and weights, and its layout, when they are on this machine."""
    path = Path(name).expanduser()
    folder = path if path.is_dir() else _cached_folder(name, hub)
    if folder is None or not (folder / "config.json").is_file() or not any(folder.glob("*.safetensors")):
        return None
    try:
        found = layout_of(_read_config(folder))
    except EngineError:
        return None
    return (folder, found) if found else None


def available(model: str | None = None, hub: str = "huggingface", **_: Any) -> tuple[bool, str]:
    name = model or DEFAULT_MODEL
    found = _cached_weights(name, hub)
    if found is None:
        if not any(library_available(x) for x in LAYOUTS):
            return False, f"neither qwen-asr nor transformers >= 5.13 is installed; {INSTALL_HINTS[QWEN_ASR]}"
        return False, f"no Qwen3-ASR weights for {name} on this machine (not a model folder, not in the {hub} cache)"
    folder, layout = found
    if not library_available(layout):
        return False, f"{folder} has the {layout} layout, whose library is not installed; {INSTALL_HINTS[layout]}"
    return True, f"Qwen3-ASR weights at {folder} ({layout} layout)"


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
