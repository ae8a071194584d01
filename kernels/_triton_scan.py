"""Triton kernels of the cycle-scan selective scan (forward), imported only on the Triton path.

The unrolled sequence (cycles*L steps; step s reads token s mod L, so nothing is repeated in
memory) is cut into chunks of CHUNK steps. Three launches:

1. `_chunk_kernel` per (batch, chunk, channel block): scan the chunk from a zero state in
   registers (float32), keep its end state and its summed time step;
2. `_carry_kernel` per (batch, channel block): walk the chunks in order to get every chunk's true
   start state, h_start[k+1] = exp(A * sum dt[k]) * h_start[k] + h_end_local[k];
3. `_chunk_kernel` again from the true start states, writing y.

Parallel over batch x chunks x channels, sequential over time only inside a chunk. Every exp is
of a non-positive number (dt >= 0, A <= 0), so large dt*|A| cannot overflow.

The backward is not a Triton kernel: autograd recomputes the scan on the PyTorch path.
"""
from __future__ import annotations

import torch

from ._dispatch import import_triton
from ._scan_autograd import scan_torch

triton = import_triton()
if triton is None:
    raise ImportError("the Triton kernels need triton: pip install 'napari-hrsam[gpu]'")
import triton.language as tl  # noqa: E402  (after the RTLD_DEEPBIND import above)

CHUNK = 256
BLOCK_C = 32


@triton.jit
def _softplus(x):
    # torch's softplus (threshold 20), written so that no term loses a tiny result
    return tl.where(x > 20.0, x, tl.where(x < -15.0, tl.exp(x), tl.log(1.0 + tl.exp(x))))


