"""PyTorch path of the window attention: one SDPA call per window group.

Its own module so that both `window_attention` (which dispatches) and `_triton_attention` (whose
backward recomputes on this path) can import it without importing each other.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .windows import WindowIndex


def attention_torch(q, k, v, windows: WindowIndex, pad_k, pad_v, scale: float, out=None):
    """One SDPA call per window group, on the group's real queries only.

    Keys and values of a group are its gathered real tokens followed by the padding token at the
    group's padding slots (the order of keys does not change a softmax).
    """
    n, heads, dim = q.shape
    pad_k, pad_v = pad_k.to(q.dtype), pad_v.to(q.dtype)
    k, v = k.to(q.dtype), v.to(q.dtype)
    if out is None:
        out = q.new_empty(n, heads, dim)
    for group in windows.groups:
        g, r = group.tokens.shape
        flat = group.tokens.reshape(-1)
        qg = q.index_select(0, flat).view(g, r, heads, dim).transpose(1, 2)
        kg = k.index_select(0, flat).view(g, r, heads, dim)
        vg = v.index_select(0, flat).view(g, r, heads, dim)
        p = group.pad_slots.shape[1]
        if p:
            kg = torch.cat([kg, pad_k[group.pad_slots]], dim=1)
            vg = torch.cat([vg, pad_v.expand(g, p, heads, dim)], dim=1)
        og = F.scaled_dot_product_attention(qg, kg.transpose(1, 2), vg.transpose(1, 2), scale=scale)
        # scattered in place straight from SDPA's (g, heads, r, dim) layout: no per-group copy
        # (autocast may hand back bf16 from SDPA)
        out[group.tokens] = og.transpose(1, 2).to(out.dtype)
    return out
