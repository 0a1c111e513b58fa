"""``transcribe --executor ray``: the flags checked before any work, and the executor started for the run."""

from __future__ import annotations

from typing import Any

from callscribe.engines.base import EngineError
from callscribe.extras import MissingExtra, require
from callscribe.options import Options
from callscribe.pipeline import one_line


def ray_settings(
    executor: str, address: str | None, gpus_per_engine: float, cpu_workers: int, engine_actors: int, verbose: bool
) -> dict[str, Any] | None:
    """The Ray executor's settings, ``None`` for the local executor; ``ValueError`` (one line) when the flags do not
    fit together or Ray is not installed."""
    if executor not in ("local", "ray"):
        raise ValueError(f"--executor {executor}: use local or ray")
    if executor == "local":
        flags = (("--ray-address", address), ("--cpu-workers", cpu_workers), ("--engine-actors", engine_actors))
        given = [flag for flag, on in flags if on]
        if given:
            raise ValueError(f"{', '.join(given)}: only with --executor ray")
        return None
    if gpus_per_engine < 0 or cpu_workers < 0 or engine_actors < 0:
        raise ValueError("--gpus-per-engine, --cpu-workers and --engine-actors cannot be negative")
    try:
        require("ray", "ray")
    except MissingExtra as exc:
        raise ValueError(f"--executor ray: {exc}") from None
    return {
        "address": address,
        "gpus_per_engine": gpus_per_engine,
        "cpu_workers": cpu_workers or None,
        "engine_actors": engine_actors or None,
        "verbose": verbose,
    }


def start_ray(options: Options, settings: dict[str, Any]) -> tuple[Any, str, str]:
    """The Ray executor with its engine actors up and engines loaded: ``(executor, engine name, description)``.

    ``EngineError`` when an engine cannot be made; ``ValueError`` (one line) when Ray cannot be joined or started.
    """
    from callscribe.executors.ray_exec import RayExecutor

    runner = RayExecutor(options, **settings)
    try:
        runner.start()
    except EngineError:
        raise
    except Exception as exc:
        raise ValueError(f"--executor ray: {one_line(exc)}") from None
    why = f" — {runner.engine_reason}" if runner.engine_reason else ""
    where = f" on Ray: {runner.placement.describe()}" if runner.placement else ""
    return runner, runner.engine_name, runner.engine_describe + why + where
