"""The Ray executor: the pipeline's stages on a Ray cluster, results back to the batch runner on the driver.

```
(path, sha256) from the batch runner (calls already done are skipped there)
  -> CPU tasks        Pipeline.prepare: decode, speech map, speaker plan   (one task a call, 1 CPU each)
  -> engine actors    bundles of prepared calls -> Pipeline.run: clips batched across the bundle's calls, second
                      decodes, text, speakers finalize                      (one engine each, its GPU(s) if any)
  -> driver           Transcript | CallError per call -> the batch runner: QA, atomic files, store, errors.jsonl
```

Why Ray core (tasks and actors) rather than Ray Data's ``map_batches``: the unit the engine stage needs is a whole
call, not a loose clip (second decodes of uncovered speech and glossary re-reads cut new clips from the call's
audio, and speakers finalize reads it), a call's audio is several arrays of any length plus a speaker plan, and the
batch runner's input is a lazy stream with its own skip-and-fail logic. Tasks and actors carry that as it is,
leave errors per call, and install at less than half the size (``ray`` vs ``ray[data]``: pyarrow, pandas).

Fault tolerance: CPU tasks are retried by Ray (``max_retries``); an engine actor that dies is restarted and the
bundle it was hearing is sent again (``max_restarts`` / ``max_task_retries``); an actor gone for good has its
bundle sent to another actor. Only the driver writes, once per call, so a retry never duplicates an output.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from callscribe.engines.base import EngineError
from callscribe.executors.ray_cluster import Placement, bundle_clips, connect, import_ray, place, remote_parts
from callscribe.executors.shipped import Prepared
from callscribe.model import Transcript
from callscribe.options import Options
from callscribe.pipeline import CallError, one_line

log = logging.getLogger("callscribe")

# Bundles queued on one actor: one being heard, one arriving (its audio fetched while the first is heard).
QUEUE_DEPTH = 2
# A bundle whose actor is gone for good is sent to another actor at most this many times.
BUNDLE_RESENDS = 2
# Calls in one bundle at most (short calls: many per bundle, but not without end).
MAX_CALLS_PER_BUNDLE = 64
# Seconds the engine actors get to start and load their models (a cluster without the resources asked never starts
# them: say so rather than wait for ever).
ACTOR_START_TIMEOUT_S = 1800.0


@dataclass
class _Bundle:
    actor: int
    calls: list[tuple[Prepared, Any]]  # (header, payload ref)
    resends: int = 0


class RayExecutor:
    """Runs the pipeline on Ray; use as a context manager (or call :meth:`start` / :meth:`close`).

    ``address``: a cluster to join (``auto``, ``ray://HOST:10001``); without one a local Ray is started with
    ``cpu_workers`` CPUs. ``gpus_per_engine``: GPUs per engine actor where the engine runs on GPUs.
    ``engine_actors``: how many engine actors (default: one per ``gpus_per_engine`` GPUs, else one).
    ``imports``: modules every worker imports first (plugins that register engines).
    """

    def __init__(
        self,
        options: Options | dict[str, Any] | None = None,
        *,
        address: str | None = None,
        gpus_per_engine: float = 1.0,
        cpu_workers: int | None = None,
        engine_actors: int | None = None,
        imports: Sequence[str] = (),
        bundle: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.options = Options.build(options)
        self.address = address
        self.gpus_per_engine = gpus_per_engine
        self.cpu_workers = cpu_workers
        self.engine_actors = engine_actors
        self.imports = tuple(imports)
        self.bundle = bundle
        self.verbose = verbose
        self.placement: Placement | None = None
        self.engine_name = ""
        self.engine_describe = ""
        self.engine_reason = ""
        self._ray: ModuleType | None = None
        self._owns_ray = False
        self._task: Any = None
        self._actors: list[Any] = []
        self._alive: list[bool] = []
        self._target = 0

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> RayExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Join or start Ray, start the engine actors and load their engines (``EngineError`` when one cannot)."""
        if self._actors:
            return
        self._owns_ray = connect(self.address, self.cpu_workers, verbose=self.verbose)
        ray = self._ray = import_ray(local=self.address is None)
        self.placement = place(
            ray.cluster_resources(),
            self.options,
            gpus_per_engine=self.gpus_per_engine,
            cpu_workers=self.cpu_workers,
            engine_actors=self.engine_actors,
        )
        self._task, actor_cls = remote_parts(ray, self.placement)
        self._actors = [actor_cls.remote(self.options, self.imports) for _ in range(self.placement.actors)]
        self._alive = [True] * len(self._actors)
        try:
            hellos = ray.get([a.hello.remote() for a in self._actors], timeout=ACTOR_START_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise EngineError(
                f"engine actors did not start within {ACTOR_START_TIMEOUT_S:.0f} s: the Ray cluster may lack the "
                f"resources asked ({self.placement.describe()})"
            ) from None
        except Exception as exc:
            self.close()
            raise EngineError(f"engine actors did not start on Ray: {one_line(exc)}") from None
        failed = next((h["error"] for h in hellos if h["error"]), None)
        if failed:
            self.close()
            raise EngineError(failed)
        first = hellos[0]
        self.engine_name, self.engine_describe = str(first["engine"]), str(first["describe"])
        self.engine_reason = str(first.get("reason") or "")
        self._target = self.bundle or bundle_clips(first.get("batch_size"), self.options)

    def close(self) -> None:
        """Stop the engine actors, and the local Ray this executor started."""
        ray = self._ray
        if ray is None:
            return
        for actor in self._actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                log.debug("engine actor already gone", exc_info=True)
        self._actors, self._alive = [], []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False

    def pids(self) -> list[int]:
        """The process id of each live engine actor (asks them now)."""
        assert self._ray is not None, "start() first"
        live = [a for a, ok in zip(self._actors, self._alive, strict=True) if ok]
        return [int(h["pid"]) for h in self._ray.get([a.hello.remote() for a in live])]

    # -- running ---------------------------------------------------------------------------------------------------
    def run(self, sources: Iterable[tuple[str | Path, str]]) -> Iterator[Transcript | CallError]:
        """Yield a ``Transcript`` or ``CallError`` per source as each call finishes (any order)."""
        self.start()
        ray, placement = self._ray, self.placement
        assert ray is not None and placement is not None
        source_iter = iter(sources)
        exhausted = False
        prepping: dict[Any, tuple[str, Any]] = {}  # header ref -> (path, payload ref)
        ready: deque[tuple[Prepared, Any]] = deque()
        flying: dict[Any, _Bundle] = {}
        load = [0] * len(self._actors)
        prep_window = 2 * placement.cpu_slots
        ready_cap = QUEUE_DEPTH * len(self._actors) * self._target
        options = ray.put(self.options)  # once, not with every task
        try:
            while True:
                while not exhausted and len(prepping) < prep_window and _clips(ready) < ready_cap:
                    try:
                        path, sha = next(source_iter)
                    except StopIteration:
                        exhausted = True
                        break
                    label = str(path)
                    header, payload = self._task.remote(options, self.imports, label, sha)
                    prepping[header] = (label, payload)
                if not any(self._alive):
                    yield from self._orphans(ready, prepping, source_iter)
                    return
                self._dispatch(ready, flying, load, final=exhausted and not prepping)
                if exhausted and not prepping and not flying and not ready:
                    return
                done, _ = ray.wait([*prepping, *flying], num_returns=1)
                done, _ = ray.wait([*prepping, *flying], num_returns=len(prepping) + len(flying), timeout=0)
                for ref in done:
                    if ref in prepping:
                        yield from self._prepared(ref, prepping.pop(ref), ready)
                    else:
                        bundle = flying.pop(ref)
                        load[bundle.actor] -= 1
                        yield from self._heard(ref, bundle, ready)
        finally:
            for ref in prepping:
                ray.cancel(ref)

    def _prepared(self, ref: Any, entry: tuple[str, Any], ready: deque[tuple[Prepared, Any]]) -> Iterator[CallError]:
        ray = self._ray
        assert ray is not None
        label, payload = entry
        try:
            header: Prepared = ray.get(ref)
        except ray.exceptions.RayError as exc:
            yield CallError(label, "decode", f"{label}: CPU worker failed ({one_line(exc)})")
            return
        if header.error is not None:
            yield header.error
        else:
            ready.append((header, payload))

    def _heard(self, ref: Any, bundle: _Bundle, ready: deque[tuple[Prepared, Any]]) -> Iterator[Transcript | CallError]:
        ray = self._ray
        assert ray is not None
        try:
            results: list[Transcript | CallError] = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            # Ray restarted the actor and re-sent the bundle as often as it would: send it to another actor.
            if isinstance(exc, ray.exceptions.ActorDiedError):
                self._alive[bundle.actor] = False
            log.warning("engine actor %d failed a bundle: %s", bundle.actor, one_line(exc))
            if bundle.resends < BUNDLE_RESENDS and any(self._alive):
                bundle.resends += 1
                ready.extendleft(reversed(bundle.calls))
                return
            for header, _ in bundle.calls:
                yield CallError(header.path, "engine", f"{header.path}: engine worker died ({one_line(exc)})")
            return
        except ray.exceptions.RayError as exc:
            for header, _ in bundle.calls:
                yield CallError(header.path, "engine", f"{header.path}: engine worker failed ({one_line(exc)})")
            return
        yield from results

    def _dispatch(
        self, ready: deque[tuple[Prepared, Any]], flying: dict[Any, _Bundle], load: list[int], *, final: bool
    ) -> None:
        """Give bundles to actors: an idle actor gets what is ready; a busy one only a full bundle (or the last)."""
        for i in sorted(range(len(self._actors)), key=lambda k: load[k]):
            if not ready:
                return
            if not self._alive[i] or load[i] >= QUEUE_DEPTH:
                continue
            if load[i] > 0 and not final and _clips(ready) < self._target:
                continue
            calls: list[tuple[Prepared, Any]] = []
            clips = 0
            while ready and (not calls or clips < self._target) and len(calls) < MAX_CALLS_PER_BUNDLE:
                header, payload = ready.popleft()
                calls.append((header, payload))
                clips += header.clips
            ref = self._actors[i].hear.remote(*(payload for _, payload in calls))
            flying[ref] = _Bundle(i, calls)
            load[i] += 1

    def _orphans(
        self, ready: deque[tuple[Prepared, Any]], prepping: dict[Any, tuple[str, Any]], rest: Iterator[Any]
    ) -> Iterator[CallError]:
        """No engine actor left: every call not heard yet fails (a rerun picks them up)."""
        paths = [h.path for h, _ in ready] + [label for label, _ in prepping.values()] + [str(p) for p, _ in rest]
        ready.clear()
        for path in paths:
            yield CallError(path, "engine", f"{path}: not transcribed: no engine worker left on the Ray cluster")


def _clips(ready: Iterable[tuple[Prepared, Any]]) -> int:
    return sum(max(1, header.clips) for header, _ in ready)
