"""Encoder speed: HRSAM ViT-B / HRSAM++ ViT-B / hrsam_tiny against SAM ViT-B.

Prints median seconds, peak memory, GFLOPs (matmul/conv/attention, counted by
torch's FlopCounterMode; the selective scan's elementwise work is not in it) and
achieved GFLOP/s as a share of a dense matmul measured in the same process (fp32, or the
autocast dtype when --autocast is given).
SAM ViT-B (random weights) runs when the `segment-anything` package is installed.

    python benchmarks/encoder.py --sizes 1024 2048 --repeats 3
"""
import argparse
import importlib.util
import sys
import types
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from common import (  # noqa: E402
    machine_description,
    matmul_gflops,
    median_seconds,
    peak_memory_gib,
    print_table,
    reset_peak_memory,
)
from hrsam_model import build_model  # noqa: E402


def import_sam_encoder():
    """SAM's ImageEncoderViT without the package __init__ (it imports torchvision for its predictor)."""
    if "segment_anything" not in sys.modules:
        spec = importlib.util.find_spec("segment_anything")
        if spec is None:
            return None
        package = types.ModuleType("segment_anything")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["segment_anything"] = package
    from segment_anything.modeling.image_encoder import ImageEncoderViT

    return ImageEncoderViT


def sam_vit_b(size):
    ImageEncoderViT = import_sam_encoder()
    if ImageEncoderViT is None:
        return None
    from functools import partial

    return ImageEncoderViT(
        depth=12, embed_dim=768, img_size=size, mlp_ratio=4, num_heads=12, patch_size=16,
        qkv_bias=True, use_rel_pos=True, global_attn_indexes=(2, 5, 8, 11), window_size=14,
        out_chans=256, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
    )


def count_gflops(fn):
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() / 1e9


def sam_meta_gflops(size):
    """SAM's GFLOP counted on meta tensors (no memory), for sizes whose attention does not fit."""
    with torch.device("meta"):
        model = sam_vit_b(size)
        x = torch.randn(1, 3, size, size)
    return count_gflops(torch.no_grad()(lambda: model(x)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["hrsam_tiny", "hrsam_vit_b", "hrsam_plusplus_vit_b", "sam_vit_b"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1024, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--autocast", choices=["bfloat16", "float16"], default=None,
                        help="run the encoders under torch.autocast in this dtype (GPU)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    print(f"machine: {machine_description()}; autocast {args.autocast or 'off (float32)'}")
    dtype = getattr(torch, args.autocast or "float32")  # the roofline in the dtype the matmuls run in
    roof = matmul_gflops(device=device, dtype=dtype)
    print(f"{args.autocast or 'fp32'} matmul 2048^3 on {device}: {roof:.0f} GFLOP/s (the roofline used below)\n")
    rows, sam_time = [], {}
    for size in args.sizes:
        for name in args.models:
            model = sam_vit_b(size) if name == "sam_vit_b" else build_model(name).backbone
            if model is None:
                print(f"skipping {name}: pip install segment-anything to compare")
                continue
            model = model.to(device).eval()
            x = torch.randn(1, 3, size, size, device=device)
            def run(model=model, x=x):
                cast = torch.autocast(device.type, getattr(torch, args.autocast)) if args.autocast else nullcontext()
                with torch.no_grad(), cast:
                    return model(x)

            try:
                gflop = count_gflops(run)
                reset_peak_memory()
                seconds = median_seconds(run, args.repeats)
            except (MemoryError, RuntimeError) as error:  # e.g. SAM's global attention at 2048 px
                print(f"{name} at {size} px did not run: {type(error).__name__}: {str(error)[:120]}")
                del model
                if name == "sam_vit_b":
                    gflop = sam_meta_gflops(size)
                    print(f"  it needs {gflop:.0f} GFLOP (counted on meta tensors): at least "
                          f"{gflop / roof:.1f} s at this machine's matmul rate")
                continue
            peak = peak_memory_gib()
            if name == "sam_vit_b":
                sam_time[size] = seconds
            rows.append([name, size, seconds, peak, gflop])
            print(f"  {name} at {size} px: {seconds:.4f} s", flush=True)  # kept if a later size times out
            del model
    table = []
    for name, size, seconds, peak, gflop in rows:
        rate = gflop / seconds
        ratio = f"{seconds / sam_time[size]:.2f}x" if size in sam_time and name != "sam_vit_b" else "-"
        table.append([name, size, f"{seconds:.4f}", f"{peak:.2f}", f"{gflop:.0f}", f"{rate:.0f}",
                      f"{100 * rate / roof:.0f}%", ratio])
    print_table(["model", "px", "median s", "peak GiB", "GFLOP", "GFLOP/s", "of matmul", "time vs SAM"], table)


if __name__ == "__main__":
    main()
