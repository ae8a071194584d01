"""The model, loaded once per Dask worker (a worker plugin), never per task.

``ModelPlugin(choice, threads)`` is registered with the client; on each worker process ``setup``
sets torch's thread count and builds the predictor, and records the fingerprint of its weights
(``embedding_store.model_fingerprint``), which every output records too. The in-process executor
sets up one plugin itself and hands it to the tasks."""
from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

PLUGIN_NAME = "hrsam-model"


class ModelPlugin(WorkerPlugin):
    """Builds ``choice.predictor()`` once per worker with ``threads`` torch threads (no predictor
    and no fingerprint when ``choice`` is None: a run of baselines only)."""

    name = PLUGIN_NAME

    def __init__(self, choice, threads: int = 1):
        self.choice = choice
        self.threads = int(threads)
        self.predictor = None
        self.fingerprint = None

    def setup(self, worker=None):
        import torch

        from napari_hrsam.engine.embedding_store import model_fingerprint

        torch.set_num_threads(self.threads)
        if self.choice is None:
            return
        self.predictor = self.choice.predictor()
        self.fingerprint = model_fingerprint(self.predictor.model)


def worker_plugin() -> ModelPlugin:
    """The plugin of the Dask worker running the current task."""
    from distributed import get_worker

    return get_worker().plugins[PLUGIN_NAME]
