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
    commit, remove_object, undo, redo, apply, discard) belong to one thread (napari's main
    thread). Heavy work is split out and is safe to run in ONE worker thread at a time:
    ``compute(request)`` (embedding + decoder), ``prepare_slice()`` (embedding only) and
    ``compute_propagation(request, ...)``. They read the image lazily and never change
    session state; their answers come back through ``apply(...)``, which drops an answer
    whose ``generation`` is outdated (the prompts changed meanwhile). Synchronous use (CLI,
    notebooks) is the default: ``add_point(..., predict=True)`` predicts at once.

Widget recipe::

    session.add_point((r, c), positive=True, predict=False)      # main thread
    request = session.pending_request()                           # main thread
    prediction = session.compute(request)                         # worker (None if stale)
    session.apply(prediction)                                     # main thread
    # if compute raised ValueError (e.g. NaN slice): session.discard(request)
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .state import (ObjectState, Prediction, PredictRequest, Prompts, PropagationRequest,
                    PropagationResult, SliceKey, SparseMask)

DEFAULT_CACHE_BYTES = 1 << 30


class Session:
    """Click-to-segment session with undo/redo, commit and slice propagation.

    Parameters
    ----------
    image : array-like (numpy, dask, zarr; anything with shape, dtype, ndim, __getitem__)
        2-D image or N-D volume, uint8/uint16/int16/any int/float. Read one slice at a time.
    predictor : hrsam_model.Predictor (or anything with ``target_size``, ``embed``,
        ``set_embedding``, ``predict``).
    labels : writable integer array with the spatial shape, or None (a new int32 zero
        array). Written in place (pass a napari Labels layer's ``data`` to share it).
    channel_axis : int or None. A non-spatial channel axis (multichannel fluorescence).
    rgb : bool or None. Last axis is RGB(A) (size 3 or 4); None guesses like napari.
    displayed_axes : (row axis, col axis) among the spatial axes; negative counts from the end.
    position : index on every non-displayed spatial axis (or one per spatial axis, the
        displayed ones ignored). Required before prompting when the image has > 2
        spatial axes; ``()`` for 2-D.
    contrast_limits : None (percentiles 0.5/99.5 of each slice, from a strided subsample
        for huge slices), (lo, hi) (e.g. napari's layer.contrast_limits or a CT window),
        or one (lo, hi) per used channel.
    channels : which channels of ``channel_axis`` feed the model's R, G, B (default: the
        first up to 3).
    cache : EmbeddingCache to share between sessions, or None for a new one bounded by
        ``cache_bytes``.
    data_key : hashable naming the image data in the cache; sessions given the same
        key (and cache) reuse each other's embeddings. Default: unique to this session.

    Raises ValueError for unusable input (no image, < 2 spatial axes, wrong labels
    shape/dtype, bad axes/position/limits).
    """

    def __init__(self, image, predictor, *, labels=None, channel_axis: int | None = None,
                 rgb: bool | None = None, displayed_axes: Sequence[int] = (-2, -1),
                 position: Sequence[int] | None = None, contrast_limits=None,
                 channels: Sequence[int] | None = None, cache=None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES, data_key=None):
        raise NotImplementedError

    # ----------------------------------------------------------------- read-only state
    @property
    def labels(self):
        """The label array (spatial shape, integer); committed objects live here."""

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the spatial axes (= labels.shape)."""

    @property
    def slice_key(self) -> SliceKey | None:
        """The current slice, or None while a volume has no position yet."""

    @property
    def slice_shape(self) -> tuple[int, int]:
        """(rows, cols) of the current slice."""

    @property
    def object(self) -> ObjectState:
        """The object being segmented (all its slices)."""

    @property
    def prompts(self) -> Prompts:
        """Prompts of the current object on the current slice (empty Prompts if none)."""

    @property
    def preview(self) -> np.ndarray | None:
        """bool (rows, cols) mask of the current object on the current slice, or None.
        While ``pending`` it still shows the previous prediction."""

    @property
    def preview_sparse(self) -> SparseMask | None:
        """The same as ``preview`` as a bounding-box crop (cheap for huge slices)."""

    @property
    def iou(self) -> float | None:
        """Predicted IoU of the current slice's preview."""

    @property
    def pending(self) -> bool:
        """True when some slice of the object waits for a prediction."""

    @property
    def generation(self) -> int:
        """Increases with every change of the object or labels; answers from workers
        carry the generation they were asked at and are dropped when it moved on."""

    @property
    def can_undo(self) -> bool: ...

    @property
    def can_redo(self) -> bool: ...

    @property
    def objects(self) -> dict[int, dict]:
        """Committed objects: label id -> {"slices": [{"displayed_axes", "position",
        "source", "prompts"}...]} (JSON-friendly)."""

    @property
    def next_label_id(self) -> int:
        """max(labels) + 1: the id the next commit will use."""

    # ----------------------------------------------------------------- navigation
    def set_slice(self, position: Sequence[int] | None = None,
                  displayed_axes: Sequence[int] | None = None) -> None:
        """Move to another slice (not an undo step; reads nothing). ``position``: one index
        per non-displayed spatial axis, or one per spatial axis (napari's
        ``dims.current_step`` with the channel axis removed); displayed entries ignored."""

    def set_contrast_limits(self, contrast_limits) -> None:
        """Change the intensity window used for new embeddings (None = percentiles)."""

    # ----------------------------------------------------------------- prompts (undoable)
    def add_point(self, row_col: Sequence[float], positive: bool = True,
                  predict: bool = True) -> np.ndarray | None:
        """Add a positive (inside) or negative (outside) click at (row, col) of the current
        slice. With ``predict`` the model runs now and the new preview is returned;
        otherwise the slice becomes ``pending`` (see pending_request). One undo step."""

    def remove_point(self, index: int, predict: bool = True) -> np.ndarray | None:
        """Remove the ``index``-th point of the current slice's prompts. One undo step."""

    def set_box(self, box: Sequence[float] | None, predict: bool = True) -> np.ndarray | None:
        """Set (row0, col0, row1, col1) as the current slice's box, or None to remove it."""

    def set_prompts(self, points: Sequence[Sequence[float]] = (), labels: Sequence[int] = (),
                    box: Sequence[float] | None = None,
                    predict: bool = True) -> np.ndarray | None:
        """Replace all prompts of the current slice at once (e.g. from a napari Points
        layer); labels 1 = positive, 0 = negative. One undo step; no-op if unchanged."""

    def reset(self) -> None:
        """Forget the current object's prompts and masks on every slice. One undo step."""

    def commit(self, overwrite: bool = False) -> int:
        """Write the current object into ``labels`` with ``next_label_id`` and start a new
        object. Voxels already labelled keep their label unless ``overwrite``. Returns the
        id. One undo step (undo restores the exact previous labels and the object).
        Raises ValueError when there is nothing to commit or a prediction is pending."""

    def remove_object(self, label_id: int) -> int:
        """Set every voxel of committed ``label_id`` to 0; returns how many. Undoable."""

    def undo(self) -> bool:
        """Undo the last step (prompt, reset, commit, removal, propagation). False if none."""

    def redo(self) -> bool:
        """Redo the last undone step. A new step after undo drops the redo tail."""

    # ----------------------------------------------------------------- prediction
    def predict(self) -> np.ndarray | None:
        """Run every pending prediction now (synchronously); returns the preview."""

    def pending_request(self) -> PredictRequest | None:
        """The next prediction due (current slice first), or None."""

    def compute(self, request: PredictRequest) -> Prediction | None:
        """Worker-safe: embed (cached) and predict. Returns None when the request is
        already stale. Raises ValueError for unusable slices (NaN)."""

    def prepare_slice(self, key: SliceKey | None = None) -> bool:
        """Worker-safe: compute and cache the embedding of a slice (default: current) so
        the first click there is fast. Returns True if it computed one."""

    def apply(self, answer: Prediction | PropagationResult | None) -> bool:
        """Main thread: store a worker's answer. False (and nothing changes) when it is
        None or stale."""

    def discard(self, request: PredictRequest | PropagationRequest) -> bool:
        """Main thread: after ``compute`` failed, remove the step that made the request
        (if it is still the latest), so the user's state is as before the prompt."""

    # ----------------------------------------------------------------- propagation
    def propagate(self, direction: str = "both", *, axis: int | None = None,
                  max_slices: int | None = None, min_iou: float = 0.5,
                  max_area_change: float = 2.0, use_box: bool = True,
                  progress: Callable[[int, int], None] | None = None,
                  should_cancel: Callable[[], bool] | None = None) -> PropagationResult:
        """Synchronous propagation: propagation_request + compute_propagation + apply."""

    def propagation_request(self, direction: str = "both", *, axis: int | None = None,
                            max_slices: int | None = None, min_iou: float = 0.5,
                            max_area_change: float = 2.0,
                            use_box: bool = True) -> PropagationRequest:
        """Main thread: check and freeze a propagation from the current slice's mask along
        spatial ``axis`` (default: the last non-displayed axis), ``direction`` "forward"
        (+1), "backward" (-1) or "both", at most ``max_slices`` slices each way.
        ValueError if the current slice has no mask or a prediction is pending."""

    def compute_propagation(self, request: PropagationRequest,
                            progress: Callable[[int, int], None] | None = None,
                            should_cancel: Callable[[], bool] | None = None
                            ) -> PropagationResult:
        """Worker-safe: on each next slice prompt with the previous slice's low-res logits
        (mask_input), a positive click at its deepest interior point and (``use_box``) its
        box; stop a direction when predicted IoU < min_iou, the area changes by more than
        ``max_area_change`` times, the mask is empty, a user-prompted slice or the range
        end is reached. ``progress(done, total)`` after each slice; ``should_cancel()``
        checked before each slice. Apply the result with ``apply``: one undo step."""

    # ----------------------------------------------------------------- export
    def object_masks(self) -> dict[SliceKey, SparseMask]:
        """The current object's non-empty masks by slice."""

    def paint_object(self, target, value: int = 1) -> None:
        """Write the current object's masks into ``target`` (spatial shape), e.g. a preview
        Labels layer's data; other voxels untouched."""

    def export(self) -> tuple[object, dict]:
        """(labels, metadata) where metadata = {"objects": self.objects, "spatial_shape",
        "displayed_axes", ...} (JSON-friendly)."""
