"""LiteMedSAM's TinyViT image encoder, the distillation teacher.

Written from the layout of the state dict in ``lite_medsam.pth`` (keys under ``image_encoder.``):
embed dims 64/128/160/320, depths 2/2/6/2, heads 2/4/5/10, windows 7/7/14/7. LiteMedSAM changed
MobileSAM's TinyViT so that a 256 px input gives a 64x64 embedding: the patch embedding is two
1x1 convolutions (no stride), the first two stages halve the grid, the last merge keeps it.

Teacher preprocessing (LiteMedSAM's own): resize the long side to 256 (bilinear), min-max
normalise the whole image to [0, 1], pad bottom/right with 0 to 256x256, 3 channels (RGB).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hrsam_model.prompt_encoder import LayerNorm2d  # same channel LayerNorm as SAM's

TEACHER_SIZE = 256
EMBED_DIMS = (64, 128, 160, 320)
DEPTHS = (2, 2, 6, 2)
NUM_HEADS = (2, 4, 5, 10)
WINDOWS = (7, 7, 14, 7)


class ConvBN(nn.Sequential):
    """Conv without bias followed by BatchNorm (keys ``c.*`` and ``bn.*``)."""

    def __init__(self, cin, cout, kernel=1, stride=1, groups=1):
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(cout))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand x4, depthwise 3x3, 1x1 project, GELU after the sum."""

    def __init__(self, dim, expand=4):
        super().__init__()
        hidden = dim * expand
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim)

    def forward(self, x):
        y = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return F.gelu(self.conv3(y) + x)


class PatchMerging(nn.Module):
    """1x1 conv, depthwise 3x3 (stride 2, or 1 into the last 320-wide stage), 1x1 conv."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = ConvBN(cin, cout)
        self.conv2 = ConvBN(cout, cout, 3, stride=stride, groups=cout)
        self.conv3 = ConvBN(cout, cout)

    def forward(self, x):
        return self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))


def _relative_offset_index(window: int) -> tuple[torch.Tensor, int]:
    """Index of the learned bias for each (query, key) pair: one bias per distinct |dy|, |dx|."""
    points = list(itertools.product(range(window), range(window)))
    offsets: dict[tuple[int, int], int] = {}
    idxs = []
    for p1 in points:
        for p2 in points:
            off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            idxs.append(offsets.setdefault(off, len(offsets)))
    n = len(points)
    return torch.tensor(idxs, dtype=torch.long).view(n, n), len(offsets)


class Attention(nn.Module):
    def __init__(self, dim, num_heads, window):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        idx, n_offsets = _relative_offset_index(window)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, n_offsets))
        self.register_buffer("bias_index", idx, persistent=False)

    def forward(self, x):  # (B, N, C)
        b, n, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.num_heads, 3 * self.head_dim)
        # Per head the features are laid out q|k|v (TinyViT splits after the head axis).
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=-1)
        bias = self.attention_biases[:, self.bias_index].to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class TinyViTBlock(nn.Module):
    """Windowed attention (zero-padded windows), depthwise 3x3 conv, MLP; residuals as TinyViT."""

    def __init__(self, dim, num_heads, window):
        super().__init__()
        self.window = window
        self.attn = Attention(dim, num_heads, window)
        self.local_conv = ConvBN(dim, dim, 3, groups=dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x):  # (B, C, H, W)
        b, c, h, w = x.shape
        ws = self.window
        t = x.permute(0, 2, 3, 1)
        pad_b, pad_r = (-h) % ws, (-w) % ws
        if pad_b or pad_r:
            t = F.pad(t, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = h + pad_b, w + pad_r
        t = t.reshape(b, ph // ws, ws, pw // ws, ws, c).transpose(2, 3).reshape(-1, ws * ws, c)
        t = self.attn(t)
        t = t.view(b, ph // ws, pw // ws, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)
        x = x + t[:, :h, :w].permute(0, 3, 1, 2)
        x = self.local_conv(x)
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.mlp(tokens)
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


class Stage(nn.Module):
    def __init__(self, blocks: list[nn.Module], downsample: nn.Module | None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    def __init__(self, cin, dim):
        super().__init__()
        self.seq = nn.Sequential(ConvBN(cin, dim // 2), nn.GELU(), ConvBN(dim // 2, dim))

    def forward(self, x):
        return self.seq(x)


class TinyViTTeacher(nn.Module):
    """(B, 3, 256, 256) in [0, 1] -> (B, 256, 64, 64)."""

    def __init__(self):
        super().__init__()
        self.patch_embed = PatchEmbed(3, EMBED_DIMS[0])
        stages = []
        for i, dim in enumerate(EMBED_DIMS):
            if i == 0:
                blocks = [MBConv(dim) for _ in range(DEPTHS[i])]
            else:
                blocks = [TinyViTBlock(dim, NUM_HEADS[i], WINDOWS[i]) for _ in range(DEPTHS[i])]
            down = None
            if i < len(EMBED_DIMS) - 1:
                out = EMBED_DIMS[i + 1]
                down = PatchMerging(dim, out, stride=1 if i == len(EMBED_DIMS) - 2 else 2)
            stages.append(Stage(blocks, down))
        self.layers = nn.ModuleList(stages)
        self.neck = nn.Sequential(
            nn.Conv2d(EMBED_DIMS[-1], 256, 1, bias=False),
            LayerNorm2d(256),
            nn.Conv2d(256, 256, 3, padding=1, bias=False),
            LayerNorm2d(256),
        )

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)


def load_teacher(path: str | Path) -> TinyViTTeacher:
    """Build the teacher and load ``image_encoder.*`` from a LiteMedSAM state dict (strict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: fetch it with `python -m hrsam_model.training.fetch_data --out DIR`"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    prefix = "image_encoder."
    enc = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not enc:
        raise ValueError(f"{path} has no '{prefix}*' keys: is it LiteMedSAM's lite_medsam.pth?")
    model = TinyViTTeacher()
    model.load_state_dict(enc, strict=True)
    return model.eval().requires_grad_(False)


def teacher_input(image_rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float RGB (any range) -> (B, 3, 256, 256) LiteMedSAM input.

    Long side to 256 (bilinear, antialiased), per-image min-max to [0, 1], pad bottom/right with 0.
    """
    b, _, h, w = image_rgb.shape
    scale = TEACHER_SIZE / max(h, w)
    nh, nw = max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))
    x = F.interpolate(image_rgb.float(), size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    x = (x - lo) / (hi - lo).clamp_min(1e-8)
    return F.pad(x, (0, TEACHER_SIZE - nw, 0, TEACHER_SIZE - nh))


def teacher_input_np(image_rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 array -> (1, 3, 256, 256) teacher input."""
    t = torch.from_numpy(np.ascontiguousarray(image_rgb, dtype=np.float32)).permute(2, 0, 1)[None]
    return teacher_input(t)
