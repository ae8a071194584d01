"""Per-click latency: prompt encoder + mask decoder + logits back to the image, at 1024-4096 px.

A click's cost after the embedding exists: `model.decode` (points + the previous low-res logits)
and `logits_to_image` onto a slide-shaped image (4:3, the long side equal to the target size, so
a quarter of the square canvas is padding). Baselines, run in the same process on the same
weights: SAM's literal mask-decoder order (the restatement in tests/official_reference.py, with the
dense PE made per call as the official code does) and
the official evaluation's logits order (upsample to the whole canvas, crop, resize).

    python benchmarks/decoder.py --sizes 1024 2048 4096 --clicks 2 10 --repeats 9
    python benchmarks/decoder.py --sizes 1024 --batches 1 4 16 --repeats 9   # segment all's batches

With --batches, a second table: one decoder call for B single-click prompts (what segment all and
`Predictor.predict_many` run), per prompt, in fp32 and under bf16 autocast, and how far the bf16
masks differ from the fp32 ones (share of low-res pixels whose sign flips).
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

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from official_reference import decode_head_forward  # noqa: E402


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
    parser.add_argument("--clicks", nargs="+", type=int, default=[2, 10])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", nargs="*", type=int, default=[],
                        help="also time batches of this many single-click prompts, fp32 and bf16")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    print(f"machine: {machine_description()}\n")
    model = build_model(args.model).to(device).eval()
    rows = []
    for size in args.sizes:
        grid = size // 16
        embedding = torch.randn(1, 256, grid, grid, device=device)
        resized = (size * 3 // 4, size)
        image_shape = resized
        for clicks in args.clicks:
            gen = torch.Generator().manual_seed(clicks)
            points = (torch.rand(1, clicks, 2, generator=gen) * size).to(device)
            labels = (torch.arange(clicks) % 2 == 0).float()[None].to(device)  # alternate +/-
            with torch.inference_mode():
                previous, _ = model.decode(embedding, points, labels)
                decode = median_seconds(lambda: model.decode(embedding, points, labels, mask_input=previous),
                                        args.repeats)
                sam_order = median_seconds(lambda: sam_order_decode(model, embedding, points, labels, previous),
                                           args.repeats)
                ours = median_seconds(lambda: logits_to_image(previous, size, resized, image_shape) > 0,
                                      args.repeats)
                base = median_seconds(lambda: official_order(previous, size, resized, image_shape) > 0,
                                      args.repeats)
            rows.append([size, clicks, f"{1000 * decode:.0f}", f"{1000 * sam_order:.0f}",
                         f"{sam_order / decode:.2f}x", f"{1000 * ours:.0f}", f"{1000 * base:.0f}",
                         f"{base / ours:.2f}x", f"{1000 * (decode + ours):.0f}"])
    print_table(["px", "clicks", "decode ms", "SAM order ms", "speed-up", "to image ms", "official order ms",
                 "speed-up", "ms per click"], rows)
    if args.batches:
        print()
        print_table(["px", "prompts", "fp32 ms/prompt", "bf16 ms/prompt", "speed-up", "mask pixels flipped"],
                    batch_rows(model, args.sizes, args.batches, args.repeats, device))


def batch_rows(model, sizes, batches, repeats, device):
    """Per-prompt times of one decoder call for B single-click prompts, fp32 against bf16 autocast."""
    rows = []
    for size in sizes:
        grid = size // 16
        embedding = torch.randn(1, 256, grid, grid, device=device)
        for batch in batches:
            gen = torch.Generator().manual_seed(batch)
            points = (torch.rand(batch, 1, 2, generator=gen) * size).to(device)
            labels = torch.ones(batch, 1, device=device)
            with torch.inference_mode():
                fp32 = median_seconds(lambda: model.decode(embedding, points, labels), repeats)
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    bf16 = median_seconds(lambda: model.decode(embedding, points, labels), repeats)
                    low16, _ = model.decode(embedding, points, labels)
                low32, _ = model.decode(embedding, points, labels)
            flipped = ((low16.float() > 0) != (low32 > 0)).float().mean().item()
            rows.append([size, batch, f"{1000 * fp32 / batch:.1f}", f"{1000 * bf16 / batch:.1f}",
                         f"{fp32 / bf16:.2f}x", f"{100 * flipped:.2f}%"])
    return rows


def sam_order_decode(model, embedding, points, labels, previous):
    grid = tuple(embedding.shape[-2:])
    model.neck._pe_cache = None  # the official decoder makes its dense PE on every call
    sparse, dense = model.neck(grid, points, labels, None, previous)
    return decode_head_forward(model.decode_head, embedding, model.neck.image_pe(grid), sparse, dense)


if __name__ == "__main__":
    main()
