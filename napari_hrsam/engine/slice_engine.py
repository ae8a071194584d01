"""One slice in, one mask out: slice reading, contrast, embedding cache, predictor call.

This is the only module that speaks the predictor's language: (x, y) = (col, row)
points in the pixels of the image it was given. Safe to call from one worker thread
while the main thread edits the session (it reads only immutable values).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import binary_dilation

from .embedding_cache import EmbeddingCache
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
OUTSIDE_LOGIT = -20.0  # as hrsam_model.zoom's: surely background
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
    clicked_pieces_only: object  # the predictor's mask policy (None: it has none)
    clicks_hold: object


class SliceEngine:
    """Predicts masks on slices of one image with one predictor."""

    def __init__(self, layout: ImageLayout, predictor, cache: EmbeddingCache, data_key,
                 channels: tuple[int, ...], contrast_limits, zoom_in: bool = False):
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
        from hrsam_model.zoom import move_logits  # torch is loaded already: the model has run

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
                              self.zoom_in, self.target_size, self._model_token,
                              getattr(self.predictor, "clicked_pieces_only", None),
                              getattr(self.predictor, "clicks_hold", None))

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
            data = self.layout.read(key, region.box)
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

    def predict(self, key: SliceKey, region: Region, prompts: Prompts,
                mask_input: np.ndarray | None = None, user_clicks: bool = True) -> SliceResult:
        """Mask of ``prompts`` on slice ``key`` seen through ``region``. Only ``user_clicks``
        are held (``hrsam_model.postprocess.hold_clicks``): a click that propagation placed is
        the model's own guess, and the object must stay free to vanish under it. The result
        carries the settings it was made under; where the model sees no contrast it is empty,
        with IoU 0 and a ``warning`` (the model would invent an object)."""
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
            hold = {} if user_clicks else {"clicks_hold": False}  # the Predictor holds clicks by default
            answer = self.predictor.predict(points=points, labels=labels, box=box, mask_input=mask_input, **hold)
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
            if inside and user_clicks:
                # drawn from the logits, not from the coarse mask: the clicks that mask holds
                # (all of them when the predictor holds clicks) must hold on the slice too
                kept = [(p, v) for (p, v), (x, y) in zip(inside, points)
                        if coarse[min(int(round(y)), coarse.shape[0] - 1),
                                  min(int(round(x)), coarse.shape[1] - 1)] == (v == 1)]
                mask = hold_clicks_on_slice(mask, [p for p, _ in kept], [v for _, v in kept])
        else:
            mask = paste(coarse, region, shape)
        return SliceResult(mask, logits, float(answer.iou), region, prompts, settings=settings)


def paste(mask: np.ndarray, region: Region, shape: tuple[int, int]) -> SparseMask:
    """A mask on the predictor's grid (region.size) as a SparseMask on the slice.

    Upsampling (nearest) touches only the mask's bounding box, so a small object in a
    huge window costs little memory."""
    top, left = region.box[:2]
    if mask.shape == region.shape:
        return SparseMask.from_dense(mask, offset=(top, left), shape=shape)
    small = SparseMask.from_dense(mask)
    if small.empty:
        return SparseMask.from_dense(np.zeros((0, 0), bool), shape=shape)
    (h, w), (oh, ow) = region.shape, mask.shape
    src_rows, src_cols = _nearest(np.arange(h), h, oh), _nearest(np.arange(w), w, ow)
    r0, c0, r1, c1 = small.bbox
    rows = np.flatnonzero((src_rows >= r0) & (src_rows < r1))
    cols = np.flatnonzero((src_cols >= c0) & (src_cols < c1))
    crop = mask[src_rows[rows][:, None], src_cols[cols][None, :]]
    return SparseMask.from_dense(crop, offset=(top + rows[0], left + cols[0]), shape=shape)


def paste_logits(logits: np.ndarray, coarse: np.ndarray, region: Region,
                 shape: tuple[int, int], canvas: int, resized: tuple[int, int]) -> SparseMask:
    """Like ``paste`` for a shrunk window, but thresholds the low-res logits bilinearly
    interpolated straight to slice pixels (smooth edges instead of blocks), only inside
    the coarse mask's bounding box (plus a margin) and next to the coarse mask, so pieces
    the predictor dropped (``clicked_pieces_only``) do not come back from the logits."""
    small = SparseMask.from_dense(coarse)
    if small.empty:
        return SparseMask.from_dense(np.zeros((0, 0), bool), shape=shape)
    (h, w), (oh, ow) = region.shape, coarse.shape
    low = logits.reshape(logits.shape[-2:])
    r0, c0, r1, c1 = small.bbox
    rows = _window(r0, r1, oh, h)
    cols = _window(c0, c1, ow, w)
    by_rows = _bilinear(rows, h, resized[0], canvas, low.shape[0])
    by_cols = _bilinear(cols, w, resized[1], canvas, low.shape[1])
    mask = (by_rows @ low @ by_cols.T) > 0
    # the coarse mask grown by one pixel, around its bounding box only (the window reaches one
    # coarse pixel past it)
    top_c, left_c = max(r0 - 2, 0), max(c0 - 2, 0)
    near = binary_dilation(coarse[top_c:r1 + 2, left_c:c1 + 2], structure=np.ones((3, 3), bool))
    src_rows, src_cols = _nearest(rows, h, oh) - top_c, _nearest(cols, w, ow) - left_c
    mask &= near[src_rows[:, None], src_cols[None, :]]
    top, left = region.box[:2]
    return SparseMask.from_dense(mask, offset=(top + rows[0], left + cols[0]), shape=shape)


def hold_clicks_on_slice(mask: SparseMask, points, labels) -> SparseMask:
    """``hrsam_model.postprocess.hold_clicks`` for clicks ((row, col) slice pixels) on a
    sparse mask: only its bounding box and the held clicks' discs are ever dense."""
    from hrsam_model.postprocess import CLICK_RADIUS, hold_clicks

    height, width = mask.shape
    r0, c0, r1, c1 = mask.bbox
    clicks = [(min(max(int(round(r)), 0), height - 1), min(max(int(round(c)), 0), width - 1), int(v))
              for (r, c), v in zip(points, labels)]
    wrong = [(r, c) for r, c, v in clicks
             if (r0 <= r < r1 and c0 <= c < c1 and bool(mask.crop[r - r0, c - c0])) != (v == 1)]
    if not wrong:
        return mask
    rows = [r for r, _ in wrong] + ([r0, r1 - 1] if not mask.empty else [])
    cols = [c for _, c in wrong] + ([c0, c1 - 1] if not mask.empty else [])
    top, left = max(min(rows) - CLICK_RADIUS, 0), max(min(cols) - CLICK_RADIUS, 0)
    bottom, right = min(max(rows) + CLICK_RADIUS + 1, height), min(max(cols) + CLICK_RADIUS + 1, width)
    dense = np.zeros((bottom - top, right - left), bool)
    if not mask.empty:
        dense[r0 - top:r1 - top, c0 - left:c1 - left] = mask.crop
    held = hold_clicks(dense, [(c - left, r - top) for r, c, _ in clicks if top <= r < bottom and left <= c < right],
                       [v for r, c, v in clicks if top <= r < bottom and left <= c < right])
    return SparseMask.from_dense(held, offset=(top, left), shape=mask.shape)


def _nearest(index: np.ndarray, full: int, small: int) -> np.ndarray:
    """Index on a grid of `small` pixels whose pixel holds each full-grid pixel centre."""
    return np.minimum(((index + 0.5) * small / full).astype(np.intp), small - 1)


def _window(start: int, stop: int, small: int, full: int) -> np.ndarray:
    """Full-resolution indices covering coarse pixels start..stop plus one on each side."""
    lo = max(0, int(np.floor((start - 1) * full / small)))
    hi = min(full, int(np.ceil((stop + 1) * full / small)))
    return np.arange(lo, hi)


def _bilinear(index: np.ndarray, full: int, resized: int, canvas: int, low: int) -> np.ndarray:
    """Matrix (len(index), low) interpolating low-res logits at full-res pixel centres:
    full pixel -> resized image pixel -> model canvas -> low-res grid (half-pixel centres,
    like torch's align_corners=False)."""
    from hrsam_model.zoom import bilinear_matrix  # torch is loaded already: the model has run

    on_resized = (index + 0.5) * resized / full - 0.5
    return bilinear_matrix((on_resized + 0.5) * low / canvas - 0.5, low)
