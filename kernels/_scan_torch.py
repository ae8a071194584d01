"""Backward of the PyTorch selective scan, and the chunk layout shared with the forward.

Layout. The scanned sequence (cycles*L steps, zero-padded to K*T) is cut into K chunks of T
steps. Tensors are held as (T, K*batch, features): one row per chunk (chunk-major), one slice per
in-chunk step, so a single vectorised op advances every chunk of every batch item by one step.

Chunk start states. A pass runs the recurrence inside every chunk from a zero state to get each
chunk's end state; a short loop over chunks carries the true start state of every chunk. Each step
multiplies by exp(dt*A) <= 1 itself, so no cumulative product is ever inverted and large dt*|A|
cannot overflow.

Backward (over the unrolled cycles*L sequence). The adjoint g_t = dL/dh_t obeys the same recurrence backwards in time,
g_t = exp(dt_{t+1} A) g_{t+1} + gy_t C_t, and is solved the same way (local reverse pass, carry
over chunks, final pass). States are recomputed per group of chunks from the saved chunk starts,
so memory stays bounded whatever the sequence length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Recomputed states of one backward group stay below this many bytes.
_GROUP_BYTES = 256 * 2**20


@dataclass(frozen=True)
class ChunkLayout:
    batch: int
    length: int
    cycles: int
    steps: int  # T: steps per chunk
    chunks: int  # K: chunks per batch item

    @staticmethod
    def plan(batch: int, length: int, cycles: int, steps: int | None = None) -> "ChunkLayout":
        total = cycles * length
        if steps is None:
            # ~sqrt(total/4), at most 32: short in-chunk loops of large vectorised steps;
            # the loop over chunks only touches (batch, channels, state) tensors and is cheap.
            steps = max(1, min(32, round(math.sqrt(total / 4))))
        return ChunkLayout(batch, length, cycles, steps, -(-total // steps))

    @property
    def rows(self) -> int:
        return self.chunks * self.batch

    def to_steps(self, x: torch.Tensor, repeat: bool = True) -> torch.Tensor:
        """(batch, L, f) repeated `cycles` times, or (batch, cycles*L, f) -> (T, K*batch, f) fp32."""
        x = x.float()
        if repeat and self.cycles > 1:
            x = x.repeat(1, self.cycles, 1)
        x = F.pad(x, (0, 0, 0, self.chunks * self.steps - x.shape[1]))  # dt = 0: state unchanged
        x = x.view(self.batch, self.chunks, self.steps, -1).permute(2, 1, 0, 3)
        return x.contiguous().view(self.steps, self.rows, -1)

    def from_steps(self, x: torch.Tensor) -> torch.Tensor:
        """(T, K*batch, f) -> (batch, cycles, L, f)."""
        x = x.view(self.steps, self.chunks, self.batch, -1).permute(2, 1, 0, 3)
        x = x.reshape(self.batch, self.chunks * self.steps, -1)[:, : self.cycles * self.length]
        return x.reshape(self.batch, self.cycles, self.length, -1)


def _decay(dt: torch.Tensor, A2: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """exp(dt * A) = 2**(dt * A2) for dt (rows, c), written into out (rows, c, n).

    The scan code takes A2 = A * log2(e): on CPU torch's exp2 is about twice as fast as exp, and
    the extra rounding (a relative 3e-6 at most where the decay matters) is far below tolerance.
    """
    return torch.mul(dt.unsqueeze(-1), A2, out=out).exp2_()


def _advance(h, a, dt, dtu, B, A2):
    """h <- exp(dt*A) * h + (dt*u) B, in place."""
    h.mul_(_decay(dt, A2, a)).addcmul_(dtu.unsqueeze(-1), B.unsqueeze(1))


def chunk_starts(lay: ChunkLayout, dts, dtus, Bs, A2):
    """True state at the start of every chunk (rows, c, n): a local pass from zero, then a carry."""
    steps, rows, c = dts.shape
    n = A2.shape[1]
    a = dts.new_empty(rows, c, n)
    h = dts.new_zeros(rows, c, n)
    for t in range(steps):
        _advance(h, a, dts[t], dtus[t], Bs[t], A2)
    ends = h.view(lay.chunks, lay.batch, c, n)
    chunk_decay = torch.exp2(dts.sum(0).view(lay.chunks, lay.batch, c, 1) * A2)
    starts = torch.zeros_like(ends)
    for k in range(1, lay.chunks):
        torch.addcmul(ends[k - 1], chunk_decay[k - 1], starts[k - 1], out=starts[k])
    return starts.view(rows, c, n)


def _adjoint_ends(lay: ChunkLayout, gys, dts, Cs, A2):
    """Adjoint flowing into the last step of every chunk from the chunks after it (rows, c, n)."""
    steps, rows, c = dts.shape
    n = A2.shape[1]
    a = dts.new_empty(rows, c, n)
    g = dts.new_zeros(rows, c, n)
    for t in reversed(range(steps)):
        if t + 1 < steps:
            g.mul_(_decay(dts[t + 1], A2, a))
        g.addcmul_(gys[t].unsqueeze(-1), Cs[t].unsqueeze(1))
    local = g.view(lay.chunks, lay.batch, c, n)  # adjoint at each chunk's first step, local part
    first = torch.exp2(dts[0].view(lay.chunks, lay.batch, c, 1) * A2)
    rest = torch.exp2(dts[1:].sum(0).view(lay.chunks, lay.batch, c, 1) * A2)
    incoming = torch.zeros_like(local)
    for k in reversed(range(1, lay.chunks)):
        true_first = torch.addcmul(local[k], rest[k], incoming[k])
        torch.mul(first[k], true_first, out=incoming[k - 1])
    return incoming.view(rows, c, n)


def scan_backward(lay: ChunkLayout, gys, dts, dtus, Bs, Cs, A2, starts):
    """Gradients w.r.t. dt, dt*u, B, C (all (T, rows, f)) and A (c, n), given gy (T, rows, c).

    q = dL/d(dt*A) per step and element; dL/dA = sum q dt and dL/d dt = sum_n q A (= q A2 ln 2).
    """
    steps, rows, c = dts.shape
    n = A2.shape[1]
    incoming = _adjoint_ends(lay, gys, dts, Cs, A2)
    d_dt, d_dtu = torch.empty_like(dts), torch.empty_like(dtus)
    d_B, d_C = torch.empty_like(Bs), torch.empty_like(Cs)
    d_A = A2.new_zeros(c, n)
    group = max(1, min(rows, _GROUP_BYTES // ((steps + 1) * c * n * 4)))
    for r0 in range(0, rows, group):
        r = slice(r0, min(rows, r0 + group))
        size = r.stop - r.start
        hs = dts.new_empty(steps + 1, size, c, n)  # hs[t + 1] = h_t, hs[0] = chunk start
        hs[0] = starts[r]
        a = dts.new_empty(size, c, n)
        for t in range(steps):
            hs[t + 1] = hs[t]
            _advance(hs[t + 1], a, dts[t, r], dtus[t, r], Bs[t, r], A2)
        g = incoming[r].clone()
        q = torch.empty_like(a)
        dA_acc = torch.zeros_like(a)
        for t in reversed(range(steps)):
            g.addcmul_(gys[t, r].unsqueeze(-1), Cs[t, r].unsqueeze(1))  # g = dL/dh_t
            torch.bmm(gys[t, r].unsqueeze(1), hs[t + 1], out=d_C[t, r].unsqueeze(1))
            torch.bmm(g, Bs[t, r].unsqueeze(-1), out=d_dtu[t, r].unsqueeze(-1))
            torch.bmm(dtus[t, r].unsqueeze(1), g, out=d_B[t, r].unsqueeze(1))
            g.mul_(_decay(dts[t, r], A2, a))  # a_t * g_t: adjoint carried to step t-1
            torch.mul(g, hs[t], out=q)  # q: dL/d(dt_t * A), elementwise
            dA_acc.addcmul_(q, dts[t, r].unsqueeze(-1))
            torch.sum(q.mul_(A2), dim=-1, out=d_dt[t, r])
        d_A += dA_acc.sum(0)
    return d_dt.mul_(math.log(2.0)), d_dtu, d_B, d_C, d_A
