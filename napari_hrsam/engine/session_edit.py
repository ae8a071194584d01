"""Editing a committed object: its prompts on the current slice become the object in progress,
refined with clicks as usual, and ``commit`` writes it back under the same id (``Session``
inherits this). Objects that segment-all found are edited the same way (their prompt is the grid
click that found them)."""
from __future__ import annotations

import numpy as np

from .history import LabelPatch, Step
from .state import ObjectState, Prompts, SliceKey, SliceState


class SessionEdit:
    """``edit_object`` and the parts of ``commit`` it needs, for ``Session``."""

    def edit_object(self, label_id: int, predict: bool = True) -> np.ndarray | None:
        """Make committed object ``label_id`` the object in progress on the current slice, from
        the prompts it was made with there. Clicks then refine it; ``commit`` replaces its voxels
        on the slices edited (its other slices stay) under the same id. One undo step. ValueError
        when another object is in progress or ``label_id`` has no prompts on this slice."""
        key = self._require_slice()
        if not self._object.empty:
            raise ValueError("an object is in progress: commit or reset it before editing another")
        record = self._objects.get(int(label_id))
        if record is None:
            raise ValueError(f"no committed object {label_id} (objects painted by hand have no prompts: "
                             "erase and click them anew)")
        prompts = _prompts_on(record, key)
        if prompts is None:
            raise ValueError(f"object {label_id} has no prompts on this slice; go to a slice it was "
                             "segmented on")
        after = ObjectState({key: SliceState(prompts, pending=True)}, int(label_id))
        step = Step("edit object", self._object, after, self._generation + 1)
        self._push(step)
        if predict:
            self._predict(stacklevel=3)
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
    for entry in record["slices"]:
        if tuple(entry["displayed_axes"]) == key.displayed_axes and tuple(entry["position"]) == key.position:
            return Prompts.from_dict(entry["prompts"])
    return None
