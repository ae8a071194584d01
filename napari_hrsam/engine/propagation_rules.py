"""When slice-to-slice propagation must stop, and what it may prompt the next slice with.

A mask carried from slice to slice drifts: every slice's answer is the next slice's prompt, so a
small leak compounds (the mask grows 1.4-1.7x per slice into the tissue around a structure and
never trips a rule that compares only neighbouring slices). The rules here therefore compare each
new mask with the *seed* (the slice the user segmented), not only with the previous slice:

- ``STOP_EMPTY``: the model found nothing.
- ``STOP_IOU``: the model's own predicted IoU fell below ``min_iou``.
- ``STOP_GROWTH``: the area passed ``max_growth`` times the seed's.
- ``STOP_INTENSITY``: more than ``max_foreign`` of the new mask's pixels lie outside the seed's
  intensity range (its ``INTENSITY_QUANTILES``, widened by ``INTENSITY_MARGIN`` of the contrast
  window): the mask has spread into other tissue.
- ``STOP_DRIFT``: the new mask overlaps the previous slice's by less than ``min_agreement`` (IoU):
  the mask wandered off the structure (off by default).
- ``STOP_AREA``: the area changed more than ``max_area_change`` times from the previous slice
  (off by default; the rule of earlier releases).

The next slice is prompted with a positive click at the deepest point of each piece of the previous
mask (at most ``MAX_PIECES``, each at least ``MIN_PIECE_SHARE`` of the largest), so an object in
several pieces propagates as several pieces. And the next slice's mask may grow past the previous slice's only by ``max_step`` of its
equivalent radius (at least ``MIN_STEP_PIXELS``), keeping the connected pieces that touch the
previous mask: a structure's cross-section changes gradually, a leak does not.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import disk

from .state import POSITIVE, Prompts, SparseMask

STOP_RANGE = "range end"
STOP_EMPTY = "empty mask"
STOP_IOU = "low predicted IoU"
STOP_GROWTH = "grew past the seed"
STOP_INTENSITY = "spread into other intensities"
STOP_DRIFT = "left the previous slice's mask"
STOP_AREA = "area change"
STOP_USER = "user-prompted slice"
STOP_CANCEL = "cancelled"

BOX_GROWTH = 0.1  # fraction of the box size added on each side for the next slice (use_box)
INTENSITY_QUANTILES = (0.05, 0.95)
INTENSITY_MARGIN = 0.05  # of the contrast window, added on each side of the seed's range
MIN_STEP_PIXELS = 2
MAX_PIECES = 4
MIN_PIECE_SHARE = 0.1


@dataclass(frozen=True)
class PropagationRules:
    """The stop rules and prompt of a propagation (see the module docstring).

    ``min_iou`` in [0, 1]; ``max_growth`` > 1 or None (off); ``max_foreign`` in (0, 1] or None;
    ``min_agreement`` in (0, 1] or None; ``max_area_change`` > 1 or None; ``max_step`` > 0 or None (the mask may grow freely);
    ``use_box``: also prompt with the previous mask's box, grown by ``BOX_GROWTH`` (it cannot
    grow without bound: the previous mask is held within a step of its own previous mask and
    to twice the seed's area).
    """

    min_iou: float = 0.5
    max_growth: float | None = 2.0
    max_foreign: float | None = 0.5
    min_agreement: float | None = None
    max_area_change: float | None = None
    max_step: float | None = 0.25
    use_box: bool = True

    def __post_init__(self):
        if not 0 <= self.min_iou <= 1:
            raise ValueError(f"min_iou must lie in [0, 1], got {self.min_iou}")
        for name in ("max_growth", "max_area_change"):
            value = getattr(self, name)
            if value is not None and not value > 1:
                raise ValueError(f"{name} must be > 1 (or None: off), got {value}")
        if self.max_foreign is not None and not 0 < self.max_foreign <= 1:
            raise ValueError(f"max_foreign must lie in (0, 1] (or None: off), got {self.max_foreign}")
        if self.min_agreement is not None and not 0 < self.min_agreement <= 1:
            raise ValueError(f"min_agreement must lie in (0, 1] (or None: off), got {self.min_agreement}")
        if self.max_step is not None and not self.max_step > 0:
            raise ValueError(f"max_step must be > 0 (or None: off), got {self.max_step}")


@dataclass(frozen=True)
class SeedStats:
    """What the seed slice's mask looked like: its area and intensity range (0..1 of the
    contrast window)."""

    area: int
    low: float
    high: float

    @classmethod
    def of(cls, mask: SparseMask, intensities: np.ndarray) -> "SeedStats":
        """``intensities``: the mask's bounding box of the slice, scaled to 0..1."""
        inside = intensities[mask.crop]
        low, high = np.quantile(inside, INTENSITY_QUANTILES) if inside.size else (0.0, 1.0)
        return cls(mask.area, float(low) - INTENSITY_MARGIN, float(high) + INTENSITY_MARGIN)

    def foreign_share(self, mask: SparseMask, intensities: np.ndarray) -> float:
        """Share of ``mask``'s pixels whose intensity lies outside the seed's range."""
        inside = intensities[mask.crop]
        if inside.size == 0:
            return 0.0
        return float(np.mean((inside < self.low) | (inside > self.high)))


