"""How late the user interface's thread runs while the encoder works in the background, by torch
thread count: what a click, a scroll or a repaint waits for in napari during an encoder pass.

The main thread plays napari's event loop: every 10 ms it wakes up and does 1 ms of Python work (a
repaint's share), and records how late each wake-up came; a background thread runs the encoder
(``Predictor.embed``, as the widget's worker does) ``--repeats`` times with N torch threads. The
table gives the encoder's median seconds and the wake-ups' median / 95th percentile / worst lateness,
with an idle row (no encoder) as the baseline, all in one process.

    python benchmarks/ui_latency.py --size 1024 --threads 2 1
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_description, print_table  # noqa: E402
from hrsam_model import Predictor, build_model  # noqa: E402

TICK = 0.010
WORK = 0.001


def ticks_while(busy: threading.Event | None, seconds: float | None = None) -> list[float]:
    """Wake-up lateness (s) of a 10 ms loop with 1 ms of work per tick, while ``busy`` is set
    (or for ``seconds``)."""
    late, start = [], time.perf_counter()
    while (busy.is_set() if busy is not None else time.perf_counter() - start < seconds):
        due = time.perf_counter() + TICK
        time.sleep(TICK)
        late.append(max(0.0, time.perf_counter() - due))
        spin = time.perf_counter()
        while time.perf_counter() - spin < WORK:
            pass
    return late


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    predictor = Predictor(build_model("hrsam_tiny", pretrained=True), device="cpu", target_size=args.size)
    image = np.random.default_rng(0).integers(0, 255, (args.size, args.size), dtype=np.uint8)
    predictor.embed(image)  # warm-up
    print(f"machine: {machine_description()}\n")
    idle = ticks_while(None, seconds=2.0)
    rows = [_row("idle (no encoder)", [], idle)]
    for threads in args.threads:
        busy, seconds = threading.Event(), []

        def encode(threads=threads, busy=busy, seconds=seconds):
            torch.set_num_threads(threads)
            for _ in range(args.repeats):
                start = time.perf_counter()
                predictor.embed(image)
                seconds.append(time.perf_counter() - start)
            busy.clear()

        busy.set()
        worker = threading.Thread(target=encode)
        worker.start()
        late = ticks_while(busy)
        worker.join()
        rows.append(_row(f"encoder, {threads} torch thread(s)", seconds, late))
    print_table(["background", "encoder s (median)", "UI late ms: median", "95th", "worst"], rows)
    return 0


def _row(label, seconds, late):
    ms = np.asarray(late) * 1000
    return [label, f"{np.median(seconds):.2f}" if seconds else "-", f"{np.median(ms):.1f}",
            f"{np.percentile(ms, 95):.1f}", f"{ms.max():.1f}"]


if __name__ == "__main__":
    sys.exit(main())