@triton.jit
def _chunk_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, starts_ptr, ends_ptr, dsum_ptr, y_ptr,
    su_b, su_l, sd_b, sd_l, sB_b, sB_l, sC_b, sC_l,
    length, total, channels, state, chunks, steps,
    HAS_D: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    FROM_STARTS: tl.constexpr, WRITE_Y: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid = tl.program_id(0)
    batch = pid // chunks
    chunk = pid % chunks
    offs_c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    offs_n = tl.arange(0, BLOCK_N)
    c_ok = offs_c < channels
    n_ok = offs_n < state
    cn_ok = c_ok[:, None] & n_ok[None, :]
    A = tl.load(A_ptr + offs_c[:, None] * state + offs_n[None, :], mask=cn_ok, other=0.0).to(tl.float32)
    if HAS_D:
        D = tl.load(D_ptr + offs_c, mask=c_ok, other=0.0).to(tl.float32)
    if HAS_BIAS:
        bias = tl.load(bias_ptr + offs_c, mask=c_ok, other=0.0).to(tl.float32)
    state_off = ((batch * chunks + chunk) * channels + offs_c[:, None]) * state + offs_n[None, :]
    if FROM_STARTS:
        h = tl.load(starts_ptr + state_off, mask=cn_ok, other=0.0)
    else:
        h = tl.zeros([BLOCK_C, BLOCK_N], tl.float32)
    dsum = tl.zeros([BLOCK_C], tl.float32)

    for i in range(steps):
        step = chunk * steps + i
        t = step % length
        c_live = c_ok & ((offs_c * 0 + step) < total)  # vector masks: steps past the end are void
        n_live = n_ok & ((offs_n * 0 + step) < total)
        u = tl.load(u_ptr + batch * su_b + t * su_l + offs_c, mask=c_live, other=0.0).to(tl.float32)
        dt = tl.load(delta_ptr + batch * sd_b + t * sd_l + offs_c, mask=c_live, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dt += bias
        if SOFTPLUS:
            dt = _softplus(dt)
        dt = tl.where(c_live, dt, 0.0)  # dt = 0: steps past the end leave the state unchanged
        Bt = tl.load(B_ptr + batch * sB_b + t * sB_l + offs_n, mask=n_live, other=0.0).to(tl.float32)
        h = tl.exp(dt[:, None] * A) * h + (dt * u)[:, None] * Bt[None, :]
        dsum += dt
        if WRITE_Y:
            Ct = tl.load(C_ptr + batch * sC_b + t * sC_l + offs_n, mask=n_live, other=0.0).to(tl.float32)
            y = tl.sum(h * Ct[None, :], 1)
            if HAS_D:
                y += D * u
            tl.store(y_ptr + (batch * total + step) * channels + offs_c, y, mask=c_live)

    if not WRITE_Y:
        tl.store(ends_ptr + state_off, h, mask=cn_ok)
        tl.store(dsum_ptr + (batch * chunks + chunk) * channels + offs_c, dsum, mask=c_ok)


@triton.jit
def _carry_kernel(
    A_ptr, ends_ptr, dsum_ptr, starts_ptr, channels, state, chunks,
    BLOCK_C: tl.constexpr, BLOCK_N: tl.constexpr,
):
    batch = tl.program_id(0)
    offs_c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    offs_n = tl.arange(0, BLOCK_N)
    c_ok = offs_c < channels
    cn_ok = c_ok[:, None] & (offs_n < state)[None, :]
    A = tl.load(A_ptr + offs_c[:, None] * state + offs_n[None, :], mask=cn_ok, other=0.0).to(tl.float32)
    h = tl.zeros([BLOCK_C, BLOCK_N], tl.float32)
    for chunk in range(chunks):
        off = ((batch * chunks + chunk) * channels + offs_c[:, None]) * state + offs_n[None, :]
        tl.store(starts_ptr + off, h, mask=cn_ok)
        dsum = tl.load(dsum_ptr + (batch * chunks + chunk) * channels + offs_c, mask=c_ok, other=0.0)
        h = tl.exp(dsum[:, None] * A) * h + tl.load(ends_ptr + off, mask=cn_ok, other=0.0)


def scan_triton(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True, cycles=1,
                chunk=CHUNK, out=None):
    """Forward only: y (batch, cycles, L, channels) float32. Channels/state must be unit-stride."""
    batch, length, channels = u.shape
    state = A.shape[1]
    u, delta, B, C = (t if t.stride(-1) == 1 else t.contiguous() for t in (u, delta, B, C))
    A = A.contiguous()
    total = cycles * length
    chunks = triton.cdiv(total, chunk)
    f32 = dict(device=u.device, dtype=torch.float32)
    ends = torch.empty(batch, chunks, channels, state, **f32)
    starts = torch.empty_like(ends)
    dsum = torch.empty(batch, chunks, channels, **f32)
    if out is None:
        out = torch.empty(batch, cycles, length, channels, **f32)
    block_n = triton.next_power_of_2(state)
    c_blocks = triton.cdiv(channels, BLOCK_C)
    dummy = ends  # stands in for absent optional pointers; never read
    D_arg = D.contiguous() if D is not None else dummy
    bias_arg = delta_bias.contiguous() if delta_bias is not None else dummy
    args = (u, delta, A, B, C, D_arg, bias_arg, starts, ends, dsum, out,
            u.stride(0), u.stride(1), delta.stride(0), delta.stride(1),
            B.stride(0), B.stride(1), C.stride(0), C.stride(1),
            length, total, channels, state, chunks, chunk)
    flags = dict(HAS_D=D is not None, HAS_BIAS=delta_bias is not None, SOFTPLUS=bool(delta_softplus),
                 BLOCK_C=BLOCK_C, BLOCK_N=block_n)
    grid = (batch * chunks, c_blocks)
    _chunk_kernel[grid](*args, FROM_STARTS=False, WRITE_Y=False, **flags)
    _carry_kernel[(batch, c_blocks)](A, ends, dsum, starts, channels, state, chunks,
                                     BLOCK_C=BLOCK_C, BLOCK_N=block_n)
    _chunk_kernel[grid](*args, FROM_STARTS=True, WRITE_Y=True, **flags)
    return out


class _TritonScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, delta_bias, delta_softplus, cycles):
        ctx.delta_softplus, ctx.cycles = delta_softplus, cycles
        ctx.save_for_backward(u, delta, A, B, C, D, delta_bias)
        return scan_triton(u, delta, A, B, C, D, delta_bias, delta_softplus, cycles)

    @staticmethod
    def backward(ctx, gy):
        inputs = [t.detach().requires_grad_(t.requires_grad) if t is not None else None
                  for t in ctx.saved_tensors]
        wanted = [t for t in inputs if t is not None and t.requires_grad]
        with torch.enable_grad():
            y = scan_torch(*inputs, delta_softplus=ctx.delta_softplus, cycles=ctx.cycles)
            grads = iter(torch.autograd.grad(y, wanted, gy))
        return (*(next(grads) if t is not None and t.requires_grad else None for t in inputs),
                None, None)


def scan_triton_autograd(u, delta, A, B, C, D, delta_bias, delta_softplus, cycles):
    return _TritonScan.apply(u, delta, A, B, C, D, delta_bias, delta_softplus, cycles)
