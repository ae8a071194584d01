"""Simulated strokes for the evaluation of scribbles and lassos (the click simulator's siblings).

A scribble goes over the larger error region, as the click simulator's click does: false negatives
(gt & ~pred) give a positive stroke, false positives a negative one. The stroke follows the longest
path along the skeleton of that region's largest connected piece (a user draws along what is
missing, not across it), thinned to vertices about ``SCRIBBLE_VERTEX_SPACING`` px apart. A piece
too small to have a path of two distinct pixels gets no stroke (None): the caller clicks instead.

A lasso is the loose outline a user draws around an object: the ground truth grown by
``LASSO_MARGIN`` of its size (at least 1 px), outlined and simplified to a polygon; where that
polygon would cross itself, ``lasso(gt, hull=True)`` outlines the convex hull of the grown mask.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from scipy import ndimage as ndi

SCRIBBLE_VERTEX_SPACING = 4
LASSO_MARGIN = 0.05  # of the object's bounding-box long side
LASSO_TOLERANCE = 1.5  # px: polygon simplification


def error_region(gt: np.ndarray, pred: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """(the larger error region's largest connected piece, whether it is a false negative)."""
    gt = np.asarray(gt, bool)
    pred = np.zeros_like(gt) if pred is None else np.asarray(pred, bool)
    missing, extra = gt & ~pred, pred & ~gt
    positive = missing.sum() >= extra.sum()
    region = missing if positive else extra
    pieces, count = ndi.label(region)
    if count == 0:
        return region, positive
    sizes = np.bincount(pieces.ravel())[1:]
    return pieces == int(np.argmax(sizes)) + 1, bool(positive)


def scribble(gt: np.ndarray, pred: np.ndarray | None) -> tuple[np.ndarray, bool] | None:
    """((N, 2) (row, col) vertices, positive) of the next simulated stroke, or None when there is
    no error left or its largest piece is too small for a stroke."""
    from skimage.morphology import skeletonize

    region, positive = error_region(gt, pred)
    if not region.any():
        return None
    rows, cols = np.nonzero(region)
    r0, c0 = rows.min(), cols.min()
    crop = region[r0:rows.max() + 1, c0:cols.max() + 1]
    skeleton = skeletonize(crop)
    path = longest_path(skeleton)
    if len(path) < 2:
        return None
    keep = np.unique(np.r_[np.arange(0, len(path), SCRIBBLE_VERTEX_SPACING), len(path) - 1])
    return np.asarray(path, dtype=np.float64)[keep] + (r0, c0), positive


def longest_path(skeleton: np.ndarray) -> list[tuple[int, int]]:
    """An approximately longest 8-connected path on a skeleton: from a pixel farthest (in steps)
    from an arbitrary one to the pixel farthest from it (exact on a tree)."""
    pixels = list(zip(*np.nonzero(skeleton)))
    if not pixels:
        return []
    on = set(pixels)
    far, _ = _farthest(pixels[0], on)
    end, parents = _farthest(far, on)
    path = [end]
    while parents[path[-1]] is not None:
        path.append(parents[path[-1]])
    return path


def _farthest(start, on: set):
    parents = {start: None}
    queue, last = deque([start]), start
    while queue:
        last = queue.popleft()
        r, c = last
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                step = (r + dr, c + dc)
                if step in on and step not in parents:
                    parents[step] = last
                    queue.append(step)
    return last, parents


def lasso(gt: np.ndarray, hull: bool = False) -> np.ndarray:
    """(N, 2) (row, col) vertices of a loose outline around boolean mask ``gt`` (N >= 3); with
    ``hull``, of its convex hull (for an outline that simplification made cross itself)."""
    from skimage.measure import approximate_polygon, find_contours
    from skimage.morphology import convex_hull_image

    gt = np.asarray(gt, bool)
    rows, cols = np.nonzero(gt)
    extent = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    grown = ndi.binary_dilation(gt, iterations=max(1, int(round(LASSO_MARGIN * extent))))
    if hull:
        grown = convex_hull_image(grown)
    contours = find_contours(np.pad(grown, 1).astype(float), 0.5)
    outline = approximate_polygon(max(contours, key=len), LASSO_TOLERANCE)[:-1] - 1
    return np.clip(outline, 0, np.array(gt.shape) - 1)
