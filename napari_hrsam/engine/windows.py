"""Which window of a slice the model sees: the whole slice, a window around the prompts of a huge
slice, or zoom-in's window around the object.

Huge slices: a slice whose long side exceeds ``HUGE_FACTOR`` x the target size would be shrunk so
much that small structures vanish, and a full-size float copy of it costs GBs. Instead the model
sees a window centred on the prompts (the bounding box of the positive points and the box, plus a
margin, at least the target size), shrunk to the target size when bigger; the mask is pasted back
into slice coordinates. Points outside the window are not shown to the model: they cannot change a
mask that lives inside it. The window is kept while new prompts stay well inside it, so the cached
embedding is reused click after click.

Zoom-in (RITM's evaluation option, FocalClick and FocusCut after it): thin or small objects cover
less than one 16 px token when a whole image is shrunk into a 1024 px input, so once the object has
a mask the model sees a window around that mask and the clicks (``hrsam_model.pixels.zoom_box``:
expanded 1.4 times, at least 200 pixels) at the model's input size. The window is kept while it
still holds the clicks and overlaps the new one by IoU >= 0.5, so most clicks reuse its
embedding. At the first click a whole-slice pass finds the object, then the same clicks are
decoded again in the window around that first mask (``SliceEngine.with_closer_look``).
"""
from __future__ import annotations

import numpy as np
from skimage.transform import resize

from hrsam_model.pixels import window_span, zoom_box

from .state import POSITIVE, Prompts, Region

HUGE_FACTOR = 2


def is_huge(shape: tuple[int, int], target_size: int) -> bool:
    return max(shape) > HUGE_FACTOR * target_size


def prompt_extent(prompts: Prompts) -> tuple[float, float, float, float]:
    """(row0, col0, row1, col1) bounding the positive points and the box (all points
    when there is neither): a far negative click must not blow the window up."""
    points = [p for p, label in zip(prompts.points, prompts.labels) if label == POSITIVE]
    if not points and prompts.box is None:
        points = list(prompts.points)
    rows = [p[0] for p in points]
    cols = [p[1] for p in points]
    if prompts.box is not None:
        rows += [prompts.box[0], prompts.box[2]]
        cols += [prompts.box[1], prompts.box[3]]
    return min(rows), min(cols), max(rows), max(cols)


def choose_region(shape: tuple[int, int], prompts: Prompts, target_size: int,
                  previous: Region | None = None) -> Region:
    """The window for ``prompts`` on a slice of ``shape``.

    Normal slices: the whole slice at full size (the predictor resizes it). Huge ones: a
    square of side max(target_size, prompt extent + 2 margins), reusing ``previous`` when
    every prompt lies at least a margin inside it."""
    rows, cols = shape
    if not is_huge(shape, target_size):
        return Region((0, 0, rows, cols), (rows, cols))
    r0, c0, r1, c1 = prompt_extent(prompts)
    extent = max(r1 - r0, c1 - c0)
    margin = max(target_size // 8, int(extent // 4))
    if previous is not None and _inside(previous, (r0, c0, r1, c1), margin, shape):
        return previous
    side = max(target_size, int(np.ceil(extent)) + 2 * margin)
    top, bottom = window_span((r0 + r1) / 2, side, rows)
    left, right = window_span((c0 + c1) / 2, side, cols)
    return Region((top, left, bottom, right), shrunk_size((bottom - top, right - left),
                                                          target_size))


def zoom_region(shape: tuple[int, int], prompts: Prompts, mask_bbox, target_size: int,
                previous: Region | None = None) -> Region:
    """Zoom-in's window around the current mask (``mask_bbox``, end exclusive; None when empty)
    and every click (``zoom_box``), seen at the model's input size; a window as large as the
    slice is the usual whole-slice (or huge-slice) window."""
    box = zoom_box(shape, mask_bbox, prompts.points, previous=None if previous is None else previous.box)
    if box == (0, 0) + tuple(shape):  # a big object: the usual whole-slice window
        return choose_region(shape, prompts, target_size, previous)
    top, left, bottom, right = box
    return Region(box, shrunk_size((bottom - top, right - left), target_size))


def _inside(region: Region, extent, margin: int, shape) -> bool:
    top, left, bottom, right = region.box
    r0, c0, r1, c1 = extent
    # a window side at the slice border needs no margin there
    return ((r0 - top >= margin or top == 0) and (bottom - r1 >= margin or bottom == shape[0])
            and (c0 - left >= margin or left == 0) and (right - c1 >= margin or right == shape[1]))


def shrunk_size(shape: tuple[int, int], target_size: int) -> tuple[int, int]:
    """``shape`` scaled so its long side is at most ``target_size``."""
    scale = min(1.0, target_size / max(shape))
    return tuple(max(1, int(round(n * scale))) for n in shape)


def to_region(region: Region, row: float, col: float) -> tuple[float, float]:
    """Slice (row, col) -> (row, col) in the image handed to the predictor (pixel
    centres map to pixel centres)."""
    (h, w), (oh, ow) = region.shape, region.size
    return ((row - region.box[0] + 0.5) * oh / h - 0.5,
            (col - region.box[1] + 0.5) * ow / w - 0.5)


def shrink(data: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downsample (rows, cols[, channels]) to ``size`` by block means then bilinear
    interpolation; memory stays near the output size (no full-size float copy)."""
    rows, cols = data.shape[:2]
    if (rows, cols) == tuple(size):
        return data
    factor = min(rows // size[0], cols // size[1])
    if factor > 1:
        h, w = rows // factor, cols // factor
        blocks = data[:h * factor, :w * factor].reshape(h, factor, w, factor, *data.shape[2:])
        data = blocks.mean(axis=(1, 3), dtype=np.float32)
    if data.shape[:2] == tuple(size):
        return data.astype(np.float32, copy=False)
    out = resize(data.astype(np.float32, copy=False), tuple(size) + data.shape[2:], order=1,
                 preserve_range=True, anti_aliasing=False)
    return out.astype(np.float32, copy=False)
