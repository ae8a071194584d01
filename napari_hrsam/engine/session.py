"""Qt-free interactive segmentation session over a 2-D image or an N-D volume.

The widget, the ``hrsam`` command and notebooks all drive this one object; none of them
calls the model directly.

Vocabulary
    spatial axes  the image axes without the channel axis (``channel_axis``) and without
                  the RGB(A) last axis (``rgb``); ``labels`` has exactly this shape.
    slice         the two ``displayed_axes`` (row axis, col axis; any spatial axes, any
                  order) at ``position`` = one index for every other spatial axis.
    object        what is being segmented now: prompts + preview masks on one or more
                  slices (``ObjectState``), written into ``labels`` by ``commit``.

Coordinates given to the session are (row, col) pixels of the current slice.

Threads
    Cheap state changes (set_slice, add_point, remove_point, set_box, set_prompts, reset,
    commit, remove_object, undo, redo, apply, discard) belong to napari's main thread. Heavy
    work runs in ONE worker thread at a time: ``compute(request)``, ``prepare_slice()`` and
    ``compute_propagation(request, ...)``. They read the image lazily and never change session
    state; ``apply(...)`` takes their answers and drops outdated ones (the prompts changed
    meanwhile). ``add_point(..., predict=True)`` (the default) predicts at once.

Widget recipe::

    session.add_point((r, c), positive=True, predict=False)      # main thread
    while (request := session.pending_request()) is not None:     # zoom-in's first click
        session.apply(session.compute(request))                   # takes two passes
    # compute runs in a worker; if it raised ValueError (e.g. NaN slice): discard(request)
"""
from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Sequence

import numpy as np

from .embedding_cache import EmbeddingCache
from .history import History, LabelDiff, Step, checked_labels, erase, max_label, paint
from .mask_policy import MaskPolicy
from .predictor_switch import unpredicted, unpredicted_step
from .prompt_checks import checked_box, checked_point
from .result_memo import ResultMemo
from .session_auto import SessionAuto
from .session_autosave import SessionAutosave
from .session_edit import SessionEdit
from .session_work import SessionWork
from .slice_engine import SliceEngine
from .slicing import ImageLayout, choose_channels, normalise_limits
from .state import (
    NEGATIVE,
    POSITIVE,
    ObjectState,
    Prompts,
    SliceKey,
    SliceState,
    SparseMask,
)

DEFAULT_CACHE_BYTES = 1 << 30