def scaled_intensities(data: np.ndarray, limits) -> np.ndarray:
    """(rows, cols[, channels]) slice data -> (rows, cols) float32 in 0..1 of the contrast
    window (the mean over channels)."""
    channels = data[..., None] if data.ndim == 2 else data
    scaled = [(channels[..., c].astype(np.float32) - lo) / max(hi - lo, 1e-6)
              for c, (lo, hi) in enumerate(limits[:channels.shape[-1]])]
    return np.clip(np.mean(scaled, axis=0), 0.0, 1.0)


def stop_reason(mask: SparseMask, iou: float, previous: SparseMask, seed: SeedStats,
                foreign: float, rules: PropagationRules) -> str | None:
    """Why the new slice's (already constrained) ``mask`` ends the propagation, or None."""
    if mask.empty:
        return STOP_EMPTY
    if iou < rules.min_iou:
        return STOP_IOU
    if rules.max_growth is not None and mask.area > rules.max_growth * max(seed.area, 1):
        return STOP_GROWTH
    if rules.max_foreign is not None and foreign > rules.max_foreign:
        return STOP_INTENSITY
    if rules.min_agreement is not None and overlap_iou(mask, previous) < rules.min_agreement:
        return STOP_DRIFT
    if rules.max_area_change is not None:
        ratio = mask.area / max(previous.area, 1)
        if ratio > rules.max_area_change or ratio < 1 / rules.max_area_change:
            return STOP_AREA
    return None


def deepest_point(mask: SparseMask) -> tuple[float, float]:
    """(row, col) inside ``mask`` farthest from its boundary."""
    distance = ndimage.distance_transform_edt(np.pad(mask.crop, 1))
    r, c = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return float(mask.offset[0] + r - 1), float(mask.offset[1] + c - 1)


def piece_points(mask: SparseMask) -> tuple[tuple[float, float], ...]:
    """The deepest point of each sizeable piece of ``mask``, largest piece first."""
    pieces, count = ndimage.label(mask.crop)
    if count <= 1:
        return (deepest_point(mask),)
    sizes = np.bincount(pieces.ravel())[1:]
    order = [int(i) for i in np.argsort(-sizes) if sizes[i] >= MIN_PIECE_SHARE * sizes.max()]
    points = []
    for index in order[:MAX_PIECES]:
        piece = SparseMask.from_dense(pieces == index + 1, offset=mask.offset, shape=mask.shape)
        points.append(deepest_point(piece))
    return tuple(points)


def overlap_iou(a: SparseMask, b: SparseMask) -> float:
    """IoU of two masks of one slice (their bounding boxes only)."""
    if a.empty or b.empty:
        return 0.0
    shared = a.shared(b)
    return shared / (a.area + b.area - shared)


def grown_box(mask: SparseMask) -> tuple[float, float, float, float]:
    """The mask's box (row0, col0, row1, col1 inclusive pixels) enlarged by BOX_GROWTH,
    clipped to the slice."""
    r0, c0, r1, c1 = mask.bbox
    dr, dc = BOX_GROWTH * (r1 - r0) + 1, BOX_GROWTH * (c1 - c0) + 1
    rows, cols = mask.shape
    return (max(0.0, r0 - dr), max(0.0, c0 - dc),
            min(rows - 1.0, r1 - 1 + dr), min(cols - 1.0, c1 - 1 + dc))


def next_prompts(previous: SparseMask, rules: PropagationRules) -> Prompts:
    """A positive click at the deepest point of each piece of the previous mask (and its
    grown box)."""
    points = piece_points(previous)
    return Prompts(points=points, labels=(POSITIVE,) * len(points),
                   box=grown_box(previous) if rules.use_box else None)


def step_radius(previous: SparseMask, rules: PropagationRules) -> int | None:
    """How far (pixels) the next mask may reach past ``previous``; None: unbounded."""
    if rules.max_step is None:
        return None
    radius = np.sqrt(previous.area / np.pi)
    return max(MIN_STEP_PIXELS, int(np.ceil(rules.max_step * radius)))


def constrain(mask: SparseMask, previous: SparseMask, radius: int | None) -> SparseMask:
    """``mask`` within ``radius`` pixels of ``previous``, keeping only the connected pieces
    that overlap ``previous``. Works on the union of both bounding boxes only."""
    if radius is None or mask.empty or previous.empty:
        return mask
    rows, cols = mask.shape
    a, b = mask.bbox, previous.bbox
    top, left = max(min(a[0], b[0] - radius), 0), max(min(a[1], b[1] - radius), 0)
    bottom, right = min(max(a[2], b[2] + radius), rows), min(max(a[3], b[3] + radius), cols)
    window = (slice(top, bottom), slice(left, right))
    new, old = _placed(mask, window), _placed(previous, window)
    reach = ndimage.binary_dilation(old, disk(radius))
    new &= reach
    pieces, count = ndimage.label(new)
    if count > 1:
        touching = np.unique(pieces[old & new])
        new = np.isin(pieces, touching[touching > 0])
    return SparseMask.from_dense(new, offset=(top, left), shape=mask.shape)


def _placed(mask: SparseMask, window: tuple[slice, slice]) -> np.ndarray:
    out = np.zeros((window[0].stop - window[0].start, window[1].stop - window[1].start), bool)
    if mask.empty:
        return out
    r0, c0, r1, c1 = mask.bbox
    rs, cs = max(r0, window[0].start), max(c0, window[1].start)
    re, ce = min(r1, window[0].stop), min(c1, window[1].stop)
    if rs < re and cs < ce:
        out[rs - window[0].start:re - window[0].start, cs - window[1].start:ce - window[1].start] = \
            mask.crop[rs - r0:re - r0, cs - c0:ce - c0]
    return out
