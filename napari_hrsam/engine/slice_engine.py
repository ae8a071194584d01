"""One slice in, one mask out: slice reading, contrast, embedding cache, predictor call, and the
mask policy applied to the decoder's answer.

This is the only module that speaks the predictor's language: (x, y) = (col, row) points in the
pixels of the image it was given. Safe to call from one worker thread while the main thread edits
the session (it reads only immutable values).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from hrsam_model.pixels import resized_shape

from .embedding_cache import EmbeddingCache
from .mask_policy import MaskPolicy
from .resampling import OUTSIDE_LOGIT, move_logits, paste, paste_logits
from .slicing import (
    ImageLayout,
    check_finite,
    contrast_step,
    model_image,
    no_contrast,
    percentile_limits,
)
from .state import Prompts, Region, SliceKey, SliceResult, SparseMask
from .windows import choose_region, shrink, to_region, zoom_region

AUTO_LIMITS_KEPT = 1024  # slices whose percentile limits are remembered
NO_CONTRAST = ("no contrast: within the contrast limits {limits} every pixel the model sees has "
               "the same value, so there is no object to find; the mask is left empty (widen "
               "the contrast limits or choose another slice)")


class NoContrastWarning(UserWarning):
    """The slice (or the window of it the model sees) has no contrast: the mask is empty."""


@dataclass(frozen=True)
class EngineSettings:
    """Everything besides the slice, its window and the prompts that a mask depends on.
    Results made under equal settings for equal prompts on a slice are interchangeable."""

    contrast_limits: tuple | None  # the session's (lo, hi) per channel; None: per-slice percentiles
    channels: tuple[int, ...]
    zoom_in: bool
    target_size: int
    model: tuple
    mask_policy: MaskPolicy


class SliceEngine:
    """Predicts masks on slices of one image with one predictor."""

    def __init__(self, layout: ImageLayout, predictor, cache: EmbeddingCache, data_key,
                 channels: tuple[int, ...], contrast_limits, zoom_in: bool = False,
                 mask_policy: MaskPolicy = MaskPolicy()):
        for method in ("embed", "set_embedding", "predict"):
            if not callable(getattr(predictor, method, None)):
                raise ValueError(f"predictor has no {method}() method: pass an "
                                 "hrsam_model.Predictor")
        self.layout = layout
        self.predictor = predictor
        self.cache = cache
        self.data_key = data_key
        self.channels = channels
        self.contrast_limits = contrast_limits  # None or one (lo, hi) per channel
        self.zoom_in = bool(zoom_in)  # a window around the object (see with_closer_look)
        self.mask_policy = mask_policy  # what the shown mask keeps of the decoder's
        self.target_size = int(getattr(predictor, "target_size", 1024))
        self._model_token = (type(predictor).__name__, id(predictor),
                             id(getattr(predictor, "model", None)))
        self._auto_limits: OrderedDict = OrderedDict()
        self._flat: OrderedDict = OrderedDict()  # (slice, window, limits) -> no contrast
        self._lock = threading.RLock()  # the predictor holds one embedding at a time

    def region(self, key: SliceKey, prompts: Prompts, previous: SliceResult | None = None,
               zoom: bool = True) -> Region:
        """The window of slice ``key`` to decode ``prompts`` in: the whole slice (or, for a huge
        slice, a window around the prompts, kept from ``previous`` while it fits), or with
        zoom-in (and ``zoom``) a window around the object once it has a mask and several clicks."""
        shape = self.layout.slice_shape(key)
        old = previous.region if previous is not None else None
        if zoom and self.zoom_in and previous is not None and len(prompts.points) > 1 and prompts.box is None:
            bbox = None if previous.mask.empty else previous.mask.bbox
            return zoom_region(shape, prompts, bbox, self.target_size, old)
        return choose_region(shape, prompts, self.target_size, old)

    def with_closer_look(self, key: SliceKey, prompts: Prompts, result: SliceResult) -> SliceResult:
        """Zoom-in at the first click: when ``result`` came from the unzoomed view (no previous
        mask), it gets ``look_closer``, the window around its mask where the same clicks are
        decoded next, without that coarse mask as a prompt (fed back, it held the closer look
        back on the validation splits)."""
        if (not self.zoom_in or prompts.box is not None or result.mask.empty
                or result.region != self.region(key, prompts)):
            return result
        region = zoom_region(self.layout.slice_shape(key), prompts, result.mask.bbox,
                             self.target_size)
        return result if region == result.region else replace(result, look_closer=region)

    def mask_input(self, previous: SliceResult, region: Region) -> np.ndarray | None:
        """The previous logits as a mask prompt for ``region``: as they are in the same
        window; moved into a new window with zoom-in; else none."""
        if region == previous.region:
            return previous.logits
        if not self.zoom_in:
            return None
        old = previous.region
        return move_logits(previous.logits, old.box, old.size, region.box, region.size, self.target_size)

    def full_region(self, key: SliceKey) -> Region | None:
        """The whole-slice region, or None for huge slices (their window needs prompts)."""
        shape = self.layout.slice_shape(key)
        region = choose_region(shape, Prompts(points=((0.0, 0.0),), labels=(1,)),
                               self.target_size)
        return region if region.box == (0, 0) + shape else None

    @property
    def settings(self) -> EngineSettings:
        """The current settings (read them once per prediction: the main thread may change them)."""
        limits = self.contrast_limits
        return EngineSettings(None if limits is None else tuple(limits), self.channels,
                              self.zoom_in, self.target_size, self._model_token, self.mask_policy)

    def limits(self, key: SliceKey, settings: EngineSettings | None = None) -> list[tuple[float, float]]:
        """Contrast limits per channel: the session's, else 0..255 for 8-bit images, else
        percentiles of a strided subsample of the slice (cached per slice)."""
        chosen = (settings or self.settings).contrast_limits
        if chosen is not None:
            return list(chosen)
        if self.layout.dtype == np.uint8:  # as napari and the model's training photos
            return [(0.0, 255.0)] * self.layout.n_channels
        with self._lock:
            limits = self._auto_limits.get(key)
        if limits is None:
            step = contrast_step(*self.layout.slice_shape(key))
            limits = percentile_limits(self.layout.read(key, step=step))
            with self._lock:
                self._auto_limits[key] = limits
                while len(self._auto_limits) > AUTO_LIMITS_KEPT:
                    self._auto_limits.popitem(last=False)
        return limits

    def embedding(self, key: SliceKey, region: Region, settings: EngineSettings | None = None):
        """(embedding, computed) for the slice window ``region``, cached."""
        limits = self.limits(key, settings)
        cache_key = (self.data_key, self._model_token, self.target_size, key, region,
                     self.channels, tuple(limits))

        def compute():
            # the model sees the window with its long side at target_size: a pyramid level that
            # holds that many pixels serves (shrink then brings it to region.size, what the
            # prompts' coordinates refer to)
            needed = resized_shape(*region.size, self.target_size) if max(region.size) > self.target_size \
                else region.size
            data = self.layout.read_for_model(key, region.box, needed)
            check_finite(data)
            self._remember_flat((key, region, tuple(limits)), no_contrast(data, self.channels, limits))
            image, image_limits = model_image(shrink(data, region.size), self.channels, limits)
            del data
            return self.predictor.embed(image, contrast_limits=image_limits)

        with self._lock:
            return self.cache.get_or_compute(cache_key, compute)

    def no_contrast(self, key: SliceKey, region: Region, limits) -> bool:
        """Whether the model sees one value only in ``region`` (``slicing.no_contrast``);
        known from the embedding's read, else read again (an embedding another session made)."""
        flat_key = (key, region, tuple(limits))
        with self._lock:
            flat = self._flat.get(flat_key)
        if flat is None:
            flat = no_contrast(self.layout.read(key, region.box), self.channels, limits)
            self._remember_flat(flat_key, flat)
        return flat

    def _remember_flat(self, flat_key, flat: bool) -> None:
        with self._lock:
            self._flat[flat_key] = flat
            self._flat.move_to_end(flat_key)
            while len(self._flat) > AUTO_LIMITS_KEPT:
                self._flat.popitem(last=False)

    def predict_many(self, embedding, region: Region, points) -> tuple[np.ndarray, np.ndarray]:
        """One decoder call for many single positive clicks ((row, col) slice pixels inside
        ``region``, whose ``embedding`` this is): (low-res logits (B, 4h, 4w) on the model
        canvas, the decoder's IoU estimates (B,)). Segment all's batches."""
        xy = np.array([to_region(region, r, c)[::-1] for r, c in points], np.float32)
        with self._lock:
            self.predictor.set_embedding(embedding)
            return self.predictor.predict_many(xy)

    def predict(self, key: SliceKey, region: Region, prompts: Prompts,
                mask_input: np.ndarray | None = None, user_clicks: bool = True) -> SliceResult:
        """Mask of ``prompts`` on slice ``key`` seen through ``region``: the decoder's mask at slice
        resolution with ``mask_policy`` applied to the clicks the model was shown (only
        ``user_clicks`` are held: a click that propagation placed is the model's own guess, and
        the object must stay free to vanish under it). The result carries the settings it was
        made under; where the model sees no contrast it is empty, with IoU 0 and a ``warning``
        (the model would invent an object)."""
        settings = self.settings
        limits = self.limits(key, settings)
        points = labels = box = None
        inside = [(p, v) for p, v in zip(prompts.points, prompts.labels) if region.contains(*p)]
        if inside:
            points = np.array([to_region(region, r, c)[::-1] for (r, c), _ in inside],
                              np.float32)
            labels = np.array([v for _, v in inside], np.int64)
        if prompts.box is not None:
            r0, c0, r1, c1 = prompts.box
            (y0, x0), (y1, x1) = to_region(region, r0, c0), to_region(region, r1, c1)
            box = np.array([x0, y0, x1, y1], np.float32)
        with self._lock:
            embedding, _ = self.embedding(key, region, settings)
            self.predictor.set_embedding(embedding)
            # single-mask mode (mask token 0), as HRSAM is trained and evaluated; SAM's multimask
            # tokens are not click-trained in our model, so never pick among them
            answer = self.predictor.predict(points=points, labels=labels, box=box, mask_input=mask_input)
        shape = self.layout.slice_shape(key)
        logits = np.asarray(answer.logits, np.float32)
        if self.no_contrast(key, region, limits):
            text = NO_CONTRAST.format(limits=", ".join(f"{lo:g}..{hi:g}" for lo, hi in limits))
            return SliceResult(SparseMask.from_dense(np.zeros((0, 0), bool), shape=shape),
                               np.full_like(logits, OUTSIDE_LOGIT), 0.0, region, prompts,
                               settings=settings, warning=text)
        coarse = np.asarray(answer.mask, bool)
        if coarse.shape != region.shape and hasattr(embedding, "resized_shape"):
            mask = paste_logits(logits, coarse, region, shape, embedding.target_size,
                                embedding.resized_shape)
        else:
            mask = paste(coarse, region, shape)
        model_empty = mask.empty
        mask = settings.mask_policy.apply(mask, [p for p, _ in inside], [v for _, v in inside],
                                          has_box=prompts.box is not None, user_clicks=user_clicks,
                                          painted=prompts.painted, erased=prompts.erased)
        return SliceResult(mask, logits, float(answer.iou), region, prompts, settings=settings,
                           model_empty=model_empty)