class Session(SessionWork, SessionAuto, SessionEdit, SessionAutosave):
    """Click-to-segment session with undo/redo, commit and slice propagation.

    Parameters
    ----------
    image : array-like (numpy, dask, zarr; anything with shape, dtype, __getitem__)
        2-D image or N-D volume, uint8/uint16/int16/any int/float. Read one slice at a time.
        A list of arrays is a pyramid (full resolution first, e.g. an OME-Zarr's levels): the
        model's input comes from the coarsest level that holds enough pixels (``pyramid``).
    predictor : hrsam_model.Predictor (or anything with ``target_size``, ``embed``,
        ``set_embedding``, ``predict``).
    labels : writable integer array with the spatial shape (numpy or zarr), or None (a new
        int32 zero array). Written in place (pass a napari Labels layer's ``data``).
    channel_axis : int or None. A non-spatial channel axis (multichannel fluorescence).
    rgb : bool or None. Last axis is RGB(A) (size 3 or 4); None guesses like napari.
    displayed_axes : (row axis, col axis) among the spatial axes; negative counts from the end.
    position : index on every non-displayed spatial axis (or one per spatial axis, the
        displayed ones ignored). Required before prompting when the image has > 2
        spatial axes; ``()`` for 2-D.
    contrast_limits : None (percentiles 0.5/99.5 of each slice, from a strided subsample
        for huge slices; 0..255 for 8-bit RGB), (lo, hi) (e.g. napari's
        layer.contrast_limits or a CT window), or one (lo, hi) per channel.
    channels : which channels of ``channel_axis`` feed the model's R, G, B (default: the
        first up to 3).
    cache : EmbeddingCache to share between sessions, or None for a new one bounded by
        ``cache_bytes``.
    data_key : hashable naming the image data in the cache; sessions given the same
        key (and cache) reuse each other's embeddings. Default: unique to this session.
    zoom_in : segment in a window around the object (``napari_hrsam.engine.windows``): the
        first click finds it on the whole slice, then looks again closer. Settable later.
    mask_policy : what the shown mask keeps of the decoder's (``MaskPolicy``: only the clicked
        pieces, every click held, by default). Settable later.
    autosave : a folder (``napari_hrsam.engine.autosave``): every change to the labels is saved
        there before the call returns (crash-safe); a folder holding this image's saved work
        resumes it (the labels, the objects with their prompts; the next id continues). A
        folder of another image is refused (ValueError). ``autosave_status`` says where the
        labels go, or that a save failed and they live in memory only.

    Raises ValueError for unusable input (no image, < 2 spatial axes, wrong labels
    shape/dtype, bad axes/position/limits).
    """

    def __init__(self, image, predictor, *, labels=None, channel_axis: int | None = None,
                 rgb: bool | None = None, displayed_axes: Sequence[int] = (-2, -1),
                 position: Sequence[int] | None = None, contrast_limits=None,
                 channels: Sequence[int] | None = None, cache: EmbeddingCache | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, data_key=None, zoom_in: bool = False,
                 mask_policy: MaskPolicy = MaskPolicy(), autosave=None):
        layout = ImageLayout(image, channel_axis, rgb)
        key = layout.slice_key(position, displayed_axes)
        limits = normalise_limits(contrast_limits, layout.n_channels)
        chosen = choose_channels(layout, channels)
        labels = checked_labels(labels, layout.spatial_shape)
        cache = cache if cache is not None else EmbeddingCache(cache_bytes)
        self._layout = layout
        self._engine = SliceEngine(layout, predictor, cache,
                                   data_key if data_key is not None else object(),
                                   chosen, limits, zoom_in, mask_policy)
        self._labels = labels
        self._key = key
        self._displayed_axes = tuple(displayed_axes)
        self._object = ObjectState()
        self._objects: MappingProxyType = MappingProxyType({})
        self._history = History()
        self._generation = 0
        self._results = ResultMemo()  # so redo and repeated prompts need no model run
        if autosave is not None:  # may resume: labels and objects from the folder
            self._open_autosave(autosave, labels_given=labels is not None)

    # ----------------------------------------------------------------- read-only state
    @property
    def image(self):
        return self._layout.image

    @property
    def predictor(self):
        return self._engine.predictor

    @property
    def zoom_in(self) -> bool:
        return self._engine.zoom_in

    @zoom_in.setter
    def zoom_in(self, on: bool) -> None:  # call predict_again() to see it on the current object
        self._engine.zoom_in = bool(on)

    @property
    def mask_policy(self) -> MaskPolicy:
        return self._engine.mask_policy

    @mask_policy.setter
    def mask_policy(self, policy: MaskPolicy) -> None:  # call predict_again() to see it
        if not isinstance(policy, MaskPolicy):
            raise ValueError(f"mask_policy must be a MaskPolicy, got {type(policy).__name__}")
        self._engine.mask_policy = policy

    @property
    def cache(self) -> EmbeddingCache:
        return self._engine.cache

    @property
    def labels(self):
        """The label array (spatial shape, integer); committed objects live here."""
        return self._labels

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the spatial axes (= labels.shape)."""
        return self._layout.spatial_shape

    @property
    def slice_key(self) -> SliceKey | None:
        """The current slice, or None while a volume has no position yet."""
        return self._key

    @property
    def slice_shape(self) -> tuple[int, int]:
        """(rows, cols) of the current slice."""
        return self._layout.slice_shape(self._require_slice())

    @property
    def contrast_limits(self) -> list[tuple[float, float]] | None:
        """The session's limits per channel, or None (automatic)."""
        return self._engine.contrast_limits

    @property
    def object(self) -> ObjectState:
        """The object being segmented (all its slices)."""
        return self._object

    @property
    def prompts(self) -> Prompts:
        """Prompts of the current object on the current slice (empty Prompts if none)."""
        state = self._current_state()
        return state.prompts if state is not None else Prompts()

    @property
    def preview_sparse(self) -> SparseMask | None:
        """The current slice's preview as a bounding-box crop (cheap for huge slices)."""
        state = self._current_state()
        return state.result.mask if state is not None and state.result is not None else None

    @property
    def preview(self) -> np.ndarray | None:
        """bool (rows, cols) mask of the current object on the current slice, or None.
        While ``pending`` it still shows the previous prediction."""
        sparse = self.preview_sparse
        return sparse.dense() if sparse is not None else None

    @property
    def iou(self) -> float | None:
        """Predicted IoU of the current slice's preview."""
        state = self._current_state()
        return state.result.iou if state is not None and state.result is not None else None

    @property
    def warning(self) -> str | None:
        """Why the current slice's mask is not the model's answer (it has no contrast), or None."""
        state = self._current_state()
        return state.result.warning if state is not None and state.result is not None else None

    @property
    def pending(self) -> bool:
        """True when some slice of the object waits for a prediction."""
        return any(s.pending for s in self._object.slices.values())

    @property
    def generation(self) -> int:
        """Increases with every change of the object or labels; a propagation answer
        asked at an older generation is dropped."""
        return self._generation

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._history.can_redo

    @property
    def history(self) -> tuple[list[str], list[str]]:
        """(names of the undoable steps, oldest first; names of the redoable steps, next
        redo last), e.g. (["add point", "commit"], []) for an "Undo commit" menu entry."""
        return self._history.names()

    @property
    def objects(self) -> dict[int, dict]:
        """Committed objects: label id -> {"slices": [{"displayed_axes", "position",
        "source", "prompts", "iou"}...]} (JSON-friendly)."""
        return dict(self._objects)

    @property
    def next_label_id(self) -> int:
        """max(labels) + 1: the id the next commit will use."""
        return max(max_label(self._labels), 0) + 1

    # ----------------------------------------------------------------- navigation
    def set_slice(self, position: Sequence[int] | None = None,
                  displayed_axes: Sequence[int] | None = None) -> None:
        """Move to another slice (not an undo step; reads nothing). ``position``: one index
        per non-displayed spatial axis, or one per spatial axis (napari's
        ``dims.current_step`` with the channel axis removed); displayed entries ignored."""
        axes = self._displayed_axes if displayed_axes is None else tuple(displayed_axes)
        key = self._layout.slice_key(position, axes)
        self._key, self._displayed_axes = key, axes

    def set_contrast_limits(self, contrast_limits) -> None:
        """Change the intensity window used for new embeddings (None = percentiles)."""
        self._engine.contrast_limits = normalise_limits(contrast_limits,
                                                        self._layout.n_channels)

    def set_predictor(self, predictor) -> None:
        """Segment with ``predictor`` (other model, weights or target size) from now on.
        Prompts, labels and the whole undo history stay; every mask of the object and of
        the states undo/redo return to is predicted again (``predictor_switch``); answers
        computed before are dropped by ``apply``. Not an undo step."""
        old = self._engine
        self._engine = SliceEngine(old.layout, predictor, old.cache, old.data_key, old.channels,
                                   old.contrast_limits, old.zoom_in, old.mask_policy)
        self._results.clear()
        self._history.map_steps(unpredicted_step)
        self._object = unpredicted(self._object)
        self._generation += 1

    # ----------------------------------------------------------------- prompts (undoable)
    def add_point(self, row_col: Sequence[float], positive: bool = True,
                  predict: bool = True) -> np.ndarray | None:
        """Add a positive (inside) or negative (outside) click at (row, col) of the current
        slice. With ``predict`` the model runs now and the new preview is returned;
        otherwise the slice becomes ``pending`` (see pending_request). One undo step."""
        row, col = checked_point(row_col, self.slice_shape)
        prompts = self.prompts.with_point(row, col, POSITIVE if positive else NEGATIVE)
        return self._change_prompts("add point", prompts, predict)

    def remove_point(self, index: int, predict: bool = True) -> np.ndarray | None:
        """Remove the ``index``-th point of the current slice's prompts. One undo step."""
        prompts = self.prompts
        if not -len(prompts.points) <= index < len(prompts.points):
            raise ValueError(f"no point {index}: the current slice has "
                             f"{len(prompts.points)} point(s)")
        return self._change_prompts("remove point", prompts.without_point(index), predict)

    def set_box(self, box: Sequence[float] | None, predict: bool = True) -> np.ndarray | None:
        """Set (row0, col0, row1, col1) as the current slice's box, or None to remove it."""
        checked = None if box is None else checked_box(box, self.slice_shape)
        return self._change_prompts("set box", replace(self.prompts, box=checked), predict)

    def set_prompts(self, points: Sequence[Sequence[float]] = (), labels: Sequence[int] = (),
                    box: Sequence[float] | None = None,
                    predict: bool = True) -> np.ndarray | None:
        """Replace the clicks and the box of the current slice at once (e.g. from a napari
        Points layer; its brush strokes stay); labels 1 = positive, 0 = negative. One undo
        step; no-op if unchanged."""
        points, labels = list(points), [int(v) for v in labels]
        if len(points) != len(labels):
            raise ValueError(f"{len(points)} points but {len(labels)} labels")
        if any(v not in (POSITIVE, NEGATIVE) for v in labels):
            raise ValueError(f"point labels must be 1 (positive) or 0 (negative), got {labels}")
        checked = tuple(checked_point(p, self.slice_shape) for p in points)
        prompts = replace(self.prompts, points=checked, labels=tuple(labels),
                          box=None if box is None else checked_box(box, self.slice_shape))
        return self._change_prompts("set prompts", prompts, predict)

    def reset(self) -> None:
        """Forget the current object's prompts and masks on every slice. One undo step."""
        if not self._object.empty:
            self._push(Step("reset", self._object, ObjectState(), self._generation + 1))

    def commit(self, overwrite: bool = False) -> int:
        """Write the current object into ``labels`` with ``next_label_id`` and start a new
        object. Voxels already labelled keep their label unless ``overwrite``. Returns the
        id. One undo step (undo restores the exact previous labels and the object).
        Raises ValueError when there is nothing to commit or a prediction is pending."""
        if self.pending:
            raise ValueError("a prediction is still pending: wait for it (or call "
                             "predict()) before committing")
        masks = self._object.masks()
        if not masks:
            raise ValueError("nothing to commit: the current object has no mask yet")
        label_id = self._object.label_id or self.next_label_id  # an edited object keeps its id
        dtype = np.dtype(self._labels.dtype)
        if label_id > np.iinfo(dtype).max:
            raise ValueError(f"labels dtype {dtype} cannot hold id {label_id}: use a wider "
                             "integer type")
        patches = []
        try:
            if self._object.label_id is not None:  # the edited object's old voxels on these slices go
                patches += self._erased_for_edit(self._object)
            for key, mask in masks.items():
                index, crop = self._label_window(key, mask)
                patch = paint(self._labels, index, crop, label_id, overwrite)
                if patch is not None:
                    patches.append(patch)
        except BaseException:
            LabelDiff(tuple(patches)).undo(self._labels)
            raise
        if not patches:
            raise ValueError("nothing to commit: every voxel of the object already has a "
                             "label (commit with overwrite=True to replace them)")
        record = self._edited_record(label_id, {
            "slices": [s.record(k) for k, s in self._object.slices.items()],
            "voxels": int(sum(p.where.size for p in patches)), "overwrite": bool(overwrite)})
        objects = MappingProxyType({**self._objects, label_id: record})
        self._push(Step("commit", self._object, ObjectState(), self._generation + 1,
                        LabelDiff(tuple(patches)), self._objects, objects))
        return label_id

    def remove_object(self, label_id: int) -> int:
        """Set every voxel of committed ``label_id`` to 0; returns how many. Undoable."""
        label_id = int(label_id)
        if label_id <= 0:
            raise ValueError(f"label id must be positive, got {label_id}")
        diff = erase(self._labels, label_id)
        if diff.voxels == 0:
            raise ValueError(f"no voxel has label {label_id}")
        objects = MappingProxyType({k: v for k, v in self._objects.items() if k != label_id})
        self._push(Step("remove object", self._object, self._object, self._generation + 1,
                        diff, self._objects, objects))
        return diff.voxels

    def undo(self) -> bool:
        """Undo the last step (prompt, reset, commit, removal, propagation). False if none.
        Slices it brings back with masks made under other settings (contrast limits, zoom-in,
        mask policy) become ``pending``: call ``predict()`` (the widget predicts in its worker)."""
        step = self._history.undo()
        if step is None:
            return False
        if step.labels is not None:
            step.labels.undo(self._labels)
        self._restore(step.before, step.objects_before if step.labels else self._objects, True)
        self._autosaved(step.labels)
        return True

    def redo(self) -> bool:
        """Redo the last undone step (pending slices as in ``undo``). A new step after undo
        drops the redo tail."""
        step = self._history.redo()
        if step is None:
            return False
        if step.labels is not None:
            step.labels.redo(self._labels)
        self._restore(step.after, step.objects_after if step.labels else self._objects, True)
        self._autosaved(step.labels)
        return True

    # ----------------------------------------------------------------- export
    def object_masks(self) -> dict[SliceKey, SparseMask]:
        """The current object's non-empty masks by slice."""
        return self._object.masks()

    def paint_object(self, target, value: int = 1, erase: Sequence[tuple] = ()) -> list[tuple]:
        """Write the current object's masks into ``target`` (spatial shape), e.g. a preview
        Labels layer's data, after zeroing the windows in ``erase``; returns the windows
        (index tuples) painted now: pass them as ``erase`` next time to clear the old
        preview without touching the rest of a big volume."""
        if tuple(target.shape) != self.spatial_shape:
            raise ValueError(f"target shape {tuple(target.shape)} is not the spatial shape "
                             f"{self.spatial_shape}")
        for index in erase:
            target[index] = 0
        windows = []
        for key, mask in self._object.masks().items():
            index, crop = self._label_window(key, mask)
            paint(target, index, crop, value, overwrite=True)
            windows.append(index)
        return windows

    def export(self) -> tuple[object, dict]:
        """(labels, metadata): metadata = {"objects": committed objects (see ``objects``),
        "spatial_shape": [...], "next_label_id": n} (JSON-friendly)."""
        return self._labels, {"objects": {int(k): v for k, v in self._objects.items()},
                              "spatial_shape": list(self.spatial_shape),
                              "next_label_id": self.next_label_id}

    # ----------------------------------------------------------------- internals
    def _require_slice(self) -> SliceKey:
        if self._key is None:
            raise ValueError(f"choose a slice first: the image has {self._layout.ndim} "
                             "spatial axes, call set_slice(position) with one index per "
                             "non-displayed axis")
        return self._key

    def _current_state(self) -> SliceState | None:
        return self._object.slices.get(self._key) if self._key is not None else None

    def _change_prompts(self, name: str, prompts: Prompts, predict: bool):
        key = self._require_slice()
        old = self._object.slices.get(key)
        if old is not None and old.prompts == prompts and old.source == "user":
            return self.preview
        if old is None and prompts.empty:
            return self.preview
        state = None if prompts.empty else SliceState(
            prompts, old.result if old is not None else None, pending=True)
        after = self._results.resolved(self._object.with_slice(key, state), self._engine.settings)
        # add_point -> _change_prompts -> _push_and_predict -> _predict: the warning names add_point's caller
        return self._push_and_predict(Step(name, self._object, after, self._generation + 1), predict, 5)

    def _push_and_predict(self, step: Step, predict: bool, stacklevel: int):
        """Push ``step``, then predict its pending slices if ``predict``; a failed prediction
        takes the step back (nothing of it stays). Returns the preview."""
        self._push(step)
        if predict:
            try:
                self._predict(stacklevel=stacklevel)
            except BaseException:
                self._history.retract(step)
                self._restore(step.before, self._objects)
                raise
        return self.preview

    def _push(self, step: Step) -> None:
        self._history.push(step)
        self._object = step.after
        if step.labels is not None:
            self._objects = step.objects_after
        self._generation = step.generation
        self._autosaved(step.labels)

    def _restore(self, state: ObjectState, objects, refresh: bool = False) -> None:
        """Show ``state``; ``refresh`` (undo, redo): its slices made under other settings are due again."""
        settings = self._engine.settings
        self._object = (self._results.refreshed(state, self._object, settings) if refresh
                        else self._results.resolved(state, settings))
        self._objects = objects
        self._generation += 1

    def _label_window(self, key: SliceKey, mask: SparseMask):
        """(index into labels, mask crop in labels' axis order) for a slice mask."""
        index = self._layout.spatial_index(key, mask.bbox)
        crop = mask.crop.T if key.displayed_axes[0] > key.displayed_axes[1] else mask.crop
        return index, crop
