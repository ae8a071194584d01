"""Many inputs at once: the same engine run as Dask tasks (``batch``), in this process, on a
LocalCluster or on any running Dask scheduler (``executor``), the model loaded once per worker
(``worker_model``)."""

import os


def default_workers() -> int:
    """One worker per physical core (at least 1): the size of a LocalCluster and the torch threads
    of a run in this process."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
    except ImportError:
        cores = None
    return max(1, cores or os.cpu_count() or 1)
