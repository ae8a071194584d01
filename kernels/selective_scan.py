"""Selective scan of HRSAM's cycle-scan block (Mamba-1 semantics, one shared B/C group).

The sequence is scanned `cycles` times end to end (length cycles*L) with a float32 state:
    dt_t = softplus(delta_t + delta_bias)
    h_t  = exp(dt_t * A) * h_{t-1} + dt_t * B_t * u_t      (h_0 = 0)
    y_t  = <C_t, h_t> + D * u_t
and the output of every pass is returned, so the caller can mix the passes per channel.
"""
from __future__ import annotations

from ._dispatch import resolve_backend
from ._scan_autograd import scan_torch

__all__ = ["selective_scan", "scan_torch"]


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
