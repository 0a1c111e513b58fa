"""Executors: what runs the pipeline's stages, and where.

The pipeline is described once (:class:`callscribe.pipeline.Pipeline`); an executor runs it over many calls.

- ``local`` is :meth:`Pipeline.run` itself: threads decode and plan the next calls while one engine hears clips
  batched across calls.
- ``ray`` (:class:`~callscribe.executors.ray_exec.RayExecutor`, the ``[ray]`` extra) runs the same stage objects on
  a Ray cluster: CPU tasks decode, map speech and plan speakers; engine actors (one engine each, a GPU each where
  the engine uses one) hear bundles of prepared calls through the same ``Pipeline.run`` and assemble them.

Both hand the batch runner (:func:`callscribe.batch.run_locked`) a stream of ``Transcript | CallError``, one per
call; resuming, errors.jsonl, the atomic output writer and the store sink stay in the batch runner.
"""

from __future__ import annotations

from callscribe.executors.base import EXECUTORS, Executor

__all__ = ["EXECUTORS", "Executor"]
