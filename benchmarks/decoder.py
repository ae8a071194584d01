"""Per-click latency: prompt encoder + mask decoder + logits back to the image, at 1024-4096 px.

A click's cost after the embedding exists: `model.decode` (points + the previous low-res logits)
and `logits_to_image` onto a slide-shaped image (4:3, the long side equal to the target size, so
a quarter of the square canvas is padding). The baseline is the official evaluation's order
(upsample the logits to the whole canvas, crop, resize), run in the same process.

    python benchmarks/decoder.py --sizes 1024 2048 4096 --repeats 9
"""
import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import machine_description, median_seconds, print_table  # noqa: E402

from hrsam_model import build_model  # noqa: E402
from hrsam_model.transforms import logits_to_image  # noqa: E402


def official_order(low_res, target_size, resized, image_shape):
    x = F.interpolate(low_res, size=(target_size, target_size), mode="bilinear", align_corners=False)
    x = x[..., : resized[0], : resized[1]]
    if tuple(x.shape[-2:]) != tuple(image_shape):
        x = F.interpolate(x, size=tuple(image_shape), mode="bilinear", align_corners=False)
    return x


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hrsam_tiny")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    print(f"machine: {machine_description()}\n")
    model = build_model(args.model).to(device).eval()
    rows = []
    for size in args.sizes:
        grid = size // 16
        embedding = torch.randn(1, 256, grid, grid, device=device)
        points = torch.tensor([[[0.3 * size, 0.2 * size], [0.5 * size, 0.4 * size]]], device=device)
        labels = torch.tensor([[1.0, 0.0]], device=device)
        resized = (size * 3 // 4, size)
        image_shape = resized
        with torch.inference_mode():
            previous, _ = model.decode(embedding, points, labels)
            decode = median_seconds(lambda: model.decode(embedding, points, labels, mask_input=previous),
                                    args.repeats)
            ours = median_seconds(lambda: logits_to_image(previous, size, resized, image_shape) > 0,
                                  args.repeats)
            base = median_seconds(lambda: official_order(previous, size, resized, image_shape) > 0,
                                  args.repeats)
        rows.append([size, f"{1000 * decode:.0f}", f"{1000 * ours:.0f}", f"{1000 * base:.0f}",
                     f"{base / ours:.2f}x", f"{1000 * (decode + ours):.0f}"])
    print_table(["px", "decode ms", "to image ms", "official order ms", "speed-up", "ms per click"], rows)


if __name__ == "__main__":
    main()
