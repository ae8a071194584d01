"""Zoom-in: after the first click, segment in a crop around the object, seen at the full input size.

Thin or small objects (bacteria a few pixels wide) cover less than one 16 px token when a whole
image is shrunk into a 1024 px input. RITM's evaluation (and FocalClick/FocusCut after it) zooms
in: from the second click on, the model sees a crop around the current mask and the clicks,
expanded by `expansion` and at least `min_crop` pixels, resized to the model's input. The crop
is kept while it still overlaps the new one by IoU >= `keep_iou`, so most clicks reuse its
embedding. HRSAM's own protocol does not zoom; this is an option (`Predictor` stays the default).

Each new crop costs one encoder pass, counted in that click's time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .predictor import Prediction, Predictor
from .transforms import check_image, logits_to_image, to_display_range

OUTSIDE_LOGIT = -20.0  # where a crop's previous mask is unknown: surely background


@dataclass(frozen=True)
class _Frame:
    """Where the last logits live: a crop box (row0, col0, row1, col1) and its embedding sizes."""

    box: tuple
    resized_shape: tuple
    target_size: int


class ZoomInPredictor:
    """A `Predictor` that zooms in on the object from click `skip_clicks + 1` on.

    >>> zoom = ZoomInPredictor(Predictor(build_model("hrsam_tiny", pretrained=True)))
    >>> zoom.set_image(image)
    >>> res = zoom.predict(points=[[120, 80]], labels=[1])
    >>> res = zoom.predict(points=[[120, 80], [140, 60]], labels=[1, 0], mask_input=res.logits)

    mask_input must be the logits of this predictor's previous result (they may belong to a crop);
    other arrays are refused. Boxes and multimask are not supported here.
    """

    def __init__(self, predictor: Predictor, expansion: float = 1.4, min_crop: int = 200,
                 skip_clicks: int = 1, keep_iou: float = 0.5):
        if expansion < 1 or min_crop < 16 or skip_clicks < 1 or not 0 <= keep_iou <= 1:
            raise ValueError("need expansion >= 1, min_crop >= 16, skip_clicks >= 1, 0 <= keep_iou <= 1")
        self.predictor = predictor
        self.expansion, self.min_crop = float(expansion), int(min_crop)
        self.skip_clicks, self.keep_iou = int(skip_clicks), float(keep_iou)
        self._image = self._display = self._limits = None
        self._last = None  # (logits array handed out, its _Frame, full-grid mask)

    @property
    def model(self):
        return self.predictor.model

    @property
    def device(self):
        return self.predictor.device

    @property
    def target_size(self):
        return self.predictor.target_size

    @property
    def clicked_pieces_only(self):
        return self.predictor.clicked_pieces_only

    def set_image(self, image, contrast_limits=None):
        image = check_image(image)
        self._image = image
        # crops are cut from the display range of the whole image: every crop shares its contrast
        self._display = to_display_range(image, contrast_limits)
        self._last = None
        self._limits = contrast_limits
        return self.predictor.set_image(image, contrast_limits)

    @torch.no_grad()
    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask=False):
        if self._image is None:
            raise ValueError("no image set: call set_image(image) first")
        if box is not None or multimask:
            raise ValueError("ZoomInPredictor takes clicks only (no box, no multimask)")
        points = np.asarray(points if points is not None else [], np.float64).reshape(-1, 2)
        previous = self._previous(mask_input)
        shape = self._image.shape[:2]
        if len(points) <= self.skip_clicks or previous is None:
            box_now = (0, 0) + shape
        else:
            box_now = self._crop_box(previous[2], points, previous[1].box)
        if box_now == (0, 0) + shape:
            self.predictor.set_image(self._image, self._limits)
        else:
            r0, c0, r1, c1 = box_now
            self.predictor.set_image(self._display[r0:r1, c0:c1], (0.0, 255.0))
        emb = self.predictor.embedding
        frame = _Frame(box_now, tuple(emb.resized_shape), emb.target_size)
        r0, c0, r1, c1 = box_now
        inside = ((points[:, 0] >= c0 - 0.5) & (points[:, 0] <= c1 - 0.5)
                  & (points[:, 1] >= r0 - 0.5) & (points[:, 1] <= r1 - 0.5))
        labels = np.asarray(labels).reshape(-1)
        feed = None if previous is None else self._logits_in(frame, previous)
        result = self.predictor.predict(points=points[inside] - [c0, r0], labels=labels[inside],
                                        mask_input=feed)
        mask = np.zeros(shape, bool)
        mask[r0:r1, c0:c1] = result.mask
        logits = result.logits
        self._last = (logits, frame, mask)
        return Prediction(mask, logits, result.iou)

    # ----- frames ----------------------------------------------------------------------
    def _previous(self, mask_input):
        if mask_input is None:
            return None
        if self._last is None or mask_input is not self._last[0]:
            raise ValueError("mask_input must be the logits of this ZoomInPredictor's previous result")
        return self._last

    def _crop_box(self, mask, points, old_box):
        rows, cols = np.nonzero(mask)
        rows = np.concatenate([rows, points[:, 1]])
        cols = np.concatenate([cols, points[:, 0]])
        clicks = np.stack([points[:, 1], points[:, 0]], axis=1)
        return zoom_box(mask.shape, (rows.min(), cols.min(), rows.max(), cols.max()), clicks,
                        self.expansion, self.min_crop, old_box, self.keep_iou)

    def _logits_in(self, frame: _Frame, previous) -> np.ndarray:
        """The previous logits moved to `frame`'s low-res canvas (unknown parts: background)."""
        logits, old, _ = previous
        if old == frame:
            return logits
        shape = self._image.shape[:2]
        low = torch.from_numpy(logits)[None]
        full = torch.full((1, 1) + shape, OUTSIDE_LOGIT)
        (a, b, c, d), size = old.box, (old.box[2] - old.box[0], old.box[3] - old.box[1])
        full[..., a:c, b:d] = logits_to_image(low, old.target_size, old.resized_shape, size)
        a, b, c, d = frame.box
        crop = full[..., a:c, b:d]
        side = frame.target_size // 4
        h, w = (max(1, round(n / 4)) for n in frame.resized_shape)
        out = torch.full((1, 1, side, side), OUTSIDE_LOGIT)
        out[..., :h, :w] = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)
        return out[0].numpy()


