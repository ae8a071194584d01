"""Run units of work in this process, on a LocalCluster, or on a running Dask scheduler.

``run_units(task, units, choice, workers=0, scheduler=None)``:

- ``workers=0`` and no scheduler: in this process, one unit after the other, the model built once;
- ``workers=N``: a ``LocalCluster`` of N worker processes with one thread each (torch gets
  ``threads`` per worker; the default splits the physical cores so workers do not oversubscribe);
- ``scheduler=ADDRESS`` (or a scheduler file): the workers of a running cluster (``dask scheduler``
  and ``dask worker``, dask-jobqueue on SLURM/PBS/LSF, ...); every worker must see the inputs and
  the output folder at the same paths.

The model is a worker plugin (``worker_model.ModelPlugin``): loaded once per worker. A task whose
worker dies is run again elsewhere (``retries``); results are small summaries, released as soon as
they are read, so a lost worker costs only its task in flight. ``progress(done, total, summary)``
is called as units finish."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from . import default_workers
from .worker_model import ModelPlugin

RETRIES = 2


def run_units(task: Callable, units: Sequence, choice, *, workers: int = 0, scheduler: str | None = None,
              threads: int | None = None, progress: Callable | None = None, log: Callable = print,
              local: ModelPlugin | None = None) -> list[dict]:
    """Summaries of ``task(unit)`` for every unit, in the units' order. ``local``: a plugin already
    set up in this process, used when running here (else one is made)."""
    return run_stages([(task, units)], choice, workers=workers, scheduler=scheduler, threads=threads,
                      progress=progress, log=log, local=local)[0]


def run_stages(stages: Sequence[tuple[Callable, Sequence]], choice, *, workers: int = 0,
               scheduler: str | None = None, threads: int | None = None, progress: Callable | None = None,
               log: Callable = print, local: ModelPlugin | None = None) -> list[list[dict]]:
    """``run_units`` for several (task, units) stages on one cluster, each stage after the one
    before it has finished (a stage may read what the previous one wrote); ``progress(done, total,
    summary)`` counts the units of all stages."""
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    total = sum(len(units) for _, units in stages)
    counter = _Progress(total, progress)
    if workers == 0 and scheduler is None:
        plugin = local
        if plugin is None:
            plugin = ModelPlugin(choice, threads or default_workers())
            plugin.setup()
        return [[counter(task(unit, plugin)) for unit in units] for task, units in stages]
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=40)
        client = Client(cluster)
    elif os.path.isfile(scheduler):
        client = Client(scheduler_file=scheduler)
    else:
        client = Client(scheduler)
    try:
        per_worker = threads or max(1, default_workers() // max(1, len(client.scheduler_info()["workers"])))
        client.register_plugin(ModelPlugin(choice, per_worker))
        log(f"dask dashboard: {client.dashboard_link}")
        return [_run_stage(client, task, units, number, counter) for number, (task, units) in enumerate(stages)]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_stage(client, task: Callable, units: Sequence, number: int, counter) -> list[dict]:
    from distributed import as_completed

    futures = client.map(task, list(units), key=[f"hrsam-{number}-{i}-{_token(u)}" for i, u in enumerate(units)],
                         retries=RETRIES, pure=False)
    index = {future.key: i for i, future in enumerate(futures)}
    results: list[dict | None] = [None] * len(units)
    for future in as_completed(futures):
        results[index[future.key]] = counter(future.result())
        future.release()  # a worker lost later need not recompute what was already read
    return results


class _Progress:
    """Counts finished units over all stages and reports each to ``progress``."""

    def __init__(self, total: int, progress: Callable | None):
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self, summary: dict) -> dict:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, summary)
        return summary


def _token(unit) -> str:
    import hashlib

    return hashlib.blake2b(repr(unit).encode(), digest_size=6).hexdigest()
