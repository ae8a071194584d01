"""The encoder as users run it (``Predictor.embed``) in fp32 and in the CPU's bf16 (the default where
the CPU has it), and the decoder per click, at each target size.

    python benchmarks/precision.py                       # 1024 and 2048 px, 5 repeats
    python benchmarks/precision.py --sizes 1024 2048 4096 --repeats 3

Median seconds of ``--repeats`` runs after one warm-up, in one process on one image (the bundled
nuclei sample), and the ratio bf16 / fp32. Accuracy is not measured here: tests/model/test_precision.py
and the click protocol (``HRSAM_CPU_BF16=0`` gives fp32) do that. Run it on an idle machine.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_description, print_table  # noqa: E402
from hrsam_model import Predictor, build_model  # noqa: E402
from hrsam_model.device import cpu_bf16_supported  # noqa: E402
from napari_hrsam.io.samples import nuclei_2d  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"machine: {machine_description()}; native bf16: {cpu_bf16_supported()}")
    model = build_model("hrsam_tiny", pretrained=True)
    image = nuclei_2d()[0][0]
    rows = []
    precisions = ("fp32", "bf16") if cpu_bf16_supported() else ("fp32",)
    for size in args.sizes:
        times = {}
        for precision in precisions:
            predictor = Predictor(model, device="cpu", target_size=size, precision=precision)
            times[precision] = median_seconds(lambda: predictor.embed(image), args.repeats)
            predictor.set_image(image)
            times[precision + " click"] = median_seconds(
                lambda: predictor.predict(points=[[120, 200]], labels=[1]), args.repeats * 4)
        ratio = f"{times['bf16'] / times['fp32']:.2f}" if "bf16" in times else "n/a"
        rows.append([size, f"{times['fp32']:.3f}", f"{times.get('bf16', float('nan')):.3f}", ratio,
                     f"{1000 * times['fp32 click']:.1f}", f"{1000 * times.get('bf16 click', float('nan')):.1f}"])
    print(f"torch threads {torch.get_num_threads()}; median of {args.repeats} (clicks: {args.repeats * 4})")
    print_table(["size", "encoder fp32 s", "encoder bf16 s", "bf16/fp32", "click fp32 ms", "click bf16 ms"], rows)


if __name__ == "__main__":
    main()
