"""Triton kernel of Flash Swin window attention (forward), imported only on the Triton path.

One launch covers every window of a layer: program (i, head) takes the i-th 64-slot query block
that holds a real token (blocks of padding only are never launched: KV-only padding), gathers its
queries by token id, and streams the window's keys and values in blocks with an online softmax.
A key/value slot is gathered from k/v for a real token, or taken from pad_k[slot] / pad_v for a
padding slot; nothing padded is ever materialised. Accumulation is float32. fp32 inputs keep fp32
accuracy (they match a float64 reference to ~1e-6): on sm_80 and later the products run on the
tensor cores as 3xTF32 (each operand split into a TF32 high and low part), which on an H200 was
2-3x faster than IEEE FMA products; older GPUs and the interpreter use IEEE products.

The backward is not a Triton kernel: autograd recomputes the layer on the PyTorch path.
"""
from __future__ import annotations

import torch

from ._attention_torch import attention_torch
from ._dispatch import import_triton
from .windows import QUERY_BLOCK, WindowIndex

triton = import_triton()
if triton is None:
    raise ImportError("the Triton kernels need triton: pip install 'napari-hrsam[gpu]'")
import triton.language as tl  # noqa: E402  (after the RTLD_DEEPBIND import above)


@triton.jit
def _window_attention_kernel(
    q_ptr, k_ptr, v_ptr, out_ptr, pad_k_ptr, pad_v_ptr, index_ptr, blocks_ptr,
    sq_n, sq_h, sk_n, sk_h, sv_n, sv_h, so_n, so_h, spk_s, spk_h, spv_h,
    scale, slots, head_dim,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, IEEE: tl.constexpr,
    TF32X3: tl.constexpr,  # fp32 inputs only: 3xTF32 products instead of IEEE ones
):
    item = tl.program_id(0)
    head = tl.program_id(1)
    window = tl.load(blocks_ptr + 2 * item).to(tl.int64)
    first = tl.load(blocks_ptr + 2 * item + 1)

    offs_m = first + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < head_dim
    row = index_ptr + window * slots
    tok_q = tl.load(row + offs_m, mask=offs_m < slots, other=-1)
    q_ok = tok_q >= 0
    q = tl.load(q_ptr + tok_q[:, None] * sq_n + head * sq_h + offs_d[None, :],
                mask=q_ok[:, None] & d_ok[None, :], other=0.0)
    pad_v = tl.load(pad_v_ptr + head * spv_h + offs_d, mask=d_ok, other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start in range(0, slots, BLOCK_N):
        offs_n = start + tl.arange(0, BLOCK_N)
        n_ok = offs_n < slots
        tok_k = tl.load(row + offs_n, mask=n_ok, other=-1)
        real = tok_k >= 0
        both = real[:, None] & d_ok[None, :]
        pad = (n_ok & ~real)[:, None] & d_ok[None, :]
        k = tl.load(k_ptr + tok_k[:, None] * sk_n + head * sk_h + offs_d[None, :], mask=both, other=0.0)
        k += tl.load(pad_k_ptr + offs_n[:, None] * spk_s + head * spk_h + offs_d[None, :], mask=pad,
                     other=0.0)
        v = tl.load(v_ptr + tok_k[:, None] * sv_n + head * sv_h + offs_d[None, :], mask=both, other=0.0)
        v = tl.where(pad, pad_v[None, :].to(v.dtype), v)

        if TF32X3:
            s = tl.dot(q, tl.trans(k), input_precision="tf32x3")
        elif IEEE:
            s = tl.dot(q, tl.trans(k), input_precision="ieee")
        else:
            s = tl.dot(q, tl.trans(k))
        s = tl.where(n_ok[None, :], s * scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.exp(s - m_new[:, None])
        alpha = tl.exp(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        if TF32X3:
            pv = tl.dot(p, v, input_precision="tf32x3")
        elif IEEE:
            pv = tl.dot(p, v, input_precision="ieee")
        else:
            pv = tl.dot(p.to(v.dtype), v)
        acc = acc * alpha[:, None] + pv
        m_i = m_new

    out = acc / l_i[:, None]
    tl.store(out_ptr + tok_q[:, None] * so_n + head * so_h + offs_d[None, :],
             out.to(out_ptr.dtype.element_ty), mask=q_ok[:, None] & d_ok[None, :])


def _key_block(dtype: torch.dtype, block_d: int) -> int:
    # fp32 IEEE dots need 4x the shared memory of bf16 ones; stay within 64 KiB (sm_75 and up)
    return 32 if dtype == torch.float32 or block_d > 64 else 64


def _has_tf32(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def attention_triton(q, k, v, windows: WindowIndex, pad_k, pad_v, scale: float, out=None):
    """Forward only. Inputs are cast to q's dtype; the last dimension must be contiguous."""
    n, heads, dim = q.shape
    k, v, pad_k, pad_v = (t.to(q.dtype) for t in (k, v, pad_k, pad_v))
    q, k, v, pad_k, pad_v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v, pad_k, pad_v))
    if out is None:
        out = torch.empty_like(q, memory_format=torch.contiguous_format)
    fp32 = q.dtype == torch.float32
    blocks = windows.query_blocks.to(q.device)
    if blocks.shape[0] == 0:
        return out
    block_d = max(16, triton.next_power_of_2(dim))
    slots = windows.index.shape[1]
    grid = (blocks.shape[0], heads)
    _window_attention_kernel[grid](
        q, k, v, out, pad_k, pad_v, windows.index.to(q.device), blocks,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1),
        out.stride(0), out.stride(1), pad_k.stride(0), pad_k.stride(1), pad_v.stride(0),
        float(scale), slots, dim,
        BLOCK_M=QUERY_BLOCK, BLOCK_N=_key_block(q.dtype, block_d), BLOCK_D=block_d,
        IEEE=fp32, TF32X3=fp32 and _has_tf32(q.device),
    )
    return out


class _TritonAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, pad_k, pad_v, windows, scale):
        ctx.windows, ctx.scale = windows, scale
        ctx.save_for_backward(q, k, v, pad_k, pad_v)
        return attention_triton(q, k, v, windows, pad_k, pad_v, scale)

    @staticmethod
    def backward(ctx, grad_out):
        # Recompute on the PyTorch path and let autograd differentiate it.
        inputs = [t.detach().requires_grad_(t.requires_grad) for t in ctx.saved_tensors]
        with torch.enable_grad():
            q, k, v, pad_k, pad_v = inputs
            out = attention_torch(q, k, v, ctx.windows, pad_k, pad_v, ctx.scale)
            wanted = [t for t in inputs if t.requires_grad]
            # a grid whose windows need no padding never reads pad_k/pad_v: their gradient is None
            grads = iter(torch.autograd.grad(out, wanted, grad_out, allow_unused=True))
        return (*(next(grads) if t.requires_grad else None for t in inputs), None, None)


def attention_triton_autograd(q, k, v, windows, pad_k, pad_v, scale):
    return _TritonAttention.apply(q, k, v, pad_k, pad_v, windows, scale)
