"""Zoom-in: segment in a crop around the object, seen at the full input size.

Thin or small objects (bacteria a few pixels wide) cover less than one 16 px token when a whole
image is shrunk into a 1024 px input. RITM's evaluation (and FocalClick/FocusCut after it) zooms
in: from the second click on, the model sees a crop around the current mask and the clicks,
expanded by `expansion` and at least `min_crop` pixels, resized to the model's input. The crop
is kept while it still overlaps the new one by IoU >= `keep_iou`, so most clicks reuse its
embedding. HRSAM's own protocol does not zoom; this is an option (`Predictor` stays the default).

With ``skip_clicks=0`` (what the napari widget does) the first click zooms too: a pass on the
whole image finds the object, then the same clicks are decoded again in the crop around that
first mask, without it as a mask prompt (a coarse first mask fed back held the crop's pass back
on the validation splits). Each new crop costs one encoder pass, counted in that click's time.
"""
from __future__ import annotations

import numpy as np
import torch

from .predictor import Prediction, Predictor
from .transforms import check_image, resized_shape, to_display_range

OUTSIDE_LOGIT = -20.0  # where a crop's previous mask is unknown: surely background


class ZoomInPredictor:
    """A `Predictor` that zooms in on the object from click `skip_clicks + 1` on (RITM: 1;
    0 = the first click too, after a whole-image pass has found the object).

    >>> zoom = ZoomInPredictor(Predictor(build_model("hrsam_tiny", pretrained=True)))
    >>> zoom.set_image(image)
    >>> res = zoom.predict(points=[[120, 80]], labels=[1])
    >>> res = zoom.predict(points=[[120, 80], [140, 60]], labels=[1, 0], mask_input=res.logits)

    mask_input must be the logits of this predictor's previous result (they may belong to a crop);
    other arrays are refused. Boxes and multimask are not supported here.
    """

    def __init__(self, predictor: Predictor, expansion: float = 1.4, min_crop: int = 200,
                 skip_clicks: int = 1, keep_iou: float = 0.5):
        if expansion < 1 or min_crop < 16 or skip_clicks < 0 or not 0 <= keep_iou <= 1:
            raise ValueError("need expansion >= 1, min_crop >= 16, skip_clicks >= 0, 0 <= keep_iou <= 1")
        self.predictor = predictor
        self.expansion, self.min_crop = float(expansion), int(min_crop)
        self.skip_clicks, self.keep_iou = int(skip_clicks), float(keep_iou)
        self._image = self._display = self._full = None
        self._window = None  # (box, embedding) of the last crop: reused while the box stays
        self._last = None  # (logits handed out, their box, the mask's bbox in the image or None)

    @property
    def model(self):
        return self.predictor.model

    @property
    def device(self):
        return self.predictor.device

    @property
    def target_size(self):
        return self.predictor.target_size

    def set_image(self, image, contrast_limits=None):
        image = check_image(image)
        self._full = self.predictor.set_image(image, contrast_limits)
        self._image = image
        # crops are cut from the display range of the whole image: every crop shares its contrast
        self._display = to_display_range(image, contrast_limits)
        self._window = self._last = None
        return self._full

    @torch.no_grad()
    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask=False):
        if self._image is None:
            raise ValueError("no image set: call set_image(image) first")
        if box is not None or multimask:
            raise ValueError("ZoomInPredictor takes clicks only (no box, no multimask)")
        if points is None or labels is None or len(points) == 0:
            raise ValueError("give clicks: points (N, 2) as (x, y) with N labels (1 inside, 0 outside)")
        points = np.asarray(points, np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points must have shape (N, 2) as (x, y); got {points.shape}")
        previous = self._previous(mask_input)
        labels = np.asarray(labels).reshape(-1)
        shape = self._image.shape[:2]
        crop = (0, 0) + shape
        if previous is not None and len(points) > self.skip_clicks:
            crop = zoom_box(shape, previous[2], points[:, ::-1], self.expansion, self.min_crop,
                            previous[1], self.keep_iou)
        feed = None if previous is None else self._logits_in(crop, previous)
        result = self._predict_in(crop, points, labels, feed)
        if previous is None and self.skip_clicks == 0 and self._last[2] is not None:
            # the whole view found the object: look again, closer (the coarse mask is not fed)
            closer = zoom_box(shape, self._last[2], points[:, ::-1], self.expansion, self.min_crop)
            if closer != crop:
                result = self._predict_in(closer, points, labels, None)
        return result

    def _predict_in(self, crop, points, labels, feed) -> Prediction:
        """Decode the clicks inside `crop` (those outside it are not shown to the model)."""
        self.predictor.set_embedding(self._embedding_of(crop))
        r0, c0, r1, c1 = crop
        inside = ((points[:, 0] >= c0 - 0.5) & (points[:, 0] <= c1 - 0.5)
                  & (points[:, 1] >= r0 - 0.5) & (points[:, 1] <= r1 - 0.5))
        result = self.predictor.predict(points=points[inside] - [c0, r0], labels=labels[inside],
                                        mask_input=feed)
        shape = self._image.shape[:2]
        mask = np.zeros(shape, bool)
        mask[r0:r1, c0:c1] = result.mask
        rows, cols = np.nonzero(result.mask)
        bbox = None if rows.size == 0 else (r0 + rows.min(), c0 + cols.min(), r0 + rows.max() + 1,
                                            c0 + cols.max() + 1)
        self._last = (result.logits, crop, bbox)
        return Prediction(mask, result.logits, result.iou)

    # ----- crops -----------------------------------------------------------------------
    def _embedding_of(self, crop):
        if crop == (0, 0) + self._image.shape[:2]:
            return self._full
        if self._window is None or self._window[0] != crop:
            r0, c0, r1, c1 = crop
            self._window = crop, self.predictor.embed(self._display[r0:r1, c0:c1], (0.0, 255.0))
        return self._window[1]

    def _previous(self, mask_input):
        if mask_input is None:
            return None
        if self._last is None or mask_input is not self._last[0]:
            raise ValueError("mask_input must be the logits of this ZoomInPredictor's previous result")
        return self._last

    def _logits_in(self, crop, previous) -> np.ndarray:
        logits, old, _ = previous
        if old == crop:
            return logits
        return move_logits(logits, old, _box_shape(old), crop, _box_shape(crop), self.predictor.target_size)


def zoom_box(shape, mask_bbox, clicks, expansion: float = 1.4, min_crop: int = 200,
             previous=None, keep_iou: float = 0.5) -> tuple[int, int, int, int]:
    """RITM's zoom-in window (row0, col0, row1, col1), end exclusive, on an image of `shape`.

    The extent of the current mask (`mask_bbox`, end exclusive; None when empty) and of the clicks
    (N, 2) (row, col) is expanded by `expansion`, to at least `min_crop` pixels, and moved inside
    the image. `previous` is kept instead when it holds every click and overlaps the new window
    by IoU >= keep_iou, so its embedding is reused. Pure NumPy (the napari session uses it)."""
    clicks = np.asarray(clicks, np.float64).reshape(-1, 2)
    rows, cols = list(clicks[:, 0]), list(clicks[:, 1])
    if mask_bbox is not None:
        rows += [mask_bbox[0], mask_bbox[2] - 1]
        cols += [mask_bbox[1], mask_bbox[3] - 1]
    r0, c0, r1, c1 = min(rows), min(cols), max(rows), max(cols)
    height, width = shape
    top, bottom = _span((r0 + r1) / 2, max((r1 - r0 + 1) * expansion, min_crop), height)
    left, right = _span((c0 + c1) / 2, max((c1 - c0 + 1) * expansion, min_crop), width)
    box = (top, left, bottom, right)
    if previous is None:
        return box
    a, b, c, d = previous
    holds_clicks = ((clicks[:, 0] >= a) & (clicks[:, 0] <= c - 1) & (clicks[:, 1] >= b)
                    & (clicks[:, 1] <= d - 1)).all()
    return tuple(previous) if holds_clicks and _box_iou(box, previous) >= keep_iou else box


def move_logits(logits: np.ndarray, old_box, old_size, new_box, new_size, canvas: int) -> np.ndarray:
    """Low-res logits (SAM's layout: 1/4 of the model canvas) of the window ``old_box`` (row0,
    col0, row1, col1 in image pixels, handed to the predictor resized to ``old_size``) resampled
    bilinearly onto the low-res grid of ``new_box`` / ``new_size``. Cells that the old window did
    not see, and the canvas padding, get OUTSIDE_LOGIT. Pure NumPy (the napari session uses it)."""
    low = np.asarray(logits, np.float32).reshape(np.shape(logits)[-2:])
    side = canvas // 4
    old_resized, new_resized = resized_shape(*old_size, canvas), resized_shape(*new_size, canvas)
    cells = np.arange(side)
    by_axis, seen = [], []
    for axis in (0, 1):
        old_len, new_len = old_box[axis + 2] - old_box[axis], new_box[axis + 2] - new_box[axis]
        # new low-res cell centre -> new canvas -> image pixel -> old canvas -> old low-res cell
        on_canvas = (cells + 0.5) * 4 - 0.5
        on_image = (on_canvas + 0.5) * new_len / new_resized[axis] - 0.5 + new_box[axis]
        on_old = (on_image - old_box[axis] + 0.5) * old_resized[axis] / old_len / 4 - 0.5
        seen.append((on_canvas < new_resized[axis]) & (on_image >= old_box[axis] - 0.5)
                    & (on_image < old_box[axis + 2] - 0.5))
        by_axis.append(bilinear_matrix(on_old, low.shape[axis]))
    moved = by_axis[0] @ low @ by_axis[1].T
    moved[~(seen[0][:, None] & seen[1][None, :])] = OUTSIDE_LOGIT
    return moved[None].astype(np.float32)


def bilinear_matrix(positions: np.ndarray, size: int) -> np.ndarray:
    """(len(positions), size) matrix that samples a grid of `size` cells linearly at `positions`
    (cell units, clamped to the grid): rows of weights for one axis of a separable resize."""
    positions = np.clip(positions, 0, size - 1)
    below = np.floor(positions).astype(np.intp)
    above = np.minimum(below + 1, size - 1)
    weight = (positions - below).astype(np.float32)
    matrix = np.zeros((positions.size, size), np.float32)
    matrix[np.arange(positions.size), below] += 1 - weight
    matrix[np.arange(positions.size), above] += weight
    return matrix


def _box_shape(box) -> tuple[int, int]:
    return box[2] - box[0], box[3] - box[1]


def _span(centre: float, length: float, size: int) -> tuple[int, int]:
    length = int(min(np.ceil(length), size))
    start = int(np.clip(round(centre - length / 2), 0, size - length))
    return start, start + length


def _box_iou(a, b) -> float:
    rows = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    cols = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = rows * cols
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)
