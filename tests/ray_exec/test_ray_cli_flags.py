"""``transcribe --executor``: flags that do not fit together, and Ray missing, each stop the run with one line
before any work; the base install never imports Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from callscribe.cli import app
from callscribe.executors.ray_cluster import place
from callscribe.options import Options


def _transcribe(tmp_path: Path, *flags: str) -> tuple[int, str, Path]:
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "a.wav").write_bytes(b"")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["transcribe", str(tmp_path / "in"), "-o", str(out), *flags])
    return result.exit_code, result.output, out


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_executor_ray_without_ray_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # this process cannot import ray, as without the extra
    code, output, out = _transcribe(tmp_path, "--executor", "ray")
    assert code == 2
    line = _one_line(output)
    assert "--executor ray" in line and "[ray]" in line and "pip install 'callscribe[ray]'" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--executor", "dask"), "--executor dask: use local or ray"),
        (("--ray-address", "auto"), "--ray-address: only with --executor ray"),
        (("--cpu-workers", "4", "--engine-actors", "2"), "--cpu-workers, --engine-actors: only with --executor ray"),
        (("--executor", "ray", "--cpu-workers", "-1"), "cannot be negative"),
    ],
)
def test_flags_that_do_not_fit(tmp_path: Path, flags: tuple[str, ...], said: str) -> None:
    code, output, out = _transcribe(tmp_path, *flags)
    assert code == 2
    assert said in _one_line(output)
    assert not out.exists()


def test_base_install_never_imports_ray() -> None:
    code = "import sys, callscribe.cli, callscribe.executors.ray_exec; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("resources", "options", "kw", "expected"),
    [
        # a GPU cluster: one engine actor per GPU, the CPUs left over decode
        ({"CPU": 32.0, "GPU": 4.0}, {"engine": "qwen3"}, {}, (4, 1.0, 28)),
        ({"CPU": 32.0, "GPU": 4.0}, {"engine": "qwen3"}, {"gpus_per_engine": 0.5}, (8, 0.5, 24)),
        # a server engine or --device cpu never asks for a GPU
        ({"CPU": 16.0, "GPU": 2.0}, {"engine": "openai"}, {}, (1, 0.0, 15)),
        ({"CPU": 16.0, "GPU": 2.0}, {"engine": "whisper", "device": "cpu"}, {"cpu_workers": 4}, (1, 0.0, 4)),
        ({"CPU": 2.0}, {"engine": "whisper"}, {"engine_actors": 3}, (3, 0.0, 1)),
    ],
)
def test_placement(resources: dict[str, float], options: dict[str, str], kw: dict[str, float], expected: tuple) -> None:
    got = place(resources, Options.build(options), **kw)  # type: ignore[arg-type]
    assert (got.actors, got.gpus_per_actor, got.cpu_slots) == expected
