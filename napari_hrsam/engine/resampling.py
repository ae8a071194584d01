"""Between the model's grid and slice pixels: masks pasted back into a slice, low-res logits
read at slice pixels, and logits moved from one window to another (zoom-in).

The model sees a window of a slice (``windows``) resized into its square canvas; its low-res
logits (SAM's layout: 1/4 of the canvas, the image in the top-left corner) live on that canvas.
Every map here works on bounding boxes, so a small object in a huge window costs little memory.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation

from hrsam_model.pixels import resized_shape

from .state import Region, SparseMask

OUTSIDE_LOGIT = -20.0  # where a window's previous mask is unknown: surely background


def paste(mask: np.ndarray, region: Region, shape: tuple[int, int]) -> SparseMask:
    """A mask on the predictor's grid (region.size) as a SparseMask on the slice.

    Upsampling (nearest) touches only the mask's bounding box."""
    top, left = region.box[:2]
    if mask.shape == region.shape:
        return SparseMask.from_dense(mask, offset=(top, left), shape=shape)
    small = SparseMask.from_dense(mask)
    if small.empty:
        return SparseMask.from_dense(np.zeros((0, 0), bool), shape=shape)
    (h, w), (oh, ow) = region.shape, mask.shape
    src_rows, src_cols = _nearest(np.arange(h), h, oh), _nearest(np.arange(w), w, ow)
    r0, c0, r1, c1 = small.bbox
    rows = np.flatnonzero((src_rows >= r0) & (src_rows < r1))
    cols = np.flatnonzero((src_cols >= c0) & (src_cols < c1))
    crop = mask[src_rows[rows][:, None], src_cols[cols][None, :]]
    return SparseMask.from_dense(crop, offset=(top + rows[0], left + cols[0]), shape=shape)


def paste_logits(logits: np.ndarray, coarse: np.ndarray, region: Region,
                 shape: tuple[int, int], canvas: int, resized: tuple[int, int]) -> SparseMask:
    """Like ``paste`` for a shrunk window, but thresholds the low-res logits bilinearly
    interpolated straight to slice pixels (smooth edges instead of blocks), only inside the
    coarse mask's bounding box (plus a margin) and next to the coarse mask."""
    small = SparseMask.from_dense(coarse)
    if small.empty:
        return SparseMask.from_dense(np.zeros((0, 0), bool), shape=shape)
    (h, w), (oh, ow) = region.shape, coarse.shape
    low = logits.reshape(logits.shape[-2:])
    r0, c0, r1, c1 = small.bbox
    rows = _window(r0, r1, oh, h)
    cols = _window(c0, c1, ow, w)
    by_rows = _bilinear(rows, h, resized[0], canvas, low.shape[0])
    by_cols = _bilinear(cols, w, resized[1], canvas, low.shape[1])
    mask = (by_rows @ low @ by_cols.T) > 0
    # the coarse mask grown by one pixel, around its bounding box only (the window reaches one
    # coarse pixel past it)
    top_c, left_c = max(r0 - 2, 0), max(c0 - 2, 0)
    near = binary_dilation(coarse[top_c:r1 + 2, left_c:c1 + 2], structure=np.ones((3, 3), bool))
    src_rows, src_cols = _nearest(rows, h, oh) - top_c, _nearest(cols, w, ow) - left_c
    mask &= near[src_rows[:, None], src_cols[None, :]]
    top, left = region.box[:2]
    return SparseMask.from_dense(mask, offset=(top + rows[0], left + cols[0]), shape=shape)


