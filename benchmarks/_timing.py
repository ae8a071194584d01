"""Timing helpers shared by the kernel benchmarks (not a test: prints, never asserts)."""
from __future__ import annotations

import os
import platform
import statistics
import time

import torch


def machine() -> str:
    """One line naming the machine, the torch build and the device the tables were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{platform.system()} {platform.machine()}, CPU {cpu} ({os.cpu_count()} cores, torch uses "
            f"{torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}){gpu}; "
            f"torch {torch.__version__}, python {platform.python_version()}")


def load() -> str:
    try:
        return "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(fn, device: torch.device, repeats: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall time and median process CPU time (seconds) of fn() over `repeats` runs.

    On a shared CPU the CPU time is the steadier figure: it does not count time the process
    spent waiting for a core.
    """
    for _ in range(warmup):
        fn()
    sync(device)
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def measure_interleaved(runs: dict, device: torch.device, repeats: int, cold: tuple = (), inner: int = 1) -> dict:
    """Like `measure` for several paths, taking turns each repeat so that all see the same load.

    Every path is run once before timing, except those named in `cold` (slow loops that have
    nothing to warm up). With inner > 1 each repeat runs a path `inner` times back to back before
    the device sync and reports the mean: on a GPU that times the kernels rather than one
    launch's round trip.
    """
    for name, fn in runs.items():
        if name not in cold:
            fn()
    sync(device)
    walls = {name: [] for name in runs}
    cpus = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            w, c = time.perf_counter(), time.process_time()
            for _ in range(inner):
                fn()
            sync(device)
            walls[name].append((time.perf_counter() - w) / inner)
            cpus[name].append((time.process_time() - c) / inner)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in runs}


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
