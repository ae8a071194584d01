"""Transformer blocks of the HRSAM trunk: window attention with KV-only padding."""
import torch
import torch.nn.functional as F
from torch import nn

from hrsam_kernels import window_attention

from .rope import apply_rope


class DropPath(nn.Module):
    """Stochastic depth. Like the official code (timm on flat tokens) it drops per row."""

    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty(x.shape[0], *([1] * (x.ndim - 1))).bernoulli_(keep)
        return x * mask / keep


class MLP(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head attention inside 16x16 windows of a flat token list.

    Window slots outside the image hold the learned `padding` token (in post-norm
    space, as in the official code). Only its key and value are ever computed: one
    key per slot position (RoPE differs per slot) and one shared value.
    """

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.padding = nn.Parameter(torch.zeros(1, dim))

    def forward(self, x, windows, rope):
        """x: (N, C) normalised tokens; windows: hrsam_kernels.WindowIndex;
        rope: (token_cos, token_sin, slot_cos, slot_sin) tables."""
        token_cos, token_sin, slot_cos, slot_sin = rope
        heads, head_dim = self.num_heads, self.head_dim
        q, k, v = self.qkv(x).view(-1, 3, heads, head_dim).unbind(1)
        q = apply_rope(q, token_cos, token_sin)
        k = apply_rope(k, token_cos, token_sin)
        _, pad_k, pad_v = F.linear(self.padding, self.qkv.weight, self.qkv.bias).view(
            3, heads, head_dim
        )
        pad_k = apply_rope(pad_k.expand(slot_cos.shape[0], heads, head_dim), slot_cos, slot_sin)
        out = window_attention(q, k, v, windows, pad_k.to(k.dtype), pad_v.to(v.dtype), self.scale)
        return self.proj(out.reshape(x.shape[0], -1))


class Block(nn.Module):
    """Pre-norm transformer block: x += attn(norm1 x); x += mlp(norm2 x)."""

    def __init__(self, dim, num_heads, mlp_ratio=4.0, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)  # eps 1e-5: the trained weights assume it
        self.attn = WindowAttention(dim, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x, windows, rope):
        x = x + self.drop_path(self.attn(self.norm1(x), windows, rope))
        return x + self.drop_path(self.mlp(self.norm2(x)))
