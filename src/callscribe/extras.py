"""Optional extras: say in one line which extra a feature needs and how to install it.

``require("jieba", "qa")`` imports a module of an extra or raises :class:`MissingExtra`, whose message names the
extra and the install command (CPU torch first where the extra pulls torch, so pip does not fetch CUDA builds).
:func:`missing_extra_message` turns any ``ModuleNotFoundError`` of an optional module into that same line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# The top-level module a package installs -> the extra that installs it.
MODULE_EXTRAS = {
    "jieba": "qa",
    "pypinyin": "qa",
    "openpyxl": "qa",
    "jiwer": "eval",
    "pyannote": "eval",
    "opencc": "eval",
    "cn2an": "eval",
    "whisper_normalizer": "eval",
    "qwen_asr": "qwen",
    "transformers": "qwen",
    "modelscope": "modelscope",
    "resemblyzer": "diarize",
    "torch": "diarize",
}
# What each extra is for, as the message says it.
EXTRA_PURPOSE = {
    "qa": "quality checks and insights",
    "eval": "scoring (CER/WER/DER)",
    "qwen": "the Qwen3-ASR engine",
    "modelscope": "downloads from ModelScope",
    "diarize": "speaker diarization of mono calls",
}
# Extras whose packages pull torch: the CPU build must be installed first.
TORCH_EXTRAS = frozenset({"qwen", "diarize"})
TORCH_PIN = "torch==2.13.0"


class MissingExtra(ImportError):
    """An optional extra is not installed; ``str(e)`` is one line with the command that installs it."""

    def __init__(self, extra: str, module: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(_message(extra, module), name=module)


def install_command(extra: str) -> str:
    """The shell command that installs ``extra`` (CPU torch first where torch is involved)."""
    command = f"pip install 'callscribe[{extra}]'"
    return f"pip install {TORCH_PIN} && {command}" if extra in TORCH_EXTRAS else command


def _message(extra: str, module: str) -> str:
    purpose = f", needed for {EXTRA_PURPOSE[extra]}" if extra in EXTRA_PURPOSE else ""
    install = install_command(extra)
    return f"the [{extra}] extra is not installed (no module {module}{purpose}); install it with: {install}"


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = (exc.name or module).split(".")[0]
        if top != module.split(".")[0] and top not in MODULE_EXTRAS:
            raise  # something else is broken: not a missing extra
        raise MissingExtra(extra or MODULE_EXTRAS.get(top, "all"), top) from None


def extra_for(exc: BaseException) -> str | None:
    """The extra behind a ``ModuleNotFoundError`` (``None`` when the missing module is not an optional one)."""
    if isinstance(exc, MissingExtra):
        return exc.extra
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return MODULE_EXTRAS.get(exc.name.split(".")[0])
    return None


def missing_extra_message(exc: BaseException) -> str:
    """One line for a missing optional module: the extra and the command that installs it."""
    if isinstance(exc, MissingExtra):
        return str(exc)
    extra = extra_for(exc)
    name = getattr(exc, "name", None) or "a module"
    if extra is None:
        return f"{name} is not installed ({' '.join(str(exc).split())})"
    return _message(extra, name.split(".")[0])
