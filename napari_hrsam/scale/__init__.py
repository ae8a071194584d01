"""Many inputs at once: the same engine run as Dask tasks (``batch``), in this process, on a
LocalCluster or on any running Dask scheduler (``executor``), the model loaded once per worker
(``worker_model``)."""
