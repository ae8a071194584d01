"""Editing: a committed object back in progress (its prompts on the current slice, refined with
clicks; ``commit`` writes it back under the same id), the stroke prompts (``add_scribble``,
``set_lasso``; ``strokes``) and brush corrections (``paint``). ``Session`` inherits this. Objects that segment-all found are edited
the same way (their prompt is the grid click that found them)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .history import LabelPatch, Step
from .mask_policy import hold_painted_on_slice
from .prompt_checks import checked_box
from .propagation_rules import piece_points
from .resampling import mask_logits
from .state import (
    NEGATIVE,
    POSITIVE,
    ObjectState,
    Prompts,
    SliceKey,
    SliceResult,
    SliceState,
    SparseMask,
)
from .strokes import checked_path, checked_pixels, lasso_prompts, scribble_points


class SessionEdit:
    """``edit_object`` (and the parts of ``commit`` it needs), ``add_scribble``, ``set_lasso``
    and ``paint`` for ``Session``."""

    def paint(self, pixels_rc, inside: bool = True) -> np.ndarray | None:
        """Brush correction of the shown mask on the current slice: ``pixels_rc`` ((row, col)
        ints) painted in (``inside``) or erased. The mask changes at once (no model run), becomes
        the next click's mask prompt, and the pixels stay on their side through the following
        predictions on this slice (held like clicks, under ``MaskPolicy.hold_clicks``). One undo
        step. ValueError (nothing changes) with no mask on this slice or pixels off the slice."""
        key = self._require_slice()
        state = self._current_state()
        if state is None or state.result is None:
            raise ValueError("nothing to paint on: click the object first, then paint or erase its mask")
        pixels = checked_pixels(pixels_rc, self.slice_shape)
        prompts = state.prompts.with_paint(pixels, inside)
        if prompts == state.prompts:
            return self.preview
        old = state.result
        mask = hold_painted_on_slice(old.mask, prompts.painted, prompts.erased)
        result = replace(old, mask=mask, logits=mask_logits(mask, old.region, self._engine.target_size),
                         prompts=prompts, look_closer=None, model_empty=False)
        after = self._object.with_slice(key, replace(state, prompts=prompts, result=result, source="user"))
        self._push(Step("paint" if inside else "erase", self._object, after, self._generation + 1))
        return self.preview

    def add_scribble(self, path_rc, positive: bool = True, predict: bool = True) -> np.ndarray | None:
        """A stroke ((row, col) vertices) over what the mask misses (``positive``) or wrongly
        holds: clicks sampled along it join the prompts, held on their side like clicks. One
        undo step. ValueError (nothing changes) for fewer than 2 vertices or a stroke off the slice."""
        vertices = checked_path(path_rc, self.slice_shape, closed=False)
        prompts = self.prompts
        for row, col in scribble_points(vertices):
            prompts = prompts.with_point(row, col, POSITIVE if positive else NEGATIVE)
        return self._change_prompts("add scribble", prompts, predict)

    def set_lasso(self, polygon_rc, predict: bool = True, as_box: bool = False) -> np.ndarray | None:
        """A closed outline ((row, col) vertices) around the object starts it afresh on this
        slice: a click at the outline's deepest point with the filled outline as the model's mask
        prompt (``as_box``: a box around the outline instead of the mask prompt; it keeps
        zoom-in off for the later clicks, and measured worse on thin cells). One undo step.
        ValueError (nothing changes) for fewer than 3 vertices, a crossing outline or one off
        the slice."""
        key = self._require_slice()
        vertices = checked_path(polygon_rc, self.slice_shape, closed=True)
        point, box, inside = lasso_prompts(vertices, self.slice_shape)
        if as_box:
            prompts = Prompts((point,), (POSITIVE,), checked_box(box, self.slice_shape))
            return self._change_prompts("set lasso", prompts, predict)
        prompts = Prompts((point,), (POSITIVE,))
        outline = SparseMask.from_dense(inside)
        region = self._engine.region(key, prompts)
        start = SliceResult(outline, mask_logits(outline, region, self._engine.target_size), 1.0, region, Prompts(),
                            settings=self._engine.settings)
        after = self._object.with_slice(key, SliceState(prompts, start, pending=True))
        return self._push_and_predict(Step("set lasso", self._object, after, self._generation + 1), predict, 4)

    def edit_object(self, label_id: int) -> np.ndarray | None:
        """Make committed object ``label_id`` the object in progress on the current slice, starting
        from its mask there, shown as it is (no model run), with the prompts it was made with (or,
        for an object painted by hand, a click at the deepest point of each of its pieces). The
        next prompt refines it with that mask as the model's mask prompt; ``commit`` replaces its
        voxels on the slices edited (its other slices stay) under the same id. One undo step.
        ValueError when another object is in progress or ``label_id`` has no voxel on this slice."""
        key = self._require_slice()
        label_id = int(label_id)
        if not self._object.empty:
            raise ValueError("an object is in progress: commit or reset it before editing another")
        if label_id <= 0:
            raise ValueError(f"label id must be positive, got {label_id}")
        index = self._layout.spatial_index(key, (0, 0) + tuple(self._layout.slice_shape(key)))
        plane = np.asarray(self._labels[index]) == label_id
        if key.displayed_axes[0] > key.displayed_axes[1]:
            plane = plane.T
        mask = SparseMask.from_dense(plane)
        if mask.empty:
            raise ValueError(f"no voxel of this slice has label {label_id}; go to a slice the object covers")
        record = self._objects.get(label_id)
        prompts = _prompts_on(record, key) if record is not None else None
        if prompts is None:
            points = piece_points(mask)
            prompts = Prompts(points, (POSITIVE,) * len(points))
        region = self._engine.region(key, prompts)
        result = SliceResult(mask, mask_logits(mask, region, self._engine.target_size), 1.0, region,
                             prompts, settings=self._engine.settings)
        after = ObjectState({key: SliceState(prompts, result)}, label_id)
        self._push(Step("edit object", self._object, after, self._generation + 1))
        return self.preview

    def _erased_for_edit(self, state: ObjectState) -> list[LabelPatch]:
        """Set the edited object's voxels to 0 on the slices of ``state``; the patches."""
        patches = []
        for key in state.slices:
            index = self._layout.spatial_index(key, (0, 0) + tuple(self._layout.slice_shape(key)))
            box = np.asarray(self._labels[index])
            where = np.flatnonzero(box == state.label_id)
            if where.size:
                patch = LabelPatch(index, where, box.reshape(-1)[where].copy(), np.zeros(where.size, box.dtype))
                patch.write(self._labels)
                patches.append(patch)
        return patches

    def _edited_record(self, label_id: int, record: dict) -> dict:
        """The committed record: for an edited object, its old slices that were not edited stay."""
        old = self._objects.get(label_id)
        if self._object.label_id is None or old is None:
            return record
        edited = {(tuple(s["displayed_axes"]), tuple(s["position"])) for s in record["slices"]}
        kept = [s for s in old["slices"] if (tuple(s["displayed_axes"]), tuple(s["position"])) not in edited]
        return {**record, "slices": kept + record["slices"]}


def _prompts_on(record: dict, key: SliceKey) -> Prompts | None:
    """The prompts a committed object was made with on slice ``key``, or None."""
    for entry in record["slices"]:
        if tuple(entry["displayed_axes"]) == key.displayed_axes and tuple(entry["position"]) == key.position:
            return Prompts.from_dict(entry["prompts"])
    return None
