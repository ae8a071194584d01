"""Window layout of HRSAM's plain and shifted window attention.

The official model shifts windows by padding, not by a cyclic roll: each scale's token grid is
padded with P = (ws - shift) % ws rows on top and P columns on the left, then on the bottom/right
up to a multiple of ws, and cut into ws x ws windows (windows in raster order, slots in raster
order inside a window). Slots outside the image hold the layer's learned padding token.

`window_index` builds that layout once per token-grid shape, together with a grouping of the
windows by their number of real slots (interior windows are full; border windows of a grid have a
few sizes) so the PyTorch path can run one dense attention call per group on real queries only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# Query slots per program of the Triton kernel; blocks of padding only are never launched.
QUERY_BLOCK = 64


@dataclass(frozen=True)
class WindowGroup:
    """Windows with the same number of real slots (their padding may sit at different slots)."""

    windows: torch.Tensor  # (G,) window ids
    tokens: torch.Tensor  # (G, R) flat token id of every real slot, slot order
    pad_slots: torch.Tensor  # (G, P) slot positions holding the padding token, ascending


@dataclass(frozen=True)
class WindowIndex:
    """Token <-> window-slot maps for one layout (batch size, grid shapes, window size, shift)."""

    index: torch.Tensor  # (num_windows, ws*ws) flat token id, -1 for a padding slot
    slot: torch.Tensor  # (N,) slot of each real token inside its window
    window: torch.Tensor  # (N,) window of each real token
    groups: tuple[WindowGroup, ...]
    query_blocks: torch.Tensor  # (items, 2) int32: (window, first slot) of blocks with a real query
    hw_shapes: tuple[tuple[int, int], ...]
    batch_size: int
    window_size: int
    shift: int

    @property
    def num_tokens(self) -> int:
        return self.slot.numel()

    @property
    def num_windows(self) -> int:
        return self.index.shape[0]

    @property
    def padded_shapes(self) -> tuple[tuple[int, int], ...]:
        """(PH, PW) of each scale's padded grid, as the official code returns them."""
        return tuple(_padded_shape(h, w, self.window_size, self.shift) for h, w in self.hw_shapes)


def _padded_shape(h: int, w: int, ws: int, shift: int) -> tuple[int, int]:
    top = (ws - shift) % ws
    return -(-(top + h) // ws) * ws, -(-(top + w) // ws) * ws


def _scale_windows(h: int, w: int, ws: int, shift: int, start: int) -> torch.Tensor:
    """(windows, ws*ws) token ids of one scale of one batch item, -1 for padding slots."""
    top = (ws - shift) % ws
    ph, pw = _padded_shape(h, w, ws, shift)
    grid = torch.full((ph, pw), -1, dtype=torch.int64)
    grid[top : top + h, top : top + w] = torch.arange(h * w, dtype=torch.int64).view(h, w) + start
    grid = grid.view(ph // ws, ws, pw // ws, ws).permute(0, 2, 1, 3)
    return grid.reshape(-1, ws * ws)


def _group_windows(index: torch.Tensor) -> tuple[WindowGroup, ...]:
    real = index >= 0
    counts = real.sum(1)
    groups = []
    # Fullest windows first: the big dense group leads, the few border groups follow.
    for r in counts.unique().flip(0).tolist():
        if r == 0:
            continue  # a window of padding only has no query; nothing to compute
        windows = torch.nonzero(counts == r).flatten()
        mask = real[windows]
        tokens = index[windows][mask].view(len(windows), r)
        pad_slots = torch.nonzero(~mask)[:, 1].view(len(windows), -1)
        groups.append(WindowGroup(windows, tokens, pad_slots))
    return tuple(groups)


def _query_blocks(index: torch.Tensor) -> torch.Tensor:
    slots = index.shape[1]
    starts = torch.arange(0, slots, QUERY_BLOCK)
    real = index >= 0
    has_query = torch.stack([real[:, s : s + QUERY_BLOCK].any(1) for s in starts.tolist()], dim=1)
    windows, blocks = torch.nonzero(has_query, as_tuple=True)
    return torch.stack([windows, starts[blocks]], dim=1).to(torch.int32).contiguous()


def window_index(
    hw_shapes,
    batch_size: int,
    window_size: int = 16,
    shift: int = 0,
    device=None,
) -> WindowIndex:
    """Window layout for `batch_size` items, each holding the token grids `hw_shapes` in order.

    Flat token order is batch-major, then scale, then raster inside a scale, as in the trunk.
    Windows never cross scales or batch items.
    """
    shapes = tuple((int(h), int(w)) for h, w in hw_shapes)
    if not shapes or any(h <= 0 or w <= 0 for h, w in shapes):
        raise ValueError(f"hw_shapes must be a non-empty list of positive (H, W) grids, got {hw_shapes!r}")
    if int(batch_size) <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size!r}")
    if not 0 <= shift < window_size:
        raise ValueError(f"shift must lie in [0, window_size={window_size}), got {shift!r}")
    ws, per_item = int(window_size), sum(h * w for h, w in shapes)

    item, start = [], 0
    for h, w in shapes:
        item.append(_scale_windows(h, w, ws, shift, start))
        start += h * w
    item = torch.cat(item)
    offsets = torch.arange(batch_size, dtype=torch.int64).view(-1, 1, 1) * per_item
    index = torch.where(item >= 0, item + offsets, item).reshape(-1, ws * ws)

    n = batch_size * per_item
    real = index >= 0
    slot = torch.empty(n, dtype=torch.int64)
    window = torch.empty(n, dtype=torch.int64)
    slot[index[real]] = torch.nonzero(real)[:, 1]
    window[index[real]] = torch.nonzero(real)[:, 0]
    groups = _group_windows(index)
    query_blocks = _query_blocks(index)
    if device is not None:
        index, slot, window = index.to(device), slot.to(device), window.to(device)
        query_blocks = query_blocks.to(device)
        groups = tuple(
            WindowGroup(*(t.to(device) for t in (g.windows, g.tokens, g.pad_slots)))
            for g in groups
        )
    return WindowIndex(index, slot, window, groups, query_blocks, shapes, int(batch_size), ws, int(shift))
