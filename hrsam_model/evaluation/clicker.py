"""The standard click simulator (RITM / SimpleClick / HRSAM).

Each click goes to the point farthest from the boundary of the larger error region: false negatives
(gt & ~pred) give a positive click, false positives (pred & ~gt) a negative one. Distances are exact
Euclidean distances to the nearest pixel outside the region, with the image edge counting as
boundary (the error map is padded with a 1-pixel zero border). Ties go to the negative click.
Already-clicked pixels are removed from the error maps so a click is never repeated.

`inner_k=1.0` (evaluation) picks uniformly among the pixels at the maximum distance; `inner_k > 1`
(training, HRSAM uses 1.7) picks a random pixel of the larger region farther than max / inner_k.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage as ndi


class Click(NamedTuple):
    row: int
    col: int
    positive: bool


def boundary_distance(region: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of each region pixel to the nearest non-region pixel or to the
    outside of the image (0 outside the region); an edge pixel of the region has distance 1."""
    region = np.asarray(region, dtype=bool)
    distance = np.zeros(region.shape, dtype=np.float64)
    if not region.any():
        return distance
    # Only the region's bounding box (+1 ring) matters: the ring is all zeros, and any zero outside
    # it is farther than the ring pixel it clamps to, so the crop is exact and much cheaper.
    rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    padded = np.pad(region[r0:r1, c0:c1], 1)
    distance[r0:r1, c0:c1] = ndi.distance_transform_edt(padded)[1:-1, 1:-1]
    return distance


def next_click(
    gt: np.ndarray,
    pred: np.ndarray,
    clicked: np.ndarray | None = None,
    inner_k: float = 1.0,
    rng: np.random.Generator | None = None,
) -> Click | None:
    """The next simulated click for prediction `pred` of ground truth `gt`, or None if `pred` has
    no error outside `clicked`."""
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.ndim != 2 or gt.shape != pred.shape:
        raise ValueError(f"gt and pred must be 2-D masks of one shape, got {gt.shape} and {pred.shape}")
    if inner_k < 1.0:
        raise ValueError(f"inner_k must be >= 1, got {inner_k}")
    rng = rng if rng is not None else np.random.default_rng(42)
    not_clicked = ~clicked if clicked is not None else np.ones_like(gt)
    fn_distance = boundary_distance(gt & ~pred & not_clicked)
    fp_distance = boundary_distance(pred & ~gt & not_clicked)
    fn_max, fp_max = fn_distance.max(), fp_distance.max()
    if fn_max == 0 and fp_max == 0:
        return None
    positive = bool(fn_max > fp_max)
    distance, max_distance = (fn_distance, fn_max) if positive else (fp_distance, fp_max)
    if inner_k == 1.0:
        candidates = distance >= max_distance
    else:
        candidates = distance > max_distance / inner_k
    rows, cols = np.nonzero(candidates)
    pick = int(rng.integers(len(rows)))
    return Click(int(rows[pick]), int(cols[pick]), positive)


class Clicker:
    """Runs the protocol for one ground-truth mask: remembers the clicks and the clicked pixels."""

    def __init__(self, gt: np.ndarray, inner_k: float = 1.0, seed: int = 42):
        self.gt = np.asarray(gt, dtype=bool)
        if self.gt.ndim != 2:
            raise ValueError(f"gt must be a 2-D mask, got shape {self.gt.shape}")
        self.inner_k = inner_k
        self.clicks: list[Click] = []
        self._clicked = np.zeros_like(self.gt)
        self._rng = np.random.default_rng(seed)

    def click(self, pred: np.ndarray | None = None) -> Click | None:
        """Add and return the next click for `pred` (None = empty prediction); None if no error."""
        pred = np.zeros_like(self.gt) if pred is None else pred
        click = next_click(self.gt, pred, self._clicked, self.inner_k, self._rng)
        if click is not None:
            self.clicks.append(click)
            self._clicked[click.row, click.col] = True
        return click

    def points(self) -> np.ndarray:
        """(N, 2) float array of (x, y) = (col, row): the predictor's point convention."""
        return np.array([[c.col, c.row] for c in self.clicks], dtype=np.float64).reshape(-1, 2)

    def labels(self) -> np.ndarray:
        """(N,) int array: 1 for positive clicks, 0 for negative."""
        return np.array([int(c.positive) for c in self.clicks], dtype=np.int64)
