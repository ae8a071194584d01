"""HRSAM image encoder: ViT trunk over windows with RoPE, cycle-scan SSM blocks and a
lateral-fusion neck. Parameter names follow the official HRSAMViT / HRSAMPlusPlusViT
so that released checkpoints load as they are (under the `backbone.` prefix).

Tokens stay flat, (B*L, C), through the trunk: each attention layer gathers them into
16x16 windows itself. Even blocks use plain windows, odd blocks windows shifted by 8
(realised by 8 padding rows/cols on the top/left, no cyclic roll).
"""
import torch
import torch.nn.functional as F
from torch import nn

from hrsam_kernels import window_index

from .blocks import Block
from .cycle_scan import CycleScanSSM
from .rope import WindowRoPE


class PatchEmbed(nn.Module):
    """16x16 patches to tokens; a Conv2d weight applied as unfold + linear, as official."""

    def __init__(self, patch_size, in_chans, dim):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.patch_size
        patches = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        patches = patches.reshape(b, h // p, w // p, c * p * p)
        return F.linear(patches, self.proj.weight.reshape(self.proj.weight.shape[0], -1), self.proj.bias)


class ChannelsFirst(nn.Module):
    def forward(self, x):
        return x.permute(0, 3, 1, 2)


class SwapChannelsLast(nn.Module):
    """(B, C, H, W) <-> (B, W, H, C), so a LayerNorm normalises channels (official Transpose(1, -1))."""

    def forward(self, x):
        return x.transpose(1, -1)


class MergeScales(nn.Module):
    """(S*B, H, W, C) scale-major batch -> (B, H, W, S*C)."""

    def __init__(self, num_scales):
        super().__init__()
        self.num_scales = num_scales

    def forward(self, x):
        sb, h, w, c = x.shape
        x = x.reshape(self.num_scales, sb // self.num_scales, h, w, c)
        return x.permute(1, 2, 3, 0, 4).reshape(sb // self.num_scales, h, w, self.num_scales * c)


class HRSAMBackbone(nn.Module):
    def __init__(self, config):
        super().__init__()
        cfg = config
        dim = cfg.embed_dim
        self.config = cfg
        self.patch_size = cfg.patch_size
        self.window_size = cfg.window_size
        self.out_indices = tuple(cfg.out_indices)
        self.downsample_sizes = tuple(cfg.downsample_sizes)
        self.multi_scale = bool(self.downsample_sizes)
        num_scales = 1 + len(self.downsample_sizes)
        self.pos_grid = cfg.img_size // cfg.patch_size

        self.patch_embed = PatchEmbed(cfg.patch_size, 3, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_grid ** 2 + 1, dim))
        self.rope = WindowRoPE(
            dim // cfg.num_heads, cfg.window_size,
            ft_seq_len=self.pos_grid, pt_seq_len=self.pos_grid / 2.0,
        )
        drop_rates = torch.linspace(0, cfg.drop_path_rate, cfg.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(dim, cfg.num_heads, cfg.mlp_ratio, drop_rates[i]) for i in range(cfg.depth)
        )

        def ssm_blocks():
            return nn.ModuleList(
                CycleScanSSM(dim, cfg.state_dim, cfg.extend_ratio) for _ in self.out_indices
            )

        if self.multi_scale:
            self.ss_mamba_blocks = ssm_blocks()
            self.ms_mamba_blocks = ssm_blocks()
            self.multi_scale_fusion = nn.ModuleList(
                nn.Sequential(nn.LayerNorm(dim), MergeScales(num_scales)) for _ in self.out_indices
            )
        else:
            self.mamba_blocks = ssm_blocks()
        self.lateral_convs = nn.ModuleList(
            nn.Sequential(
                nn.Linear(num_scales * dim, cfg.final_embed_dim, bias=False),
                nn.LayerNorm(cfg.final_embed_dim),
                ChannelsFirst(),
            )
            for _ in self.out_indices
        )
        out_dim = cfg.final_embed_dim
        self.out_conv = nn.Sequential(
            nn.Conv2d(out_dim, out_dim, 3, padding=1, groups=out_dim, bias=False),
            SwapChannelsLast(),
            nn.LayerNorm(out_dim),
            SwapChannelsLast(),
        )
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def _embed(self, x):
        """Patch-embed every scale and add its resized absolute pos-embed."""
        h, w = x.shape[-2:]
        grid = self.pos_embed[:, 1:].reshape(1, self.pos_grid, self.pos_grid, -1).permute(0, 3, 1, 2)
        tokens, shapes = [], []
        for size in [(h, w)] + [(s, s) for s in self.downsample_sizes]:
            scaled = x if size == (h, w) else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            t = self.patch_embed(scaled)  # (B, Hp, Wp, C)
            hp, wp = t.shape[1:3]
            pos = grid if (hp, wp) == grid.shape[-2:] else F.interpolate(
                grid, size=(hp, wp), mode="bilinear", align_corners=False
            )
            tokens.append((t + pos.permute(0, 2, 3, 1)).flatten(1, 2))
            shapes.append((hp, wp))
        return torch.cat(tokens, dim=1), shapes

    def _window_args(self, shapes, batch, device, shift):
        windows = window_index(shapes, batch, self.window_size, shift, device=device)
        slot_cos, slot_sin = self.rope.slot_tables()
        token_cos = slot_cos[windows.slot][:, None, :]
        token_sin = slot_sin[windows.slot][:, None, :]
        return windows, (token_cos, token_sin, slot_cos[:, None, :], slot_sin[:, None, :])

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) tensor, got shape {tuple(x.shape)}")
        if x.shape[-2] % self.patch_size or x.shape[-1] % self.patch_size:
            raise ValueError(
                f"height and width must be multiples of {self.patch_size}, got {tuple(x.shape[-2:])}"
            )
        batch = x.shape[0]
        tokens, shapes = self._embed(x)
        x = tokens.flatten(0, 1)
        plain = self._window_args(shapes, batch, x.device, 0)
        shifted = self._window_args(shapes, batch, x.device, self.window_size // 2)
        segments = [h * w for h, w in shapes]
        features = []
        for i, block in enumerate(self.blocks):
            k = self.out_indices.index(i) if i in self.out_indices else None
            if k is not None:
                if self.multi_scale:
                    x = self.ss_mamba_blocks[k](x, batch, segments)
                else:
                    x = self.mamba_blocks[k](x, batch)
            x = block(x, *(plain if i % 2 == 0 else shifted))
            if k is not None:
                if self.multi_scale:
                    x = self.ms_mamba_blocks[k](x, batch)
                    features.append(self.multi_scale_fusion[k](self._scale_maps(x, batch, shapes)))
                else:
                    h, w = shapes[0]
                    features.append(x.reshape(batch, h, w, -1))
        out = sum(lateral(f) for lateral, f in zip(self.lateral_convs, features))
        return self.out_conv(out)

    @staticmethod
    def _scale_maps(x, batch, shapes):
        """Split the scales, resize coarser ones to the first grid, stack them scale-major."""
        parts = x.reshape(batch, -1, x.shape[-1]).split([h * w for h, w in shapes], dim=1)
        h0, w0 = shapes[0]
        maps = [parts[0].reshape(batch, h0, w0, -1)]
        for part, (h, w) in zip(parts[1:], shapes[1:]):
            m = part.reshape(batch, h, w, -1).permute(0, 3, 1, 2)
            m = F.interpolate(m, size=(h0, w0), mode="bilinear", align_corners=False)
            maps.append(m.permute(0, 2, 3, 1))
        return torch.cat(maps, dim=0)