def logits_in_window(logits: np.ndarray, region: Region, shape: tuple[int, int], canvas: int,
                     resized: tuple[int, int]) -> SparseMask:
    """The mask of a window's low-res logits (the whole canvas/4 grid) at slice pixels:
    bilinearly interpolated and thresholded only in the bounding box of the positive cells that
    show the window (plus one cell), so a small object costs little."""
    low = np.asarray(logits, np.float32).reshape(np.shape(logits)[-2:])
    cells = (-(-resized[0] // 4), -(-resized[1] // 4))
    positive = low[:cells[0], :cells[1]] > 0
    if not positive.any():
        return SparseMask.from_dense(np.zeros((0, 0), bool), shape=shape)
    (r0, r1), (c0, c1) = (np.flatnonzero(positive.any(axis=a))[[0, -1]] for a in (1, 0))
    (h, w), (oh, ow) = region.shape, resized
    rows = _window(r0 * 4, (r1 + 1) * 4, oh, h)
    cols = _window(c0 * 4, (c1 + 1) * 4, ow, w)
    mask = (_bilinear(rows, h, oh, canvas, low.shape[0]) @ low
            @ _bilinear(cols, w, ow, canvas, low.shape[1]).T) > 0
    top, left = region.box[:2]
    return SparseMask.from_dense(mask, offset=(top + rows[0], left + cols[0]), shape=shape)


def mask_logits(mask: SparseMask, region: Region, canvas: int, inside: float = 8.0) -> np.ndarray:
    """A slice mask as low-res logits (1, canvas/4, canvas/4) for the window ``region``: each
    cell that shows the window takes the mask's value at its centre (``inside`` or
    OUTSIDE_LOGIT), so a committed object can be the mask prompt of the next click."""
    side = canvas // 4
    resized = resized_shape(*region.size, canvas)
    logits = np.full((side, side), OUTSIDE_LOGIT, np.float32)
    cells = (-(-resized[0] // 4), -(-resized[1] // 4))
    (h, w) = region.shape
    rows = np.minimum(((np.arange(cells[0]) * 4 + 2) * h / resized[0]).astype(np.intp), h - 1) + region.box[0]
    cols = np.minimum(((np.arange(cells[1]) * 4 + 2) * w / resized[1]).astype(np.intp), w - 1) + region.box[1]
    r0, c0, r1, c1 = mask.bbox
    inside_rows, inside_cols = (rows >= r0) & (rows < r1), (cols >= c0) & (cols < c1)
    if not mask.empty and inside_rows.any() and inside_cols.any():
        held = mask.crop[rows[inside_rows] - r0][:, cols[inside_cols] - c0]
        block = logits[:cells[0], :cells[1]]
        block[np.ix_(inside_rows, inside_cols)] = np.where(held, inside, OUTSIDE_LOGIT)
    return logits[None]


def move_logits(logits: np.ndarray, old_box, old_size, new_box, new_size, canvas: int) -> np.ndarray:
    """Low-res logits of the window ``old_box`` (row0, col0, row1, col1 in slice pixels, handed to
    the predictor resized to ``old_size``) resampled bilinearly onto the low-res grid of
    ``new_box`` / ``new_size``. Cells that the old window did not see, and the canvas padding,
    get OUTSIDE_LOGIT."""
    low = np.asarray(logits, np.float32).reshape(np.shape(logits)[-2:])
    side = canvas // 4
    old_resized, new_resized = resized_shape(*old_size, canvas), resized_shape(*new_size, canvas)
    cells = np.arange(side)
    by_axis, seen = [], []
    for axis in (0, 1):
        old_len, new_len = old_box[axis + 2] - old_box[axis], new_box[axis + 2] - new_box[axis]
        # new low-res cell centre -> new canvas -> slice pixel -> old canvas -> old low-res cell
        on_canvas = (cells + 0.5) * 4 - 0.5
        on_image = (on_canvas + 0.5) * new_len / new_resized[axis] - 0.5 + new_box[axis]
        on_old = (on_image - old_box[axis] + 0.5) * old_resized[axis] / old_len / 4 - 0.5
        seen.append((on_canvas < new_resized[axis]) & (on_image >= old_box[axis] - 0.5)
                    & (on_image < old_box[axis + 2] - 0.5))
        by_axis.append(bilinear_matrix(on_old, low.shape[axis]))
    moved = by_axis[0] @ low @ by_axis[1].T
    moved[~(seen[0][:, None] & seen[1][None, :])] = OUTSIDE_LOGIT
    return moved[None].astype(np.float32)


def bilinear_matrix(positions: np.ndarray, size: int) -> np.ndarray:
    """(len(positions), size) matrix that samples a grid of ``size`` cells linearly at
    ``positions`` (cell units, clamped to the grid): rows of weights for one axis of a
    separable resize."""
    positions = np.clip(positions, 0, size - 1)
    below = np.floor(positions).astype(np.intp)
    above = np.minimum(below + 1, size - 1)
    weight = (positions - below).astype(np.float32)
    matrix = np.zeros((positions.size, size), np.float32)
    matrix[np.arange(positions.size), below] += 1 - weight
    matrix[np.arange(positions.size), above] += weight
    return matrix


def _nearest(index: np.ndarray, full: int, small: int) -> np.ndarray:
    """Index on a grid of ``small`` pixels whose pixel holds each full-grid pixel centre."""
    return np.minimum(((index + 0.5) * small / full).astype(np.intp), small - 1)


def _window(start: int, stop: int, small: int, full: int) -> np.ndarray:
    """Full-resolution indices covering coarse pixels start..stop plus one on each side."""
    lo = max(0, int(np.floor((start - 1) * full / small)))
    hi = min(full, int(np.ceil((stop + 1) * full / small)))
    return np.arange(lo, hi)


def _bilinear(index: np.ndarray, full: int, resized: int, canvas: int, low: int) -> np.ndarray:
    """Matrix (len(index), low) interpolating low-res logits at full-res pixel centres:
    full pixel -> resized image pixel -> model canvas -> low-res grid (half-pixel centres,
    like torch's align_corners=False)."""
    on_resized = (index + 0.5) * resized / full - 0.5
    return bilinear_matrix((on_resized + 0.5) * low / canvas - 0.5, low)
