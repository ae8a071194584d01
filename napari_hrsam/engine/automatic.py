"""Segment everything on a slice: single-click prompts (the blob centres of each tile, or a
grid), decoded in batches, kept by mask stability, size and contrast, cleaned and de-duplicated
(SAM's automatic mask generation, made to fit a CPU).

Per window of the slice (the whole slice, or overlapping tiles of ``1 / tile_zoom`` of the model's
input size when it is larger, each enlarged to the input size: small objects seen at their native
scale come out as weak, spread masks) the encoder runs once; the window's prompts are decoded
``batch`` at a time. A decoder pass costs tens of milliseconds per prompt on a 2-core CPU, so a
point that lies in a mask already decoded (kept or not: an object found, or background) is not
decoded again. Masks are judged on the low-res logits: stability (how little the mask changes
when the threshold moves by ``stability_offset``), size (above ``max_area`` of the window it is
background) and, if asked, the decoder's IoU estimate (``min_iou``; off by default: hrsam_tiny's
estimate ranks single-click masks poorly, docs/segment-all.md). Only kept masks are drawn at
slice resolution, in their bounding box. Each kept mask keeps the piece that holds its point,
with holes smaller than ``min_area`` filled, and is cut where its outline pinches (two touching
objects taken as one, ``auto_split``). With blob seeds a kept object must stand out on the side the
blobs do (brighter than its surroundings where the window's objects are bright). Objects that touch
a tile's inner edge are left to the neighbouring tile, which sees them whole; greedy non-maximum
suppression by mask overlap then keeps one mask per object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage as ndi

from .auto_seeds import blob_seeds
from .auto_split import split_at_necks
from .propagation_rules import scaled_intensities
from .resampling import OUTSIDE_LOGIT, logits_in_window
from .state import Region, SliceKey, SparseMask

SEEDS = ("grid", "blobs")


@dataclass(frozen=True)
class AutoSettings:
    """points_per_side: grid density per model input (tile); batch: prompts per decoder call;
    min_iou / min_stability: the decoder's IoU estimate and the mask's stability a kept mask
    needs; min_area: smallest object (slice pixels); max_area: share of a window above which a
    mask is background; min_contrast: how far (0..1 of the contrast window) the median intensity
    inside a mask must differ from that of a 3 px ring around it (a piece of flat background does not
    stand out; with blob seeds, on the blobs' side: brighter where they are bright); split_depth: a
    mask is cut in two where its width pinches by more than this share (``auto_split``; 0: never);
    nms_overlap: two masks overlapping more than this (of the smaller one) are one
    object; tile_overlap: share of a tile's side that neighbouring tiles share; tile_zoom: a
    tile's side is the model's input size divided by this (the model sees it enlarged); seeds:
    "blobs" clicks the blob centres of each tile (``auto_seeds``; points_per_side ** 2 at most),
    "grid" a points_per_side x points_per_side grid. The defaults (blobs, 4x) are those that
    found the most objects on the training halves of the nuclei, BBBC007 and scratch-assay sets
    (docs/segment-all.md)."""

    points_per_side: int = 32
    batch: int = 16
    min_iou: float = 0.0
    min_stability: float = 0.3
    stability_offset: float = 0.5
    min_area: int = 12
    max_area: float = 0.2
    min_contrast: float = 0.05
    nms_overlap: float = 0.5
    tile_overlap: float = 0.25
    tile_zoom: float = 4.0
    seeds: str = "blobs"
    split_depth: float = 0.15

    def __post_init__(self):
        if not 1 <= self.points_per_side <= 128 or self.batch < 1:
            raise ValueError("points_per_side must be 1..128 and batch >= 1")
        if not (0 <= self.min_iou <= 1 and 0 <= self.min_stability <= 1 and 0 < self.max_area <= 1
                and 0 < self.nms_overlap <= 1 and 0 <= self.tile_overlap < 1 and self.tile_zoom >= 1
                and 0 <= self.split_depth < 1):
            raise ValueError("thresholds must lie in 0..1 (max_area and nms_overlap above 0)")
        if self.seeds not in SEEDS:
            raise ValueError(f"seeds must be one of {', '.join(SEEDS)}, got {self.seeds!r}")


@dataclass(frozen=True)
class FoundObject:
    mask: SparseMask
    iou: float  # the decoder's estimate
    stability: float
    point: tuple[float, float]  # (row, col) slice pixel of the prompt that found it
    # a part cut from a larger mask (auto_split): the other parts' points, as the negative clicks
    # that would make the model answer with this part alone
    negatives: tuple[tuple[float, float], ...] = ()

    @property
    def score(self) -> float:  # what non-maximum suppression ranks by
        return self.stability


class NoContrastError(ValueError):
    """A slice (window) where every pixel the model sees has one value: nothing to segment."""


class AutoCancelled(Exception):
    """``should_cancel()`` returned True: nothing was found, nothing is written."""


def tile_windows(shape: tuple[int, int], side: int, overlap: float) -> list[Region]:
    """The whole slice when it fits in ``side`` pixels, else tiles of ``side`` pixels that
    overlap by ``overlap`` of their side, covering the slice (the last ones flush with its end)."""
    rows, cols = shape
    if max(shape) <= side:
        return [Region((0, 0, rows, cols), (rows, cols))]
    step = max(1, int(side * (1 - overlap)))

    def starts(length):  # evenly spread, at most ``step`` apart, the last flush with the end
        if length <= side:
            return [0]
        count = -(-(length - side) // step) + 1
        return sorted({int(round(v)) for v in np.linspace(0, length - side, count)})

    return [Region((r, c, min(r + side, rows), min(c + side, cols)),
                   (min(r + side, rows) - r, min(c + side, cols) - c))
            for r in starts(rows) for c in starts(cols)]


def grid_points(region: Region, per_side: int, box=None) -> list[tuple[float, float]]:
    """(row, col) slice pixels: the centres of a per_side x per_side grid over ``region`` (its
    long side; the short side gets the same spacing), inside ``box`` (row0, col0, row1, col1)."""
    top, left, bottom, right = region.box
    spacing = max(bottom - top, right - left) / per_side
    rows = np.arange(top + spacing / 2, bottom, spacing)
    cols = np.arange(left + spacing / 2, right, spacing)
    points = [(float(r), float(c)) for r in rows for c in cols]
    if box is not None:
        r0, c0, r1, c1 = box
        points = [(r, c) for r, c in points if r0 <= r <= r1 and c0 <= c <= c1]
    return points


def slice_windows(shape: tuple[int, int], target_size: int, settings: AutoSettings) -> list[Region]:
    """The windows ``find_objects`` encodes on a slice of ``shape`` for a model of ``target_size``."""
    return tile_windows(shape, int(target_size / settings.tile_zoom), settings.tile_overlap)


def find_objects(engine, key: SliceKey, settings: AutoSettings, box=None,
                 should_cancel: Callable[[], bool] | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 windows: tuple[int, int] | None = None) -> list[FoundObject]:
    """Every object on slice ``key`` (inside ``box`` if given), best score first. A window
    without contrast (a blank corner of a slide) holds no object; NoContrastError (a ValueError)
    when every window is so. AutoCancelled when cancelled.

    ``windows=(first, stop)``: only those of the slice's windows (``slice_windows``), and their
    objects in window order, not yet de-duplicated, blank windows or not: a part of a run split
    across tasks. The whole run's answer is ``suppress_duplicates`` of the parts' objects,
    concatenated in window order, with ``settings.nms_overlap``."""
    shape = engine.layout.slice_shape(key)
    every = slice_windows(shape, engine.target_size, settings)
    chosen = every if windows is None else every[windows[0]:windows[1]]
    if not chosen:
        raise ValueError(f"windows {windows} hold none of the slice's {len(every)} windows")
    limits = engine.limits(key)
    seeds = [_seeds(engine, key, region, settings, box, limits) for region in chosen]
    total, done = sum(len(points or ()) for points, _ in seeds), 0
    found, seen, flat = [], 0, 0
    for region, (points, polarity) in zip(chosen, seeds):
        if points is None:  # outside the box
            continue
        seen += 1
        if not points:  # no blob: a flat window, or one without objects
            flat += engine.no_contrast(key, region, limits)
            continue
        embedding, _ = engine.embedding(key, region)
        if engine.no_contrast(key, region, limits):
            flat, done = flat + 1, done + len(points)
            continue
        for objects, decoded in _window_objects(engine, key, region, embedding, points, settings, limits,
                                                polarity):
            found += objects
            done += decoded
            if progress is not None:
                progress(done, total)
            if should_cancel is not None and should_cancel():
                raise AutoCancelled("segment all was cancelled")
    if windows is not None:
        return found
    if seen and flat == seen:
        raise NoContrastError("no contrast: every pixel the model sees has the same value within the "
                              "contrast limits, so there is nothing to segment")
    return suppress_duplicates(found, settings.nms_overlap)


def _seeds(engine, key, region: Region, settings: AutoSettings, box, limits):
    """(the window's prompts, the side its objects stand out on): its grid and 0 (either side), or
    the blob centres of its pixels and their polarity (``auto_seeds``: +1 bright, -1 dark); the
    prompts are None when the window holds no grid point inside ``box``."""
    grid = grid_points(region, settings.points_per_side, box)
    if settings.seeds == "grid" or not grid:
        return grid or None, 0
    pixels = scaled_intensities(engine.layout.read(key, region.box), limits)
    points, polarity = blob_seeds(pixels, region.box[:2], settings.points_per_side ** 2)
    if box is not None:
        r0, c0, r1, c1 = box
        points = [(r, c) for r, c in points if r0 <= r <= r1 and c0 <= c <= c1]
    return points, polarity


def _window_objects(engine, key, region: Region, embedding, points, settings: AutoSettings, limits,
                    polarity: int):
    """Yields (objects kept, points handled) per batch of one window; ``polarity``: the side kept
    objects must stand out on (+1 brighter, -1 darker than their ring, 0 either)."""
    canvas, resized = embedding.target_size, embedding.resized_shape
    shape = engine.layout.slice_shape(key)
    cells = (-(-resized[0] // 4), -(-resized[1] // 4))
    covered = np.zeros(cells, bool)  # low-res cells of kept masks and of background
    inner = _inner_edges(region, shape)
    queue = list(points)
    while queue:
        batch, queue, skipped = _take_uncovered(queue, covered, region, resized, settings.batch)
        if not batch:
            yield [], skipped
            return
        logits, ious = engine.predict_many(embedding, region, batch)
        kept = []
        for point, full, iou in zip(batch, logits, ious):
            low = full[:cells[0], :cells[1]]
            piece, loose = _clicked_piece(low, _cell(point, region, resized, cells), settings.stability_offset)
            if piece is None:
                continue
            covered |= piece  # this object, or background: its points need no decoding
            area = int(piece.sum())
            if area > settings.max_area * piece.size:
                continue
            stability = int((piece & (low > settings.stability_offset)).sum()) / max(int(loose.sum()), 1)
            if iou < settings.min_iou or stability < settings.min_stability:
                continue
            shown = np.full_like(full, OUTSIDE_LOGIT)  # the clicked piece only
            shown[:cells[0], :cells[1]] = np.where(piece, low, OUTSIDE_LOGIT)
            mask = _cleaned(logits_in_window(shown, region, shape, canvas, resized), point, settings.min_area)
            if mask is None:
                continue
            for part, part_point, negatives in _parts(mask, point, settings):
                if _on_edge(part, inner, region):
                    continue
                contrast = _contrast(engine, key, part, limits, beside=None if part is mask else mask)
                if (abs(contrast) if polarity == 0 else polarity * contrast) < settings.min_contrast:
                    continue
                kept.append(FoundObject(part, float(iou), float(stability), part_point, negatives))
        yield kept, len(batch) + skipped


def _cell(point, region: Region, resized, cells) -> tuple[int, int]:
    """The low-res cell (row, col) that holds slice pixel ``point`` of ``region``."""
    (h, w), (oh, ow) = region.shape, resized
    return (min(int((point[0] - region.box[0] + 0.5) * oh / h / 4), cells[0] - 1),
            min(int((point[1] - region.box[1] + 0.5) * ow / w / 4), cells[1] - 1))


def _clicked_piece(low: np.ndarray, cell, offset: float):
    """(the connected piece of ``low > 0`` that holds ``cell``, the piece of ``low > -offset``
    that holds it) on the low-res grid, or (None, None) when the click's cell is outside."""
    if low[cell] <= 0:
        return None, None
    eight = np.ones((3, 3), bool)
    pieces, _ = ndi.label(low > 0, structure=eight)
    loose, _ = ndi.label(low > -offset, structure=eight)
    return pieces == pieces[cell], loose == loose[cell]


def _take_uncovered(queue, covered, region: Region, resized, count: int):
    """(the next ``count`` points whose low-res cell is not covered, the rest of the queue, how
    many covered points were passed over)."""
    taken, rest, skipped = [], [], 0
    for index, (r, c) in enumerate(queue):
        cell = _cell((r, c), region, resized, covered.shape)
        if len(taken) == count:
            rest = queue[index:]
            break
        if covered[cell]:
            skipped += 1
            continue
        taken.append((r, c))
    return taken, rest, skipped


def _cleaned(mask: SparseMask, point, min_area: int) -> SparseMask | None:
    """The piece of ``mask`` holding ``point`` (else its largest), holes under ``min_area``
    filled; None when nothing of ``min_area`` pixels is left."""
    if mask.empty:
        return None
    pieces, count = ndi.label(mask.crop, structure=np.ones((3, 3), bool))
    r, c = int(round(point[0])) - mask.offset[0], int(round(point[1])) - mask.offset[1]
    inside = 0 <= r < pieces.shape[0] and 0 <= c < pieces.shape[1] and pieces[r, c] > 0
    chosen = pieces[r, c] if inside else 1 + int(np.argmax(ndi.sum(mask.crop, pieces, range(1, count + 1))))
    piece = pieces == chosen
    holes = ndi.binary_fill_holes(piece) & ~piece
    small, n_small = ndi.label(holes)
    if n_small:
        sizes = ndi.sum(holes, small, range(1, n_small + 1))
        piece |= np.isin(small, 1 + np.flatnonzero(sizes < min_area))
    if piece.sum() < min_area:
        return None
    return SparseMask.from_dense(piece, offset=mask.offset, shape=mask.shape)


def _parts(mask: SparseMask, point, settings: AutoSettings):
    """[(part, its point, the other parts' points)]: ``mask`` with ``point`` alone, or the parts
    ``split_at_necks`` cuts it into, each with its widest pixel as its point."""
    if settings.split_depth <= 0:  # never cut: no distance transform to make
        return [(mask, point, ())]
    parts = split_at_necks(mask.crop, settings.split_depth, settings.min_area)
    if len(parts) == 1:
        return [(mask, point, ())]
    (r0, c0), shape = mask.offset, mask.shape
    points = [(float(r + r0), float(c + c0)) for _, (r, c) in parts]
    return [(SparseMask.from_dense(part, offset=mask.offset, shape=shape), points[i],
             tuple(points[:i] + points[i + 1:])) for i, (part, _) in enumerate(parts)]


def _contrast(engine, key, mask: SparseMask, limits, ring: int = 3, beside: SparseMask | None = None) -> float:
    """Median intensity inside ``mask`` - median in a ``ring`` px band around it (outside
    ``beside``, the clump a part was cut from), in 0..1 of the contrast window (the mean over
    channels): positive when the mask is the brighter. Medians: a piece of background that touches
    a bright object keeps the background's median on both sides."""
    r0, c0, r1, c1 = mask.bbox
    rows, cols = mask.shape
    top, left = max(r0 - ring, 0), max(c0 - ring, 0)
    bottom, right = min(r1 + ring, rows), min(c1 + ring, cols)
    data = scaled_intensities(engine.layout.read(key, (top, left, bottom, right)), limits)
    inside = np.zeros(data.shape, bool)
    inside[r0 - top:r1 - top, c0 - left:c1 - left] = mask.crop
    band = ndi.binary_dilation(inside, iterations=ring) & ~inside
    if beside is not None:  # a part cut from a clump: its sibling parts are not its surroundings
        br0, bc0, br1, bc1 = beside.bbox
        ir0, ic0, ir1, ic1 = max(br0, top), max(bc0, left), min(br1, bottom), min(bc1, right)
        if ir0 < ir1 and ic0 < ic1:
            band[ir0 - top:ir1 - top, ic0 - left:ic1 - left] &= ~beside.crop[ir0 - br0:ir1 - br0, ic0 - bc0:ic1 - bc0]
    if not band.any():
        return 1.0
    return float(np.median(data[inside])) - float(np.median(data[band]))


def _inner_edges(region: Region, shape) -> tuple[bool, bool, bool, bool]:
    """Which sides of a tile (top, left, bottom, right) lie inside the slice."""
    top, left, bottom, right = region.box
    return top > 0, left > 0, bottom < shape[0], right < shape[1]


def _on_edge(mask: SparseMask, inner, region: Region) -> bool:
    r0, c0, r1, c1 = mask.bbox
    top, left, bottom, right = region.box
    return ((inner[0] and r0 <= top) or (inner[1] and c0 <= left)
            or (inner[2] and r1 >= bottom) or (inner[3] and c1 >= right))


def suppress_duplicates(found: list[FoundObject], overlap: float) -> list[FoundObject]:
    """Greedy non-maximum suppression, best score first: a mask overlapping a kept one by more
    than ``overlap`` of the smaller of the two is the same object."""
    kept: list[FoundObject] = []
    for candidate in sorted(found, key=lambda f: f.score, reverse=True):
        if all(_shared(candidate.mask, other.mask) <= overlap for other in kept):
            kept.append(candidate)
    return kept


def _shared(a: SparseMask, b: SparseMask) -> float:
    """Overlap of two masks as a share of the smaller one."""
    return a.shared(b) / max(min(a.area, b.area), 1)
