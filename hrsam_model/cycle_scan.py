"""The cycle-scan state-space block (class `Mamba` in the official code).

The raster token sequence is repeated `extend_ratio` times end to end and scanned by
a Mamba-1 selective scan; the outputs of the R passes are mixed per channel by
`gamma`. Later passes have seen the whole sequence, so every token gets a global
receptive field at linear cost.
"""
import math

import torch
from torch import nn

from hrsam_kernels import selective_scan


class CycleScanSSM(nn.Module):
    def __init__(self, dim, state_dim=32, extend_ratio=3, dt_min=1e-3, dt_max=0.1, dt_floor=1e-4):
        super().__init__()
        self.state_dim = state_dim
        self.extend_ratio = extend_ratio
        self.in_norm = nn.LayerNorm(dim)
        self.in_proj = nn.Sequential(nn.Linear(dim, 2 * dim), nn.SiLU())
        self.ssm_proj = nn.Linear(dim, dim + 2 * state_dim)
        self.ssm_proj_bias = nn.Parameter(torch.zeros(dim))
        self.As_log = nn.Parameter(
            torch.arange(1, state_dim + 1, dtype=torch.float32).log().repeat(dim, 1)
        )
        self.Ds = nn.Parameter(torch.ones(dim))
        self.gamma = nn.Parameter(torch.ones(dim, extend_ratio, 1))
        self.out_norm = nn.LayerNorm(dim)
        self.out_proj = nn.Linear(dim, dim)

        # Mamba's initialisation: dt rows small and uniform, dt bias = softplus^-1 of a
        # log-uniform step in [dt_min, dt_max].
        bound = dim ** -0.5
        with torch.no_grad():
            nn.init.uniform_(self.ssm_proj.weight[:dim], -bound, bound)
            nn.init.zeros_(self.ssm_proj.bias)
            dt = torch.exp(
                torch.rand(dim) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
            ).clamp(min=dt_floor)
            self.ssm_proj_bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, x, batch_size, segments=None):
        """x: (B*L, C) flat tokens. segments: token counts per scale inside each batch
        item, scanned separately (HRSAM++ per-scale scan); None scans the whole item."""
        dim, state = x.shape[1], self.state_dim
        shortcut = x
        u, z = self.in_proj(self.in_norm(x)).chunk(2, dim=-1)
        dt, b, c = self.ssm_proj(u).split([dim, state, state], dim=-1)
        u, dt, b, c = (t.reshape(batch_size, -1, t.shape[-1]) for t in (u, dt, b, c))
        a = -self.As_log.float().exp()
        length = u.shape[1]
        segments = [length] if not segments else list(segments)
        ys, start = [], 0
        for size in segments:
            part = slice(start, start + size)
            y = selective_scan(
                u[:, part], dt[:, part], a, b[:, part], c[:, part],
                D=self.Ds.float(), delta_bias=self.ssm_proj_bias.float(),
                delta_softplus=True, cycles=self.extend_ratio,
            )  # (B, R, size, C)
            ys.append(torch.einsum("brlc,cr->blc", y, self.gamma[..., 0].float()))
            start += size
        y = torch.cat(ys, dim=1).reshape(-1, dim)
        return shortcut + self.out_proj(z * self.out_norm(y).to(z.dtype))
