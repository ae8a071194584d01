"""Deterministic stand-ins for hrsam_model.Predictor and lazy arrays (session tests).

The fake "model" thresholds the windowed image at the middle of its contrast range and
returns the bright connected components that hold a positive click (minus those holding
a negative click), clipped to the box. So a test knows the right answer exactly and
checks the session's logic, not a network.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class FakeEmbedding:
    image: np.ndarray  # float32 0..1, (rows, cols)

    @property
    def nbytes(self) -> int:
        return int(self.image.nbytes)

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.image.shape

from napari_hrsam.engine.mask_policy import MaskPolicy  # noqa: E402

# the clicked pieces without held clicks: tests of the session's logic see exact components
NO_HOLD = MaskPolicy(keep_clicked_pieces=True, hold_clicks=False)


@dataclass
class FakeResult:
    mask: np.ndarray
    logits: np.ndarray
    iou: float


class FakePredictor:
    """Same methods as hrsam_model.Predictor; records what it was given.

    Like the decoder, it answers "things like this": a positive click returns every bright
    piece without a negative click (the session's mask policy keeps the clicked ones). With a
    box, only the clicked pieces (or, without clicks, the bright pixels) inside it."""

    def __init__(self, target_size: int = 64, iou: float = 0.9, sam_layout: bool = False):
        self.target_size = target_size
        self.iou = iou
        # sam_layout: logits cover a target_size square canvas at 1/4 resolution with the
        # image in its top-left corner, like hrsam_model.Predictor; else a plain [::4] grid
        self.sam_layout = sam_layout
        self.embed_calls: list[dict] = []
        self.predict_calls: list[dict] = []
        self._embedding = None

    def embed(self, image, contrast_limits=None):
        image = np.asarray(image, np.float32)
        if image.ndim == 3:  # colour: any bright channel counts
            image = image.max(axis=2)
        lo, hi = contrast_limits if contrast_limits is not None else (image.min(), image.max())
        scaled = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1).astype(np.float32)
        self.embed_calls.append({"shape": image.shape, "contrast_limits": contrast_limits})
        embedding = FakeEmbedding(scaled)
        if self.sam_layout:
            assert max(image.shape) == self.target_size, "sam_layout fakes no resizing"
            embedding.target_size = self.target_size
            embedding.resized_shape = image.shape
        return embedding

    def set_embedding(self, embedding):
        self._embedding = embedding

    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask=False):
        image = self._embedding.image
        self.predict_calls.append({"points": None if points is None else np.array(points),
                                   "labels": None if labels is None else np.array(labels),
                                   "box": None if box is None else np.array(box),
                                   "mask_input": mask_input, "shape": image.shape})
        components, _ = ndimage.label(image > 0.5)
        mask = np.zeros(image.shape, bool)
        points = [] if points is None else np.asarray(points)
        labels = [] if labels is None else np.asarray(labels)
        keep, drop = set(), set()
        for (x, y), label in zip(points, labels):
            r = int(np.clip(round(float(y)), 0, image.shape[0] - 1))
            c = int(np.clip(round(float(x)), 0, image.shape[1] - 1))
            if components[r, c]:
                (keep if label == 1 else drop).add(components[r, c])
        if keep and box is None:  # the decoder's "things like this"
            keep = set(range(1, components.max() + 1))
        for component in keep - drop:
            mask |= components == component
        if box is not None:
            x0, y0, x1, y1 = (int(round(float(v))) for v in box)
            inside = np.zeros_like(mask)
            inside[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
            if not keep:  # a box alone selects the bright pixels inside it
                mask = (image > 0.5) & inside
            mask &= inside
        if self.sam_layout:
            side = self.target_size
            canvas = np.zeros((side, side), np.float32)
            canvas[:mask.shape[0], :mask.shape[1]] = mask
            low = canvas.reshape(side // 4, 4, side // 4, 4).mean(axis=(1, 3))
            logits = (20 * (low - 0.5))[None]
        else:
            logits = np.where(mask, 5.0, -5.0).astype(np.float32)[None, ::4, ::4].copy()
        iou = self.iou if mask.any() else 0.0
        return FakeResult(mask, logits, iou)


class CountingArray:
    """Wraps an array and records every __getitem__ index (lazy-access checks)."""

    def __init__(self, array):
        self.array = array
        self.reads: list = []

    @property
    def shape(self):
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self):
        return len(self.array.shape)

    def __getitem__(self, index):
        self.reads.append(index)
        return self.array[index]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole array was converted with np.asarray")


def disk(shape, centre, radius, value=200, dtype=np.uint8):
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    image = np.zeros(shape, dtype)
    image[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2] = value
    return image


def cylinder(depth=20, first=5, last=14, shape=(64, 64), centre=(30, 30), radius=10):
    """A stack whose slices first..last hold the same disk (a structure to propagate through)."""
    volume = np.zeros((depth,) + shape, np.uint8)
    for z in range(first, last + 1):
        volume[z] = disk(shape, centre, radius)
    return volume


class BlobPredictor(FakePredictor):
    """Invents an object like a real model on an image with nothing in it: whatever the
    image, a disk of radius 10 around the first positive click, predicted IoU 0.7."""

    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask=False):
        result = super().predict(points, labels, box, mask_input, multimask)
        x, y = np.asarray(points)[0]
        rows, cols = np.ogrid[:result.mask.shape[0], :result.mask.shape[1]]
        blob = (rows - y) ** 2 + (cols - x) ** 2 <= 10 ** 2
        return FakeResult(blob, np.where(blob, 5.0, -5.0).astype(np.float32)[None, ::4, ::4].copy(), 0.7)
