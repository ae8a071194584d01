"""2-D rotary position embedding inside 16x16 windows (HRSAM's VisionRotaryEmbedding).

Facts from the official code that matter for weight compatibility:
- frequencies theta**(-(0, 2, .., d-2) / d) with d = head_dim / 2, each used for a pair of dims;
- the first half of a head rotates with the row position, the second half with the column;
- positions are grid indices times pt_seq_len / ft_seq_len = 0.5 (from img_size 224, patch 16);
- a pair (a, b) maps to (a cos + b sin, b cos - a sin), the opposite sign of EVA/LLaMA.
Attention only sees position differences inside a window, so we rotate by the position
within the window; the official absolute (padded-grid) positions give the same scores.
"""
import torch
from torch import nn


class WindowRoPE(nn.Module):
    def __init__(self, head_dim, window_size, ft_seq_len=14, pt_seq_len=7.0, theta=10000.0):
        super().__init__()
        if head_dim % 4:
            raise ValueError(f"RoPE needs a head dim divisible by 4, got {head_dim}")
        dim = head_dim // 2
        self.register_buffer(
            "freqs", theta ** (-torch.arange(0, dim, 2)[: dim // 2].float() / dim)
        )
        self.window_size = window_size
        self.ft_seq_len = ft_seq_len
        self.pt_seq_len = pt_seq_len

    def slot_tables(self):
        """cos and sin, each (ws*ws, head_dim), for every slot of a window (raster order)."""
        ws = self.window_size
        pos = torch.arange(ws, device=self.freqs.device) / self.ft_seq_len * self.pt_seq_len
        angles = torch.outer(pos, self.freqs).repeat_interleave(2, dim=-1)  # (ws, head_dim/2)
        rows = angles[:, None, :].expand(ws, ws, -1)
        cols = angles[None, :, :].expand(ws, ws, -1)
        table = torch.cat([rows, cols], dim=-1).reshape(ws * ws, -1)
        return table.cos(), table.sin()


def rotate_half(x):
    """(a, b) -> (b, -a) on consecutive pairs of the last dim."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack([pairs[..., 1], -pairs[..., 0]], dim=-1).flatten(-2)


def apply_rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin
