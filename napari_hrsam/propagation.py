"""Slice-to-slice propagation of a mask through a volume.

Each next slice is prompted with what the previous slice found: its low-res logits as
``mask_input``, a positive click at its deepest interior point (farthest from the
boundary, so it stays inside as the structure drifts) and optionally its box, a little
enlarged. A direction stops when the model loses confidence, the area jumps, the mask
vanishes, a slice the user prompted is reached, or the range ends.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.ndimage import distance_transform_edt

from .inference import SliceEngine
from .state import (POSITIVE, ObjectState, Prompts, PropagationRequest, PropagationResult,
                    SliceKey, SliceResult, SliceState, SparseMask)

BOX_GROWTH = 0.1  # fraction of the box size added on each side for the next slice

STOP_RANGE = "range end"
STOP_EMPTY = "empty mask"
STOP_IOU = "low predicted IoU"
STOP_AREA = "area change"
STOP_USER = "user-prompted slice"
STOP_CANCEL = "cancelled"

DIRECTIONS = {"forward": (1,), "backward": (-1,), "both": (1, -1)}


def deepest_point(mask: SparseMask) -> tuple[float, float]:
    """(row, col) inside ``mask`` farthest from its boundary."""
    padded = np.pad(mask.crop, 1)
    distance = distance_transform_edt(padded)
    r, c = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return float(mask.offset[0] + r - 1), float(mask.offset[1] + c - 1)


def grown_box(mask: SparseMask) -> tuple[float, float, float, float]:
    """The mask's box (row0, col0, row1, col1 inclusive pixels) enlarged by BOX_GROWTH,
    clipped to the slice."""
    r0, c0, r1, c1 = mask.bbox
    dr, dc = BOX_GROWTH * (r1 - r0) + 1, BOX_GROWTH * (c1 - c0) + 1
    rows, cols = mask.shape
    return (max(0.0, r0 - dr), max(0.0, c0 - dc),
            min(rows - 1.0, r1 - 1 + dr), min(cols - 1.0, c1 - 1 + dc))


def next_prompts(previous: SparseMask, use_box: bool) -> Prompts:
    return Prompts(points=(deepest_point(previous),), labels=(POSITIVE,),
                   box=grown_box(previous) if use_box else None)


def stop_reason(result: SliceResult, previous: SliceResult, min_iou: float,
                max_area_change: float) -> str | None:
    if result.mask.empty:
        return STOP_EMPTY
    if result.iou < min_iou:
        return STOP_IOU
    ratio = result.mask.area / max(previous.mask.area, 1)
    if ratio > max_area_change or ratio < 1 / max_area_change:
        return STOP_AREA
    return None


def make_request(state: ObjectState, key: SliceKey, spatial_shape: tuple[int, ...],
                 generation: int, direction: str, axis: int | None, max_slices: int | None,
                 min_iou: float, max_area_change: float, use_box: bool) -> PropagationRequest:
    """Check the arguments and freeze a propagation of ``state`` from slice ``key``."""
    ndim = len(spatial_shape)
    others = [a for a in range(ndim) if a not in key.displayed_axes]
    if not others:
        raise ValueError("propagation needs a volume: a 2-D image has no other slices")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
    axis = others[-1] if axis is None else axis % ndim
    if axis not in others:
        raise ValueError(f"axis {axis} is displayed; propagate along one of {others}")
    if max_slices is not None and max_slices < 1:
        raise ValueError(f"max_slices must be >= 1, got {max_slices}")
    if not 0 <= min_iou <= 1 or max_area_change <= 1:
        raise ValueError("min_iou must lie in [0, 1] and max_area_change be > 1")
    start = state.slices.get(key)
    if start is None or start.result is None or start.result.mask.empty:
        raise ValueError("segment the current slice first: propagation starts from its mask")
    index, size = key.position[others.index(axis)], spatial_shape[axis]
    reach = size if max_slices is None else max_slices
    stop_at = {d: min(size - 1, index + reach) if d > 0 else max(0, index - reach)
               for d in DIRECTIONS[direction]}
    users = frozenset(k for k, s in state.slices.items() if s.source == "user" and k != key)
    return PropagationRequest(generation, key, start.result, axis, stop_at, users,
                              float(min_iou), float(max_area_change), bool(use_box))


def run(engine: SliceEngine, request: PropagationRequest,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None) -> PropagationResult:
    """Propagate ``request.start_result`` along ``request.axis`` (forward first)."""
    start_index = request.start.position[_position_slot(request)]
    total = sum(abs(stop - start_index) for stop in request.stop_at.values())
    done = 0
    slices, reasons, cancelled = {}, {}, False
    for direction, stop in request.stop_at.items():
        previous, key = request.start_result, request.start
        reason = STOP_RANGE
        for index in range(start_index + direction, stop + direction, direction):
            if should_cancel is not None and should_cancel():
                cancelled, reason = True, STOP_CANCEL
                break
            key = key.moved(request.axis, index)
            if key in request.user_slices:
                reason = STOP_USER
                break
            prompts = next_prompts(previous.mask, request.use_box)
            region = engine.region(key, prompts, previous)
            mask_input = engine.mask_input(previous, region)
            result = engine.predict(key, region, prompts, mask_input, user_clicks=False)
            reason = stop_reason(result, previous, request.min_iou, request.max_area_change)
            if reason is not None:
                break
            reason = STOP_RANGE
            slices[key] = SliceState(prompts, result, pending=False, source="propagated")
            previous = result
            done += 1
            if progress is not None:
                progress(done, total)
        reasons[direction] = reason
        if cancelled:
            break
    return PropagationResult(request.generation, request.start, request.axis, slices,
                             reasons, cancelled)


def _position_slot(request: PropagationRequest) -> int:
    """Index of ``request.axis`` inside ``SliceKey.position``."""
    ndim = len(request.start.position) + 2
    others = [a for a in range(ndim) if a not in request.start.displayed_axes]
    return others.index(request.axis)
