"""Selective scan of HRSAM's cycle-scan block (Mamba-1 semantics, one shared B/C group).

The sequence is scanned `cycles` times end to end (length cycles*L) with a float32 state:
    dt_t = softplus(delta_t + delta_bias)
    h_t  = exp(dt_t * A) * h_{t-1} + dt_t * B_t * u_t      (h_0 = 0)
    y_t  = <C_t, h_t> + D * u_t
and the output of every pass is returned, so the caller can mix the passes per channel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._dispatch import resolve_backend


def _check(u, delta, A, B, C, D, delta_bias, cycles):
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must share the shape (batch, L, channels); got {tuple(u.shape)} "
                         f"and {tuple(delta.shape)}")
    b, length, c = u.shape
    if A.dim() != 2 or A.shape[0] != c:
        raise ValueError(f"A must have shape (channels={c}, state), got {tuple(A.shape)}")
    n = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        if tuple(t.shape) != (b, length, n):
            raise ValueError(f"{name} must have shape {(b, length, n)}, got {tuple(t.shape)}")
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"{name} must have shape ({c},), got {tuple(t.shape)}")
    if int(cycles) != cycles or cycles < 1:
        raise ValueError(f"cycles must be a positive integer, got {cycles!r}")
    if length == 0:
        raise ValueError("the sequence is empty (L = 0)")


def _time_step(delta, delta_bias, delta_softplus):
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()
    return F.softplus(dt) if delta_softplus else dt


def chunk_length(total: int) -> int:
    """Steps per chunk: about sqrt(total), so the in-chunk and across-chunk loops stay short."""
    return max(1, min(256, math.isqrt(max(total, 1) - 1) + 1))


def scan_torch(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, cycles=1):
    """Chunked scan: all chunks advance together step by step, then chunk states are carried.

    The sequence of cycles*L steps is cut into K chunks of T steps. Pass 1 runs the recurrence in
    every chunk at once from a zero state (T vectorised steps) to get each chunk's end state; a
    short loop over chunks carries the true start state of every chunk; pass 2 reruns the T steps
    from those start states and reads out y. Every step multiplies by exp(dt*A) <= 1 directly, so
    no cumulative product is ever inverted and large dt*|A| cannot overflow.
    """
    b, length, c = u.shape
    n = A.shape[1]
    total = cycles * length
    steps = chunk_length(total)
    chunks = -(-total // steps)
    pad = chunks * steps - total

    dt = _time_step(delta, delta_bias, delta_softplus)
    A = A.float()

    def by_step(x):  # (b, L, f) -> (T, b*K, f): one row per chunk, one slice per in-chunk step
        x = x.float().repeat(1, cycles, 1) if cycles > 1 else x.float()
        x = F.pad(x, (0, 0, 0, pad))  # zero dt in the padding: state unchanged
        return x.view(b, chunks, steps, -1).permute(2, 0, 1, 3).reshape(steps, b * chunks, -1)

    dts, dtus = by_step(dt), by_step(dt * u.float())
    Bs, Cs = by_step(B), by_step(C)

    def advance(h, t):
        return torch.exp(dts[t].unsqueeze(-1) * A) * h + dtus[t].unsqueeze(-1) * Bs[t].unsqueeze(1)

    h = dts.new_zeros(b * chunks, c, n)
    for t in range(steps):
        h = advance(h, t)
    ends = h.view(b, chunks, c, n)
    chunk_decay = torch.exp(dts.sum(0).view(b, chunks, c, 1) * A)
    starts = [ends.new_zeros(b, c, n)]
    for k in range(chunks - 1):
        starts.append(chunk_decay[:, k] * starts[-1] + ends[:, k])
    h = torch.stack(starts, dim=1).view(b * chunks, c, n)

    ys = []
    for t in range(steps):
        h = advance(h, t)
        ys.append(torch.bmm(h, Cs[t].unsqueeze(-1)).squeeze(-1))
    y = torch.stack(ys).view(steps, b, chunks, c).permute(1, 2, 0, 3).reshape(b, chunks * steps, c)
    y = y[:, :total].view(b, cycles, length, c)
    if D is not None:
        y = y + D.float() * u.float().unsqueeze(1)
    return y


def selective_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, cycles=1,
                   backend=None):
    """Mamba-1 selective scan over the sequence repeated `cycles` times.

    u, delta: (batch, L, channels); A: (channels, state), already -exp(A_log); B, C: (batch, L,
    state); D, delta_bias: (channels,) or None. Returns float32 y of shape (batch, cycles, L,
    channels) with y[:, r, t] the output at step r*L + t. backend: None (auto), "torch", "triton".
    """
    _check(u, delta, A, B, C, D, delta_bias, cycles)
    cycles = int(cycles)
    if resolve_backend(backend, u, delta, A, B, C) == "triton":
        from ._triton_scan import scan_triton_autograd

        return scan_triton_autograd(u, delta, A, B, C, D, delta_bias, delta_softplus, cycles)
    return scan_torch(u, delta, A, B, C, D, delta_bias, delta_softplus, cycles)
