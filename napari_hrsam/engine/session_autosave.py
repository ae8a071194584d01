"""Autosave for ``Session``: opening (or resuming) the folder, and a save after every change to
the labels (commit, removal, an edited object's commit, segment all, and their undo and redo)
before the call returns. The folder's format and crash safety are ``autosave``'s.

A save that fails (a read-only folder, a full disk) does not stop the work: the change stays in
memory, ``autosave_status`` says that the labels are no longer being saved and why, and an
``AutosaveWarning`` is raised as a warning once; the next change tries again."""
from __future__ import annotations

import warnings

import numpy as np

from .autosave import Autosave, image_fingerprint
from .history import LabelDiff


class AutosaveWarning(UserWarning):
    """The labels could not be saved to the autosave folder; the session works in memory."""


class SessionAutosave:
    """Autosave hooks for ``Session`` (which owns the labels, objects and settings)."""

    _autosave: Autosave | None = None
    _autosave_error: str | None = None

    @property
    def autosave_status(self) -> str | None:
        """Where the labels are being saved, or why they are not (None without autosave)."""
        if self._autosave is None and self._autosave_error is None:
            return None
        if self._autosave_error is not None:
            return f"NOT SAVED: {self._autosave_error}; the labels live in memory only"
        return f"autosaving to {self._autosave.folder}"

    def _open_autosave(self, folder, labels_given: bool) -> None:
        """Open or resume ``folder`` (see ``Session``'s ``autosave``)."""
        try:
            autosave, saved = Autosave.open(folder, image_fingerprint(self._layout.image), self._labels)
        except OSError as err:
            self._autosave_error = f"cannot write {folder} ({err.strerror or err})"
            warnings.warn(self.autosave_status, AutosaveWarning, stacklevel=3)
            return
        if saved is not None:
            current = np.asarray(self._labels[...])
            if labels_given and current.any() and not np.array_equal(current, saved["labels"]):
                raise ValueError(f"the labels given differ from those autosaved in {folder}: pass labels=None "
                                 "(or empty labels) to resume, or choose another folder")
            self._labels[...] = saved["labels"].astype(np.dtype(self._labels.dtype), copy=False)
            self._objects = type(self._objects)(saved["objects"])
        self._autosave = autosave

    def _autosaved(self, diff: LabelDiff | None) -> None:
        """Save after a change of the labels (``diff``: what changed)."""
        if self._autosave is None or diff is None:
            return
        try:
            self._autosave.save(self._labels, changed_regions(diff, self._labels.shape),
                                dict(self._objects), self._autosave_settings())
        except OSError as err:
            first = self._autosave_error is None
            self._autosave_error = f"saving to {self._autosave.folder} failed ({err.strerror or err})"
            if first:
                warnings.warn(self.autosave_status, AutosaveWarning, stacklevel=4)
            return
        self._autosave_error = None

    def _autosave_settings(self) -> dict:
        settings = self._engine.settings
        policy = settings.mask_policy
        return {"zoom_in": bool(self._engine.zoom_in), "target_size": int(self._engine.target_size),
                "keep_clicked_pieces": policy.keep_clicked_pieces, "hold_clicks": policy.hold_clicks,
                "contrast_limits": self.contrast_limits, "displayed_axes": list(self._displayed_axes)}


def changed_regions(diff: LabelDiff, shape: tuple[int, ...]) -> list[tuple]:
    """Index tuples (slices) bounding the voxels each patch of ``diff`` changed."""
    regions = []
    for patch in diff.patches:
        index = tuple(patch.index) + (slice(None),) * (len(shape) - len(patch.index))
        starts, box_shape = [], []
        for axis, item in enumerate(index):
            if isinstance(item, slice):
                start, stop, _ = item.indices(shape[axis])
                starts.append(start)
                box_shape.append(stop - start)
            else:
                starts.append(int(item))
        box_shape = tuple(box_shape)
        flat = np.unravel_index(patch.where, box_shape) if len(patch.where) else None
        if flat is None:
            continue
        bounds, sliced = [], iter(range(len(box_shape)))
        for axis, item in enumerate(index):
            if isinstance(item, slice):
                k = next(sliced)
                bounds.append(slice(starts[axis] + int(flat[k].min()), starts[axis] + int(flat[k].max()) + 1))
            else:
                bounds.append(int(item))
        regions.append(tuple(bounds))
    return regions
