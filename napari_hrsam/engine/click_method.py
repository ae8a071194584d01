"""The engine as a click-protocol method: ``hrsam eval``, the benchmarks and notebooks measure what
the widget runs.

``hrsam_model.evaluation.evaluate`` drives any object with ``set_image(image)`` and
``predict(points=, labels=, mask_input=)``. ``SessionMethod`` answers each call the way the widget
answers a click: one ``Session`` per object (a fresh one whenever ``mask_input`` is None), the
click added with ``Session.add_point`` (zoom-in's two passes included), the shown mask returned.
The embedding of each image is made once, in ``set_image`` (timed apart from the clicks, as the
widget prepares a slice when it is shown), and shared by every object on that image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .embedding_cache import EmbeddingCache
from .mask_policy import MaskPolicy
from .session import Session


@dataclass(frozen=True)
class ClickAnswer:
    mask: np.ndarray  # bool (H, W): what the user sees
    logits: object  # an opaque token: hand it back as the next click's mask_input
    iou: float | None


class SessionMethod:
    """Predictor-like access to the interactive engine for the click protocol.

    predictor: an ``hrsam_model.Predictor`` (or a ``LazyPredictor``); zoom_in, mask_policy and
    contrast_limits as ``Session`` takes them (None: the session's automatic limits).
    ``predict`` takes all clicks so far as (x, y) = (col, row) pixels; each call must add exactly
    one click to the previous call's (mask_input = its ``logits``), or start an object
    (mask_input None). Anything else raises ValueError: the engine has no other way in.
    """

    def __init__(self, predictor, *, zoom_in: bool = True, mask_policy: MaskPolicy = MaskPolicy(),
                 contrast_limits=None, cache_bytes: int = 1 << 30):
        self.predictor = predictor
        self.zoom_in = bool(zoom_in)
        self.mask_policy = mask_policy
        self.contrast_limits = contrast_limits
        self._cache = EmbeddingCache(cache_bytes)
        self._image = None
        self._data_key = None
        self._session = None

    @property
    def device(self):
        return getattr(self.predictor, "device", "cpu")

    @property
    def target_size(self) -> int:
        return self.predictor.target_size

    def set_image(self, image) -> None:
        """Make ``image`` current and encode it (whole slice; huge ones are windowed per click)."""
        self._image = np.asarray(image)
        self._data_key = object()
        self._session = None
        self._new_session().prepare_slice()

    def predict(self, points, labels, mask_input=None, box=None, multimask=False) -> ClickAnswer:
        if self._image is None:
            raise ValueError("no image set: call set_image(image) first")
        if box is not None or multimask:
            raise ValueError("SessionMethod takes clicks only (no box, no multimask)")
        points = np.asarray(points, np.float64).reshape(-1, 2)
        labels = np.asarray(labels).reshape(-1)
        if len(points) == 0 or len(points) != len(labels):
            raise ValueError(f"give clicks: {len(points)} points with {len(labels)} labels")
        if mask_input is None:
            self._session = self._new_session()
        elif self._session is None or mask_input is not self._session:
            raise ValueError("mask_input must be the logits of this method's previous answer")
        session = self._session
        if len(session.prompts.points) != len(points) - 1:
            raise ValueError("each call adds one click to the previous call's clicks")
        x, y = points[-1]
        session.add_point((float(y), float(x)), positive=bool(labels[-1] == 1))
        preview = session.preview
        mask = np.zeros(session.slice_shape, bool) if preview is None else preview
        return ClickAnswer(mask, session, session.iou)

    def _new_session(self) -> Session:
        return Session(self._image, self.predictor, contrast_limits=self.contrast_limits,
                       cache=self._cache, data_key=self._data_key, zoom_in=self.zoom_in,
                       mask_policy=self.mask_policy)


def model_method(choice, *, zoom_in: bool = True, mask_policy: MaskPolicy = MaskPolicy(),
                 contrast_limits=None) -> tuple[str, SessionMethod]:
    """(row label, method) for a ``ModelChoice`` as the widget runs it: its predictor behind a
    ``SessionMethod``. Slow: builds the network."""
    return method_label(choice, zoom_in, mask_policy), SessionMethod(
        choice.predictor(), zoom_in=zoom_in, mask_policy=mask_policy, contrast_limits=contrast_limits)


def method_label(choice, zoom_in: bool, mask_policy: MaskPolicy) -> str:
    """The evaluation tables' row label for a ``ModelChoice`` run with these settings."""
    return (f"{choice.name}@{choice.target_size}"
            + ("" if mask_policy.keep_clicked_pieces else " all pieces")
            + ("" if mask_policy.hold_clicks else " clicks not held")
            + (" zoom-in" if zoom_in else "")
            + (" (RANDOM)" if choice.weights()[0] == "random" else ""))
