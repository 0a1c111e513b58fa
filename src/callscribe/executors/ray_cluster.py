"""Joining or starting a Ray cluster, sizing the work to it, and the remote parts: CPU tasks and engine actors.

Ray is imported only here and in :mod:`callscribe.executors.ray_exec`, and only when ``--executor ray`` is asked
for (the ``[ray]`` extra); the base install stays without it.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from callscribe.executors.shipped import Prepared, PreparedCall, ShippedPipeline, prepare_call
from callscribe.extras import require
from callscribe.model import Transcript
from callscribe.options import Options
from callscribe.pipeline import MIN_CLIPS_PER_ENGINE_CALL, POOL_FACTOR, CallError, Pipeline

log = logging.getLogger("callscribe")

# A local Ray for one run: no usage statistics sent anywhere, every process on the loopback interface only.
LOCAL_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# An engine actor killed (a node lost, the OOM killer, kill -9) is started again this many times, and the bundle
# it was hearing is sent to it again (or, once it is gone for good, to another actor by the executor).
ACTOR_RESTARTS = 3
# A CPU task whose worker died is run again this many times.
TASK_RETRIES = 3
# Engines that never use a GPU of their own (they send audio to servers).
SERVER_ENGINES = frozenset({"openai"})


def import_ray(*, local: bool) -> ModuleType:
    """``ray``, or :class:`~callscribe.extras.MissingExtra` naming the ``[ray]`` extra. ``local``: this process
    is about to start a Ray of its own (environment set first: Ray reads it on import)."""
    if local:
        for key, value in LOCAL_RAY_ENV.items():
            os.environ.setdefault(key, value)
    return require("ray", "ray")


def connect(address: str | None, cpu_workers: int | None, *, verbose: bool = False) -> bool:
    """Join the cluster at ``address`` (``auto``, ``ray://HOST:10001``, ``HOST:6379``) or, without one, start a
    local Ray with ``cpu_workers`` CPUs (all cores when ``None``). Returns whether this call started or joined Ray
    (and so should shut it down); an already initialised Ray is used as it is."""
    ray = import_ray(local=address is None)
    if ray.is_initialized():
        return False
    quiet = logging.INFO if verbose else logging.ERROR
    if address:
        ray.init(address=address, logging_level=quiet, log_to_driver=verbose)
    else:
        ray.init(
            num_cpus=cpu_workers or os.cpu_count() or 1,
            include_dashboard=False,
            logging_level=quiet,
            log_to_driver=verbose,
        )
    return True


@dataclass(frozen=True)
class Placement:
    """How the work is spread: engine actors (each with its GPUs and CPUs) and CPU tasks in flight."""

    actors: int
    gpus_per_actor: float
    cpus_per_actor: float
    cpu_slots: int  # CPU tasks (decode, VAD, speakers) that can run at once beside the actors

    def describe(self) -> str:
        gpus = f", {self.gpus_per_actor:g} GPU each" if self.gpus_per_actor else ""
        return f"{self.actors} engine actor(s){gpus}, {self.cpu_slots} CPU worker(s)"


def place(
    resources: dict[str, float],
    options: Options,
    *,
    gpus_per_engine: float = 1.0,
    cpu_workers: int | None = None,
    engine_actors: int | None = None,
) -> Placement:
    """Size the run to the cluster's ``resources`` (``ray.cluster_resources()``).

    Engines that can use a GPU get ``gpus_per_engine`` each and there is one actor per that many GPUs of the
    cluster; without GPUs (or with ``--device cpu``, or a server engine) there is one engine actor, which uses
    every core its engine is allowed. ``engine_actors`` overrides the count. The CPUs left over run the CPU tasks,
    at most ``cpu_workers`` of them at once when given.
    """
    cpus, gpus = float(resources.get("CPU", 1.0)), float(resources.get("GPU", 0.0))
    on_gpu = options.engine not in SERVER_ENGINES and options.device != "cpu" and gpus > 0 and gpus_per_engine > 0
    if on_gpu:
        actors = engine_actors or max(1, int(gpus // gpus_per_engine))
        per_gpu = gpus_per_engine
    else:
        actors, per_gpu = engine_actors or 1, 0.0
    per_cpu = 1.0
    slots = max(1, int(cpus - actors * per_cpu))
    if cpu_workers:
        slots = min(slots, cpu_workers)
    return Placement(actors, per_gpu, per_cpu, slots)


def bundle_clips(engine_batch: int | None, options: Options) -> int:
    """Clips to send an engine actor at once: two of the pools :meth:`Pipeline.run` fills for this engine (see
    there), so the pools inside a bundle are full and only its last batch can be short."""
    batch = (options.batch_size or engine_batch) if engine_batch else None
    pool = (
        max(MIN_CLIPS_PER_ENGINE_CALL, POOL_FACTOR * batch)
        if batch
        else max(MIN_CLIPS_PER_ENGINE_CALL, options.batch_size)
    )
    return 2 * pool


# -- the remote side: these run in Ray worker processes ------------------------------------------------------------
def _import_all(modules: Sequence[str]) -> None:
    """Modules that register engines (plugins): imported in every worker before an engine is made."""
    for name in modules:
        importlib.import_module(name)


_PREP: list[tuple[Options, Pipeline]] = []  # the CPU worker's pipeline, kept while the options stay the same


def _prep_pipeline(options: Options) -> Pipeline:
    if not _PREP or _PREP[0][0] != options:
        _PREP[:] = [(options, Pipeline(options))]
    return _PREP[0][1]


def prepare_task(options: Options, imports: Sequence[str], path: str, sha: str) -> tuple[Prepared, PreparedCall | None]:
    """A CPU task: decode, speech map and speaker plan of one call (see :func:`~.shipped.prepare_call`)."""
    _import_all(imports)
    return prepare_call(_prep_pipeline(options), path, sha)


class EngineWorker:
    """An engine actor: one pipeline, one engine (loaded once), hearing bundles of prepared calls."""

    def __init__(self, options: Options, imports: Sequence[str]) -> None:
        _import_all(imports)
        self.pipeline = ShippedPipeline(options)
        self.error = ""
        try:
            self.pipeline.resolve_engine_name()
            self.pipeline.engine  # noqa: B018 - load the model now, not with the first bundle
        except Exception as exc:
            self.error = " ".join(str(exc).split()) or type(exc).__name__

    def hello(self) -> dict[str, Any]:
        """Who this actor is: process, engine and its description, or why the engine could not be made."""
        info: dict[str, Any] = {"pid": os.getpid(), "error": self.error, "engine": self.pipeline.engine_name}
        if not self.error:
            engine = self.pipeline.engine
            info["describe"] = engine.describe()
            info["reason"] = self.pipeline.engine_reason
            size = getattr(engine, "batch_size", None)
            info["batch_size"] = size if isinstance(size, int) and size > 0 else None
        return info

    def hear(self, *calls: PreparedCall) -> list[Transcript | CallError]:
        return self.pipeline.run_shipped(calls)


def remote_parts(ray: ModuleType, placement: Placement) -> tuple[Any, Any]:
    """The CPU task and the engine actor class as Ray remotes, sized by ``placement``."""
    task = ray.remote(num_cpus=1, num_returns=2, max_retries=TASK_RETRIES)(prepare_task)
    actor = ray.remote(
        num_cpus=placement.cpus_per_actor,
        num_gpus=placement.gpus_per_actor,
        max_restarts=ACTOR_RESTARTS,
        max_task_retries=ACTOR_RESTARTS,
    )(EngineWorker)
    return task, actor
