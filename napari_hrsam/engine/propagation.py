"""Slice-to-slice propagation of a mask through a volume.

Each next slice is prompted with what the previous slice found: its low-res logits as
``mask_input`` and a positive click at its deepest interior point (farthest from the
boundary, so it stays inside as the structure drifts). The answer is kept within a step of
the previous mask, and a direction stops by the rules of ``propagation_rules`` (measured
against the seed slice, so a slow leak cannot compound), at a slice the user prompted, or
at the end of the range.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .propagation_rules import (
    STOP_CANCEL,
    STOP_RANGE,
    STOP_USER,
    PropagationRules,
    SeedStats,
    constrain,
    next_prompts,
    scaled_intensities,
    step_radius,
    stop_reason,
)
from .slice_engine import SliceEngine
from .state import (
    ObjectState,
    PropagationRequest,
    PropagationResult,
    SliceKey,
    SliceResult,
    SliceState,
    SparseMask,
)

DIRECTIONS = {"forward": (1,), "backward": (-1,), "both": (1, -1)}


def make_request(state: ObjectState, key: SliceKey, spatial_shape: tuple[int, ...],
                 generation: int, direction: str, axis: int | None, max_slices: int | None,
                 rules: PropagationRules | None = None) -> PropagationRequest:
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
    rules = PropagationRules() if rules is None else rules
    if not isinstance(rules, PropagationRules):
        raise ValueError(f"rules must be a PropagationRules, got {type(rules).__name__}")
    start = state.slices.get(key)
    if start is None or start.result is None or start.result.mask.empty:
        raise ValueError("segment the current slice first: propagation starts from its mask")
    index, size = key.position[others.index(axis)], spatial_shape[axis]
    reach = size if max_slices is None else max_slices
    stop_at = {d: min(size - 1, index + reach) if d > 0 else max(0, index - reach)
               for d in DIRECTIONS[direction]}
    users = frozenset(k for k, s in state.slices.items() if s.source == "user" and k != key)
    return PropagationRequest(generation, key, start.result, axis, stop_at, users, rules)


def run(engine: SliceEngine, request: PropagationRequest,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None) -> PropagationResult:
    """Propagate ``request.start_result`` along ``request.axis`` (forward first)."""
    rules = request.rules
    start_index = request.start.position[_position_slot(request)]
    total = sum(abs(stop - start_index) for stop in request.stop_at.values())
    seed = SeedStats.of(request.start_result.mask,
                        _intensities(engine, request.start, request.start_result.mask))
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
            result = _predict_next(engine, key, previous, rules)
            foreign = (seed.foreign_share(result.mask, _intensities(engine, key, result.mask))
                       if rules.max_foreign is not None and not result.mask.empty else 0.0)
            reason = stop_reason(result.mask, result.iou, previous.mask, seed, foreign, rules)
            if reason is not None:
                break
            reason = STOP_RANGE
            slices[key] = SliceState(result.prompts, result, pending=False, source="propagated")
            previous = result
            done += 1
            if progress is not None:
                progress(done, total)
        reasons[direction] = reason
        if cancelled:
            break
    return PropagationResult(request.generation, request.start, request.axis, slices,
                             reasons, cancelled)


def _predict_next(engine: SliceEngine, key: SliceKey, previous: SliceResult,
                  rules: PropagationRules) -> SliceResult:
    """The model's answer on ``key`` prompted by ``previous``, kept within a step of it."""
    prompts = next_prompts(previous.mask, rules)
    region = engine.region(key, prompts, previous, zoom=False)  # the slice's own embedding
    mask_input = engine.mask_input(previous, region)
    result = engine.predict(key, region, prompts, mask_input, user_clicks=False)
    kept = constrain(result.mask, previous.mask, step_radius(previous.mask, rules))
    if kept is result.mask:
        return result
    return replace(result, mask=kept)


def _intensities(engine: SliceEngine, key: SliceKey, mask: SparseMask):
    """The slice under ``mask``'s bounding box, 0..1 of the contrast window."""
    if mask.empty:
        return None
    data = engine.layout.read(key, mask.bbox)
    limits = engine.limits(key)
    if data.ndim == 3:
        channels = list(engine.channels)
        return scaled_intensities(data[..., channels], [limits[c] for c in channels])
    return scaled_intensities(data, limits[:1])


def _position_slot(request: PropagationRequest) -> int:
    """Index of ``request.axis`` inside ``SliceKey.position``."""
    ndim = len(request.start.position) + 2
    others = [a for a in range(ndim) if a not in request.start.displayed_axes]
    return others.index(request.axis)
