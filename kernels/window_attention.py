"""Flash Swin window attention with KV-only padding.

Every real token attends over the ws*ws slots of its window. A slot outside the image holds the
layer's padding token: its key is `pad_k[slot]` (RoPE differs per slot) and its value `pad_v`.
Padding slots give keys and values but never a query, so no work is spent on outputs the model
throws away (36% of the slots of a shifted layer on a 64x64 grid).
"""
from __future__ import annotations

from ._attention_torch import attention_torch
from ._dispatch import resolve_backend
from .windows import WindowIndex

__all__ = ["window_attention", "attention_torch"]


def _check(q, k, v, windows, pad_k, pad_v):
    if q.dim() != 3 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"q, k, v must share the shape (N, heads, head_dim); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    n, heads, dim = q.shape
    if n != windows.num_tokens:
        raise ValueError(f"q holds {n} tokens but the window index was built for {windows.num_tokens}; "
                         "rebuild it with window_index(...) for this batch and grid")
    slots = windows.window_size**2
    if tuple(pad_k.shape) != (slots, heads, dim):
        raise ValueError(f"pad_k must have shape {(slots, heads, dim)}, got {tuple(pad_k.shape)}")
    if tuple(pad_v.shape) != (heads, dim):
        raise ValueError(f"pad_v must have shape {(heads, dim)}, got {tuple(pad_v.shape)}")


def window_attention(q, k, v, windows: WindowIndex, pad_k, pad_v, scale=None, backend=None):
    """Attention inside the windows of `windows` for the N real tokens.

    q, k, v: (N, heads, head_dim), RoPE already applied. pad_k: (ws*ws, heads, head_dim), the
    padding token's key at every slot; pad_v: (heads, head_dim). Returns (N, heads, head_dim) in
    q's dtype. backend: None (auto), "torch" or "triton".
    """
    _check(q, k, v, windows, pad_k, pad_v)
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    if resolve_backend(backend, q, k, v) == "triton":
        from ._triton_attention import attention_triton_autograd

        return attention_triton_autograd(q, k, v, windows, pad_k, pad_v, scale)
    return attention_torch(q, k, v, windows, pad_k, pad_v, scale)
