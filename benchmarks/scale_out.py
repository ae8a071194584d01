"""Segment everything over many images as Dask tasks: images per second against the number of
workers, parallel efficiency, per-task overhead and the cost of a killed worker.

    python benchmarks/scale_out.py --images 16 --workers 1,2      # this 2-core machine
    python benchmarks/scale_out.py --images 64 --workers 1,2,4,8,16

What it runs is what ``hrsam segment FOLDER --auto --workers N`` runs (``napari_hrsam.scale``):
synthetic 512x512 images of bright disks, segment-all at ``--density``; every configuration
writes into a fresh folder. Rows: in-process (``--workers 0``, torch on every core: the baseline),
then N LocalCluster workers (one torch thread each). Efficiency E(N) = rate(N) / (N x rate(1));
overhead per task = (N x wall - sum of task seconds) / tasks, the time a worker is not inside a task
(start-up included); the kill row kills one worker after the first result and reports the extra
wall time against the same N without a kill. The machine is named; run it on an idle machine.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_description, print_table  # noqa: E402
from napari_hrsam.engine.model_choice import ModelChoice  # noqa: E402
from napari_hrsam.scale.batch import AutoUnit, segment_unit  # noqa: E402
from napari_hrsam.scale.executor import default_workers, run_units  # noqa: E402


def make_images(folder: Path, count: int, side: int = 512) -> list[str]:
    import tifffile

    rng = np.random.default_rng(0)
    rows, cols = np.ogrid[:side, :side]
    paths = []
    for k in range(count):
        image = rng.normal(30, 5, (side, side))
        for _ in range(12):
            r, c = rng.integers(30, side - 30, 2)
            image[(rows - r) ** 2 + (cols - c) ** 2 <= rng.integers(8, 20) ** 2] += 150
        path = folder / f"img{k:03d}.tif"
        tifffile.imwrite(path, np.clip(image, 0, 255).astype(np.uint8))
        paths.append(str(path))
    return paths


def run(paths, out: Path, choice, workers: int, density: int, kill: bool = False) -> tuple[float, list[dict]]:
    units = [AutoUnit(p, str(out), density) for p in paths]
    killed = []

    def progress(done, total, summary):
        if kill and not killed and summary["pid"] != os.getpid():
            os.kill(summary["pid"], signal.SIGKILL)
            killed.append(summary["pid"])

    start = time.perf_counter()
    summaries = run_units(segment_unit, units, choice, workers=workers, threads=None if workers == 0 else 1,
                          progress=progress, log=lambda text: None)
    return time.perf_counter() - start, summaries


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--workers", default=f"1,{default_workers()}")
    parser.add_argument("--density", type=int, default=16)
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    choice = ModelChoice("hrsam_tiny", "", "cpu", 1024, False)
    print(f"machine: {machine_description()}")
    print(f"{args.images} images of 512x512, segment all at {args.density}x{args.density} prompts, bundled hrsam_tiny")
    rows, rate_one, walls = [], None, {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), args.images)
        for workers in [0] + counts:
            wall, summaries = run(paths, Path(tmp) / f"out{workers}", choice, workers, args.density)
            busy = sum(s["seconds"] for s in summaries)
            rate = len(paths) / wall
            walls[workers] = wall
            if workers == 1:
                rate_one = rate
            efficiency = "" if workers == 0 or rate_one is None else f"{rate / (workers * rate_one):.2f}"
            overhead = (max(workers, 1) * wall - busy) / len(paths)
            rows.append([workers or "in-process", f"{wall:.1f}", f"{rate:.2f}", efficiency, f"{overhead:.2f}",
                         f"{busy / len(paths):.2f}"])
        if len(counts) and max(counts) > 1:
            workers = max(counts)
            wall, summaries = run(paths, Path(tmp) / "kill", choice, workers, args.density, kill=True)
            rows.append([f"{workers}, one killed", f"{wall:.1f}", f"{len(paths) / wall:.2f}", "",
                         f"+{wall - walls[workers]:.1f} s wall", ""])
    print_table(["workers", "wall s", "images/s", "efficiency", "overhead s/task", "task s"], rows)


if __name__ == "__main__":
    main()
