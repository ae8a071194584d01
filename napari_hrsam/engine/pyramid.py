"""Multiscale images (an OME-Zarr pyramid, a napari multiscale layer): the model's input is read
from the coarsest level that still holds at least the pixels the model will be given, so a
whole 8192 px slice costs a 1024 px read, not a 64-megapixel one. Everything else (labels, masks,
prompts, windows) stays in full-resolution pixels: the masks are pasted at full resolution from
the decoder's logits, as for any window that was shrunk for the model.

A level serves a slice only when it downsamples the slice's two displayed axes alone, by whole
factors (to 1%: odd sizes halve with rounding) (a level that also thins the other axes would mix neighbouring slices)."""
from __future__ import annotations

from collections.abc import Sequence


def checked_levels(levels: Sequence) -> list:
    """The pyramid's levels, full resolution first; ValueError when they do not shrink."""
    levels = list(levels)
    if not levels:
        raise ValueError("a multiscale image needs at least one level")
    base = tuple(levels[0].shape)
    for level in levels[1:]:
        shape = tuple(level.shape)
        if len(shape) != len(base) or any(n > b for n, b in zip(shape, base)):
            raise ValueError(f"pyramid level of shape {shape} is not a downsampling of {base}")
    return levels


def pick_level(shapes: Sequence[tuple[int, ...]], axes: tuple[int, int], box, size) -> tuple[int, tuple[int, int]]:
    """(level index, (row factor, col factor)) of the coarsest level whose read of ``box`` (full
    resolution (row0, col0, row1, col1); rows along image axis ``axes[0]``, cols along ``axes[1]``)
    still has at least ``size`` (rows, cols) pixels, and that leaves every other axis whole."""
    base = shapes[0]
    rows, cols = box[2] - box[0], box[3] - box[1]
    best = (0, (1, 1))
    for index, shape in enumerate(shapes[1:], start=1):
        if any(shape[a] != base[a] for a in range(len(base)) if a not in axes):
            continue
        factors = tuple(base[a] / shape[a] for a in axes)
        if any(abs(f - round(f)) > 0.01 * f for f in factors):  # 4097 -> 2048 is a factor of 2
            continue
        fr, fc = (int(round(f)) for f in factors)
        if rows // fr >= size[0] and cols // fc >= size[1] and fr * fc > best[1][0] * best[1][1]:
            best = (index, (fr, fc))
    return best


def scaled_box(box, factors: tuple[int, int]) -> tuple[int, int, int, int]:
    """A full-resolution box in the pixels of a level downsampled by ``factors``."""
    fr, fc = factors
    return box[0] // fr, box[1] // fc, max(box[0] // fr + 1, -(-box[2] // fr)), max(box[1] // fc + 1, -(-box[3] // fc))
