"""Checks of user prompts on a slice: a clear ValueError for bad input, else clean floats.

Coordinates are (row, col) pixels of a slice of ``shape`` (rows, cols); napari's pixel i
covers [i - 0.5, i + 0.5), so a point on the slice's outer half-pixel is clamped onto it.
"""
from __future__ import annotations


def checked_point(row_col, shape: tuple[int, int]) -> tuple[float, float]:
    """(row, col) as floats inside the slice; ValueError if malformed or outside it."""
    rows, cols = shape
    try:
        row, col = (float(v) for v in row_col)
    except (TypeError, ValueError):
        raise ValueError(f"a point is (row, col), got {row_col!r}") from None
    if not (-0.5 <= row < rows - 0.5 and -0.5 <= col < cols - 0.5):
        raise ValueError(f"point (row={row}, col={col}) is outside the slice of shape "
                         f"{(rows, cols)}")
    return min(max(row, 0.0), rows - 1.0), min(max(col, 0.0), cols - 1.0)


def checked_box(box, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """(row0, col0, row1, col1) with row0 < row1, col0 < col1 (corners in any order);
    ValueError if malformed, outside the slice or without area."""
    try:
        r0, c0, r1, c1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"a box is (row0, col0, row1, col1), got {box!r}") from None
    (r0, c0), (r1, c1) = (checked_point((min(r0, r1), min(c0, c1)), shape),
                          checked_point((max(r0, r1), max(c0, c1)), shape))
    if r1 <= r0 or c1 <= c0:
        raise ValueError(f"box {tuple(box)} has no area")
    return r0, c0, r1, c1