def zoom_box(shape, extent, clicks, expansion: float = 1.4, min_crop: int = 200,
             previous=None, keep_iou: float = 0.5) -> tuple[int, int, int, int]:
    """RITM's zoom-in window (row0, col0, row1, col1), end exclusive, on an image of `shape`.

    extent: (row0, col0, row1, col1), inclusive, of the current mask and the clicks; each side is
    expanded by `expansion`, to at least `min_crop` pixels, and moved inside the image.
    `previous` is kept instead when it holds every click (N, 2) (row, col) and overlaps the new
    window by IoU >= keep_iou, so its embedding is reused. Pure NumPy (the napari session uses it)."""
    height, width = shape
    r0, c0, r1, c1 = extent
    top, bottom = _span((r0 + r1) / 2, max((r1 - r0 + 1) * expansion, min_crop), height)
    left, right = _span((c0 + c1) / 2, max((c1 - c0 + 1) * expansion, min_crop), width)
    box = (top, left, bottom, right)
    if previous is None:
        return box
    a, b, c, d = previous
    clicks = np.asarray(clicks, np.float64).reshape(-1, 2)
    holds_clicks = ((clicks[:, 0] >= a) & (clicks[:, 0] <= c - 1) & (clicks[:, 1] >= b)
                    & (clicks[:, 1] <= d - 1)).all()
    return tuple(previous) if holds_clicks and _box_iou(box, previous) >= keep_iou else box


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
