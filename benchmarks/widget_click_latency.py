"""Latency of a first click in the real napari widget: bundled hrsam_tiny, nuclei sample.

For each of ``--clicks`` nuclei (from the sample's mask), one click at its centre, then
Reset: the time from the click to the coarse (whole-slice) mask on screen, to the
refined (zoom-in window) mask, and the time the worker spent in ``Session.compute``
(wall clock, and CPU time of the worker thread: on a busy machine the gap between the
two is time spent waiting for a core).
The model is built and the slice embedded by a warm-up click first, as after a user's
first click. Run under a display (``xvfb-run -a python benchmarks/widget_click_latency.py``);
prints one line per click and the medians, plus the CPU and load average, since a
shared machine slows every figure.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time

import numpy as np
from scipy import ndimage


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=7)
    args = parser.parse_args()

    import napari
    import tifffile
    import torch
    from qtpy.QtWidgets import QApplication

    from napari_hrsam.io.samples import DATA, nuclei_2d

    viewer = napari.Viewer(show=False)
    array, kwargs, _ = nuclei_2d()[0]
    image = viewer.add_image(array, **kwargs)
    _, widget = viewer.window.add_plugin_dock_widget("napari-hrsam", "HRSAM segmentation")
    app = QApplication.instance()
    session_compute = []

    def wait(condition, timeout=600.0):
        end = time.perf_counter() + timeout
        while not condition():
            app.processEvents()
            time.sleep(0.001)
            if time.perf_counter() > end:
                raise TimeoutError("the widget did not finish")

    def click(row, col):
        start = time.perf_counter()
        widget.add_point_at(image.data_to_world((row, col)))
        wait(lambda: widget.preview_layer.data.any() or not widget.busy)
        coarse = time.perf_counter() - start
        wait(lambda: not widget.busy)
        refined = time.perf_counter() - start
        widget.reset()
        wait(lambda: not widget.busy)
        return coarse, refined

    mask = tifffile.imread(DATA / "nuclei_2d_mask.tif")
    ids = [i for i in np.unique(mask) if i and (mask == i).sum() >= 100]
    centres = [tuple(int(round(v)) for v in ndimage.center_of_mass(mask == i)) for i in ids]
    centres = [c for c in centres if mask[c] in ids][: args.clicks + 1]

    load_before = os.getloadavg()
    click(*centres[0])  # warm-up: builds the model and embeds the slice
    session = widget.session
    real_compute = session.compute

    def timed_compute(request):  # runs in the worker thread
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return real_compute(request)
        finally:
            session_compute[-1][0] += time.perf_counter() - start
            session_compute[-1][1] += time.thread_time() - cpu

    session.compute = timed_compute
    rows = []
    for row, col in centres[1:]:
        session_compute.append([0.0, 0.0])
        coarse, refined = click(row, col)
        rows.append((coarse, refined) + tuple(session_compute[-1]))
        print(f"click at ({row}, {col}): coarse {coarse:.3f} s, refined {refined:.3f} s, "
              f"in Session.compute {rows[-1][2]:.3f} s (worker CPU {rows[-1][3]:.3f} s)")
    load_after = os.getloadavg()
    medians = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(f"median of {len(rows)} first clicks: coarse {medians[0]:.3f} s, refined {medians[1]:.3f} s "
          f"(range {min(r[1] for r in rows):.3f}-{max(r[1] for r in rows):.3f}), "
          f"in Session.compute {medians[2]:.3f} s (worker CPU {medians[3]:.3f} s)")
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    viewer.close()


if __name__ == "__main__":
    main()
