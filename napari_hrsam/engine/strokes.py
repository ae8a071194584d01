"""Scribbles and lassos as prompts: what a stroke or an outline on a slice tells the model.

A scribble (a polyline) becomes clicks sampled along it, at most ``SCRIBBLE_POINTS`` and at least
``SCRIBBLE_SPACING`` px apart, all on its side; the mask policy holds each of them like a click. Few
and spread: the click-trained model answers a cluster of clicks worse (8 clicks along a 30 px stroke
inside a disk gave IoU 0.72 with hrsam_tiny, 2-3 of them 0.997). A lasso (a closed outline)
becomes a positive click at its deepest interior point with the filled outline as the mask prompt,
or a box around it (docs/corrections.md measures both).
Brush pixels are checked here too (``checked_pixels``). Pure NumPy; ``Session.add_scribble`` /
``set_lasso`` / ``paint`` make them undo steps.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as fill_polygon

SCRIBBLE_POINTS = 4
SCRIBBLE_SPACING = 16.0


def checked_path(path, shape: tuple[int, int], closed: bool) -> np.ndarray:
    """(N, 2) (row, col) float vertices inside the slice; ValueError with the reason otherwise."""
    what = "lasso" if closed else "scribble"
    try:
        vertices = np.asarray(path, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError(f"a {what} is a list of (row, col) vertices, got {path!r}") from None
    if not np.isfinite(vertices).all():
        raise ValueError(f"the {what} has NaN or infinite vertices")
    distinct = np.unique(np.round(vertices, 6), axis=0)
    needed = 3 if closed else 2
    if len(distinct) < needed:
        raise ValueError(f"a {what} needs at least {needed} distinct vertices, got {len(distinct)}")
    rows, cols = shape
    outside = ((vertices[:, 0] < -0.5) | (vertices[:, 0] > rows - 0.5) | (vertices[:, 1] < -0.5)
               | (vertices[:, 1] > cols - 0.5))
    if outside.any():
        row, col = vertices[np.argmax(outside)]
        raise ValueError(f"the {what} leaves the slice of shape {shape} at (row={row:g}, col={col:g})")
    if closed and _self_intersecting(vertices):
        raise ValueError("the lasso crosses itself: draw one closed outline")
    return np.clip(vertices, 0, [rows - 1, cols - 1])


def checked_pixels(pixels, shape: tuple[int, int]) -> np.ndarray:
    """(N, 2) int (row, col) brush pixels, N >= 1, all on the slice; ValueError otherwise."""
    try:
        rows_cols = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError(f"brush pixels are (row, col) pairs, got {pixels!r}") from None
    if not len(rows_cols):
        raise ValueError("the brush stroke has no pixel")
    if not np.isfinite(rows_cols).all():
        raise ValueError("the brush stroke has NaN or infinite pixels")
    rows_cols = np.rint(rows_cols).astype(np.int64)
    off = (rows_cols < 0).any(axis=1) | (rows_cols[:, 0] >= shape[0]) | (rows_cols[:, 1] >= shape[1])
    if off.any():
        row, col = rows_cols[np.argmax(off)]
        raise ValueError(f"the brush stroke leaves the slice of shape {shape} at (row={row}, col={col})")
    return rows_cols


def scribble_points(vertices: np.ndarray) -> list[tuple[float, float]]:
    """Points along the polyline: its ends and evenly spaced ones between."""
    steps = np.linalg.norm(np.diff(vertices, axis=0), axis=1)
    length = float(steps.sum())
    count = int(min(SCRIBBLE_POINTS, max(2, length // SCRIBBLE_SPACING + 1)))
    along = np.concatenate([[0.0], np.cumsum(steps)])
    targets = np.linspace(0.0, length, count)
    rows = np.interp(targets, along, vertices[:, 0])
    cols = np.interp(targets, along, vertices[:, 1])
    return [(float(r), float(c)) for r, c in zip(rows, cols)]


def lasso_prompts(vertices: np.ndarray, shape: tuple[int, int]):
    """(deepest interior point (row, col), box (row0, col0, row1, col1), the filled outline as a
    boolean slice mask) of a closed outline."""
    inside = np.zeros(shape, bool)
    rr, cc = fill_polygon(vertices[:, 0], vertices[:, 1], shape)
    inside[rr, cc] = True
    if not inside.any():
        raise ValueError("the lasso encloses no pixel: draw a larger outline")
    r0, c0 = vertices.min(axis=0)
    r1, c1 = vertices.max(axis=0)
    top, left = int(max(r0 - 1, 0)), int(max(c0 - 1, 0))
    window = inside[top:int(r1) + 2, left:int(c1) + 2]
    depth = ndi.distance_transform_edt(np.pad(window, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    box = (float(r0), float(c0), float(max(r1, r0 + 1)), float(max(c1, c0 + 1)))
    return (float(top + row), float(left + col)), box, inside


def _self_intersecting(vertices: np.ndarray) -> bool:
    """Whether two non-adjacent edges of the closed outline cross."""
    edges = [(vertices[i], vertices[(i + 1) % len(vertices)]) for i in range(len(vertices))]
    count = len(edges)
    for i in range(count):
        for j in range(i + 2, count):
            if i == 0 and j == count - 1:
                continue  # the closing edge meets the first one at a vertex
            if _cross(*edges[i], *edges[j]):
                return True
    return False


def _cross(a, b, c, d) -> bool:
    def side(p, q, r):
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0
