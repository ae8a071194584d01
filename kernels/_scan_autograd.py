"""PyTorch path of the selective scan as an autograd Function (forward and analytic backward).

Its own module so that both `selective_scan` (which dispatches) and `_triton_scan` (whose backward
recomputes on this path) can import it without importing each other.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._scan_cycles import scan_cycles_forward
from ._scan_torch import ChunkLayout, chunk_starts, scan_backward


def _time_step(delta, delta_bias, delta_softplus):
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()
    return F.softplus(dt) if delta_softplus else dt


LOG2E = 1.0 / math.log(2.0)


class _TorchScan(torch.autograd.Function):
    """Chunked PyTorch scan; the backward is analytic and recomputes states instead of storing them."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_bias, delta_softplus, cycles, steps):
        dt = _time_step(delta, delta_bias, delta_softplus)
        y = scan_cycles_forward(u, dt, A.float() * LOG2E, B, C, cycles, steps)
        if D is not None:
            y = y + D.float() * u.float().unsqueeze(1)
        ctx.cycles, ctx.steps, ctx.delta_softplus = cycles, steps, delta_softplus
        ctx.save_for_backward(u, delta, A, B, C, D, delta_bias)
        return y

    @staticmethod
    def backward(ctx, gy):
        u, delta, A, B, C, D, delta_bias = ctx.saved_tensors
        # The backward runs over the unrolled sequence; chunk start states are recomputed.
        lay = ChunkLayout.plan(u.shape[0], u.shape[1], ctx.cycles, ctx.steps)
        gy = gy.float()
        dt = _time_step(delta, delta_bias, ctx.delta_softplus)
        u32, A2 = u.float(), A.float() * LOG2E
        dts, dtus, Bs = lay.to_steps(dt), lay.to_steps(dt * u32), lay.to_steps(B)
        starts = chunk_starts(lay, dts, dtus, Bs, A2)
        d_dt, d_dtu, d_B, d_C, d_A = scan_backward(
            lay, lay.to_steps(gy.flatten(1, 2), repeat=False), dts, dtus, Bs, lay.to_steps(C), A2,
            starts)

        def per_token(x):  # (T, rows, f) -> (batch, L, f), summed over the cycles
            return lay.from_steps(x).sum(1)

        d_dtu = per_token(d_dtu)
        d_u = d_dtu * dt
        d_D = None
        if D is not None:
            d_u = d_u + gy.sum(1) * D.float()
            d_D = (gy * u32.unsqueeze(1)).sum((0, 1, 2)).to(D.dtype)
        d_dt = per_token(d_dt) + d_dtu * u32
        if ctx.delta_softplus:
            x = delta.float() + (delta_bias.float() if delta_bias is not None else 0.0)
            d_dt = d_dt * torch.where(x > 20, 1.0, torch.sigmoid(x))  # F.softplus threshold 20
        d_bias = d_dt.sum((0, 1)).to(delta_bias.dtype) if delta_bias is not None else None
        return (d_u.to(u.dtype), d_dt.to(delta.dtype), d_A.to(A.dtype), per_token(d_B).to(B.dtype),
                per_token(d_C).to(C.dtype), d_D, d_bias, None, None, None)


def scan_torch(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, cycles=1, steps=None):
    """PyTorch path; `steps` (chunk length) is exposed for tests, None picks it from the length."""
    return _TorchScan.apply(u, delta, A, B, C, D, delta_bias, delta_softplus, cycles, steps)
