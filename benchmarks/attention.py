"""Window attention: traditional Swin vs gather + SDPA vs hrsam_kernels, one layer pair.

    python benchmarks/attention.py                      # CPU: 64x64 and 128x128 token grids
    python benchmarks/attention.py --grids 64 128 256   # add 4096 px inputs (GPU)

On a GPU each timed repeat runs a path 10 times back to back before synchronising (the mean is
reported), so the figures are kernel time, not one launch's round trip.

For each token grid (1024/2048/4096 px inputs give 64/128/256 tokens a side) at ViT-B width
(12 heads of 64) it times a plain (shift 0) and a shifted (shift 8) layer:

- traditional Swin: pad the map to windows, cyclic roll for the shifted layer, partition, attention
  with the Swin region mask, reverse partition, roll back (what the paper compares against);
- gather + SDPA: the official HRSAM recipe, every window slot gathered (padding slots included, so
  their queries are computed and thrown away), one attention call, scatter back;
- hrsam_kernels: `window_attention`, KV-only padding (Triton on CUDA, grouped SDPA elsewhere).

Note the official layout has no roll: its shifted layer has more, partly padded windows than
Swin's, so the three do not compute identical numbers; each is the shifted layer of its model.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from _timing import load, machine, measure_interleaved, table  # noqa: E402
from hrsam_kernels import window_attention, window_index  # noqa: E402


def swin_mask(h: int, w: int, ws: int, shift: int, device) -> torch.Tensor:
    """Swin's attention mask after a cyclic roll: tokens of different regions do not attend."""
    region = torch.zeros(h, w, dtype=torch.int64, device=device)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for rows in cuts:
        for cols in cuts:
            region[rows, cols] = label
            label += 1
    region = region.view(h // ws, ws, w // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    return region.unsqueeze(1) == region.unsqueeze(2)  # (windows, S, S) True = may attend


def swin_attention(q, k, v, batch, h, w, ws, shift, mask):
    heads, dim = q.shape[1:]
    ph, pw = -(-h // ws) * ws, -(-w // ws) * ws

    def partition(x):
        x = x.view(batch, h, w, heads, dim)
        if (ph, pw) != (h, w):
            x = F.pad(x, (0, 0, 0, 0, 0, pw - w, 0, ph - h))
        if shift:
            x = torch.roll(x, (-shift, -shift), (1, 2))
        x = x.view(batch, ph // ws, ws, pw // ws, ws, heads, dim).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(-1, heads, ws * ws, dim)

    attn_mask = None if mask is None else mask.unsqueeze(1).repeat(batch, 1, 1, 1)
    out = F.scaled_dot_product_attention(partition(q), partition(k), partition(v), attn_mask=attn_mask)
    out = out.view(batch, ph // ws, pw // ws, heads, ws, ws, dim).permute(0, 1, 4, 2, 5, 3, 6)
    out = out.reshape(batch, ph, pw, heads, dim)
    if shift:
        out = torch.roll(out, (shift, shift), (1, 2))
    return out[:, :h, :w].reshape(-1, heads, dim)


def gather_attention(q, k, v, windows, pad_k, pad_v):
    """Official recipe: gather all slots (padding queries included), one SDPA, scatter real rows."""
    n, heads, dim = q.shape
    index = torch.where(windows.index >= 0, windows.index, n)
    slots = torch.arange(index.shape[1], device=q.device).expand_as(index)
    qa = torch.cat([q, q.new_zeros(1, heads, dim)])[index]
    ka = torch.where((windows.index >= 0)[..., None, None], torch.cat([k, k[:1]])[index], pad_k[slots])
    va = torch.cat([v, pad_v.unsqueeze(0)])[index]
    out = F.scaled_dot_product_attention(qa.transpose(1, 2), ka.transpose(1, 2), va.transpose(1, 2))
    result = q.new_empty(n + 1, heads, dim)
    result[index.flatten()] = out.transpose(1, 2).reshape(-1, heads, dim)
    return result[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    ws, dim = 16, 64
    print(f"machine: {machine()}\n{load()} at start; dtype {args.dtype}, batch {args.batch}, "
          f"{args.heads} heads of {dim}\n")
    rows = []
    for g in args.grids:
        repeats = max(1, args.repeats * 64 * 64 // (g * g)) if device.type == "cpu" else args.repeats * 4
        n = args.batch * g * g
        gen = torch.Generator(device="cpu").manual_seed(g)
        q, k, v = (torch.randn(n, args.heads, dim, generator=gen).to(device, dtype) for _ in range(3))
        pad_k = torch.randn(ws * ws, args.heads, dim, generator=gen).to(device, dtype)
        pad_v = torch.randn(args.heads, dim, generator=gen).to(device, dtype)
        for shift in (0, 8):
            windows = window_index([(g, g)], args.batch, ws, shift, device=device)
            mask = swin_mask(g, g, ws, shift, device) if shift else None
            runs = {
                "traditional Swin": lambda: swin_attention(q, k, v, args.batch, g, g, ws, shift, mask),
                "gather + SDPA": lambda: gather_attention(q, k, v, windows, pad_k, pad_v),
                "hrsam_kernels": lambda: window_attention(q, k, v, windows, pad_k, pad_v),
            }
            with torch.no_grad():
                times = measure_interleaved(runs, device, repeats, inner=10 if device.type == "cuda" else 1)
            base_wall, base_cpu = times["traditional Swin"]
            digits = 3 if device.type == "cuda" else 1
            for name, (wall, cpu) in times.items():
                rows.append([f"{g}x{g} ({g * 16} px)", shift, name, f"{wall * 1e3:.{digits}f}", f"{cpu * 1e3:.{digits}f}",
                             f"{base_wall / wall:.2f}x", f"{base_cpu / cpu:.2f}x" if cpu > 0 else "-", repeats])
    print(table(["token grid", "shift", "path", "wall ms (median)", "CPU ms (median)",
                 "speed-up wall", "speed-up CPU", "repeats"], rows))
    print(f"\n{load()} at end")


if __name__ == "__main__":
    main()
