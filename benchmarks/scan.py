"""Cycle-scan selective scan: naive sequential loop vs hrsam_kernels (vs mamba_ssm if installed).

    python benchmarks/scan.py                          # CPU: L = 4096 and 16384 tokens per cycle
    python benchmarks/scan.py --lengths 4096 16384 65536 --backward

Each row scans `cycles` (3) passes over L tokens (1024/2048/4096 px inputs give L = 4096/16384/
65536) for the shipped hrsam_tiny width (192 channels, state 16) and ViT-B (768, state 32):

- naive loop: one vectorised step per token over the unrolled 3L sequence (what a plain PyTorch
  re-implementation of Mamba's reference scan does), float32 state;
- hrsam_kernels: `selective_scan` (Triton on CUDA, the chunked PyTorch path elsewhere);
- mamba_ssm: `selective_scan_fn` on the explicitly repeated sequence, only if it imports (CUDA).

With --backward, the forward + backward time is measured too (naive loop through autograd).
"""
from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from _timing import load, machine, measure_interleaved, table  # noqa: E402
from hrsam_kernels import selective_scan  # noqa: E402


def naive_scan(u, delta, A, B, C, D, delta_bias, cycles):
    dt = F.softplus(delta.float() + delta_bias.float())
    batch, length, channels = u.shape
    h = u.new_zeros(batch, channels, A.shape[1], dtype=torch.float32)
    ys = []
    for step in range(cycles * length):
        t = step % length
        h = torch.exp(dt[:, t, :, None] * A) * h + (dt[:, t] * u[:, t])[..., None] * B[:, t, None, :]
        ys.append(torch.einsum("bcn,bn->bc", h, C[:, t]))
    return torch.stack(ys, 1).view(batch, cycles, length, channels) + D * u.unsqueeze(1)


def mamba_scan():
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:
        return None

    def run(u, delta, A, B, C, D, delta_bias, cycles):
        rep = lambda x: x.repeat(1, cycles, 1).transpose(1, 2).contiguous()  # noqa: E731
        y = selective_scan_fn(rep(u), rep(delta), A, rep(B).unsqueeze(1), rep(C).unsqueeze(1), D,
                              delta_bias=delta_bias, delta_softplus=True)
        return y.transpose(1, 2).view(u.shape[0], cycles, u.shape[1], -1)

    return run


def inputs(batch, length, channels, state, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, length, channels, generator=g)
    delta = torch.randn(batch, length, channels, generator=g) * 0.5 - 2
    A = -torch.arange(1, state + 1, dtype=torch.float32).repeat(channels, 1)
    B, C = (torch.randn(batch, length, state, generator=g) for _ in range(2))
    D, bias = torch.ones(channels), torch.randn(channels, generator=g) * 0.1
    return [t.to(device) for t in (u, delta, A, B, C, D, bias)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--widths", default="192x16,768x32", help="channels x state, comma separated")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--backward", action="store_true", help="also time forward + backward")
    parser.add_argument("--naive-max", type=int, default=16384, help="longest L for the naive loop")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"machine: {machine()}\n{load()} at start; batch 1, {args.cycles} cycles\n")
    mamba = mamba_scan() if device.type == "cuda" else None
    rows = []
    for width in args.widths.split(","):
        channels, state = map(int, width.split("x"))
        for length in args.lengths:
            data = inputs(1, length, channels, state, device, seed=length)
            repeats = max(1, args.repeats * 4096 // length)
            runs = {"hrsam_kernels": lambda: selective_scan(*data, cycles=args.cycles)}
            if length <= args.naive_max:
                runs["naive loop"] = lambda: naive_scan(*data, args.cycles)
            if mamba is not None:
                runs["mamba_ssm"] = lambda: mamba(*data, args.cycles)
            with torch.no_grad():
                times = measure_interleaved(runs, device, repeats, cold=("naive loop",))
            if args.backward:
                grads = [t.clone().requires_grad_() for t in data]
                back = {"hrsam_kernels": lambda: selective_scan(*grads, cycles=args.cycles).sum().backward()}
                if channels * state * length <= 192 * 16 * 4096:  # the autograd loop is slow
                    back["naive loop"] = lambda: naive_scan(*grads, args.cycles).sum().backward()
                for name, result in measure_interleaved(back, device, repeats, cold=("naive loop",)).items():
                    times[name + " fwd+bwd"] = result
            for name, (wall, cpu) in times.items():
                ref = times.get("naive loop fwd+bwd" if "bwd" in name else "naive loop")
                rows.append([f"{channels}x{state}", f"{args.cycles}x{length}", name, f"{wall * 1e3:.0f}",
                             f"{cpu * 1e3:.0f}", f"{ref[0] / wall:.1f}x" if ref else "-",
                             f"{ref[1] / cpu:.1f}x" if ref and cpu > 0 else "-", repeats])
    print(table(["channels x state", "steps", "path", "wall ms (median)", "CPU ms (median)",
                 "speed-up wall", "speed-up CPU", "repeats"], rows))
    print(f"\n{load()} at end")


if __name__ == "__main__":
    main()
