"""Classic interactive-segmentation baselines behind the predictor interface the runner uses:
``set_image(image)`` then ``predict(points=(N,2) (x, y), labels=(N,) 1/0, mask_input=None)``
returning an object with ``.mask`` (bool HxW) and ``.logits`` (None: they carry no state).

Both re-segment from scratch at every click with all clicks so far, in a working window:
- window: the bounding box of all clicks grown by ``margin = max(16, 0.1 * image long side,
  0.5 * click-box long side)`` on every side, clipped to the image. Outside it is background, so a
  far-away missed part gets a positive click from the simulator and the window grows.
- every click is a definite seed disk of radius ``max(2, 0.01 * image long side)`` pixels
  (positive = object, negative = background).
GrabCut: the positive-click box grown by ``margin / 4`` is probable foreground, the rest of the
window definite background (GrabCut's rectangle mode, the rectangle taken from the clicks); 5
iterations on the 8-bit display image (0.5/99.5 percentile stretch, as the model sees it).
Random walker: on the same image scaled to [0, 1] (grey), background seeds also on the window's
boundary pixels that lie at least ``margin`` from every positive click (so an object touching the
image edge is not seeded as background there); beta 1000, Jacobi-preconditioned conjugate gradient.

A third baseline, ``LiteMedSAMPredictor``, lives in `litemedsam.py` (it needs torch and weights).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BaselineResult:
    mask: np.ndarray
    logits: None = None
    iou: float = float("nan")


@dataclass(frozen=True)
class _Window:
    r0: int
    r1: int
    c0: int
    c1: int
    margin: float

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.r0, self.r1), slice(self.c0, self.c1)


def _display_gray(image: np.ndarray) -> np.ndarray:
    """HxW float32 in 0..255: the same contrast stretch the model sees, averaged over colour."""
    from hrsam_model.pixels import to_display_range

    return to_display_range(image).mean(axis=-1)


def _check_clicks(points, labels, shape) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels).reshape(-1)
    if len(points) == 0 or len(points) != len(labels):
        raise ValueError(f"need one label per point and at least one point, got {len(points)} and {len(labels)}")
    x, y = points[:, 0], points[:, 1]
    if (x < 0).any() or (y < 0).any() or (x >= shape[1]).any() or (y >= shape[0]).any():
        raise ValueError(f"points must lie inside the {shape[1]}x{shape[0]} image (x, y) = (col, row)")
    return points.round().astype(int), labels.astype(int)


def _window(points: np.ndarray, shape: tuple[int, int]) -> _Window:
    (c_min, r_min), (c_max, r_max) = points.min(axis=0), points.max(axis=0)
    margin = max(16.0, 0.1 * max(shape), 0.5 * max(r_max - r_min, c_max - c_min))
    m = int(np.ceil(margin))
    return _Window(
        max(0, r_min - m), min(shape[0], r_max + m + 1), max(0, c_min - m), min(shape[1], c_max + m + 1), margin
    )


def _disk_radius(shape: tuple[int, int]) -> int:
    return max(2, int(round(0.01 * max(shape))))


def _paint_disks(canvas: np.ndarray, centres: np.ndarray, radius: int, value) -> None:
    rows, cols = np.ogrid[: canvas.shape[0], : canvas.shape[1]]
    for col, row in centres:
        canvas[(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = value


def _far_boundary(points: np.ndarray, labels: np.ndarray, window: _Window) -> np.ndarray:
    """The window's boundary pixels at least `window.margin` from every positive click."""
    from scipy import ndimage as ndi

    shape = (window.r1 - window.r0, window.c1 - window.c0)
    boundary = np.zeros(shape, dtype=bool)
    boundary[[0, -1], :] = True
    boundary[:, [0, -1]] = True
    not_clicked = np.ones(shape, dtype=bool)
    positives = points[labels == 1]
    not_clicked[positives[:, 1], positives[:, 0]] = False
    return boundary & (ndi.distance_transform_edt(not_clicked) >= window.margin)


class _ClickBaseline:
    """Shared image handling; subclasses implement `_segment(window_image, seeds, window)`."""

    def __init__(self):
        self._gray = None

    def set_image(self, image: np.ndarray) -> None:
        self._gray = _display_gray(image)

    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask=False) -> BaselineResult:
        if self._gray is None:
            raise ValueError("call set_image(image) before predict()")
        if box is not None:
            raise ValueError(f"{type(self).__name__} takes clicks only, not a box")
        shape = self._gray.shape
        points, labels = _check_clicks(points, labels, shape)
        window = _window(points, shape)
        offset = np.array([window.c0, window.r0])
        local = points - offset
        mask = np.zeros(shape, dtype=bool)
        if (labels == 1).any():
            mask[window.slices] = self._segment(self._gray[window.slices], local, labels, window)
        return BaselineResult(mask=mask)

    def _segment(self, gray, points, labels, window) -> np.ndarray:
        raise NotImplementedError


class GrabCutPredictor(_ClickBaseline):
    """OpenCV GrabCut seeded by the clicks (see module docstring for the seeding)."""

    iterations = 5
    # Chosen on 5 train instances per dataset: rectangle fractions {0.25, 0.5, 1.0}, and a "soft"
    # window (probable background + definite-background border) that lost on ecoli (mIoU@5 0.36 vs 0.70).
    soft_window = False
    box_fraction = 0.25

    def __init__(self):
        super().__init__()
        try:
            import cv2  # noqa: F401
        except ImportError as error:
            raise ImportError("the GrabCut baseline needs OpenCV: pip install opencv-python-headless") from error

    def _segment(self, gray, points, labels, window) -> np.ndarray:
        import cv2

        shape = gray.shape
        seeds = np.full(shape, cv2.GC_PR_BGD if self.soft_window else cv2.GC_BGD, dtype=np.uint8)
        if self.soft_window:
            seeds[_far_boundary(points, labels, window)] = cv2.GC_BGD
        positives = points[labels == 1]
        grow = int(np.ceil(window.margin * self.box_fraction))
        (c0, r0), (c1, r1) = positives.min(axis=0) - grow, positives.max(axis=0) + grow + 1
        seeds[max(0, r0) : r1, max(0, c0) : c1] = cv2.GC_PR_FGD
        radius = _disk_radius(self._gray.shape)
        _paint_disks(seeds, points[labels == 0], radius, cv2.GC_BGD)
        _paint_disks(seeds, positives, radius, cv2.GC_FGD)
        if not (seeds == cv2.GC_BGD).any() and not (seeds == cv2.GC_PR_BGD).any():
            return np.ones(shape, dtype=bool)  # the window is all foreground: nothing to separate
        image = np.ascontiguousarray(np.repeat(gray.round().astype(np.uint8)[..., None], 3, axis=-1))
        background_model = np.zeros((1, 65), np.float64)
        foreground_model = np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        cv2.grabCut(image, seeds, None, background_model, foreground_model, self.iterations, cv2.GC_INIT_WITH_MASK)
        return (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)


class RandomWalkerPredictor(_ClickBaseline):
    """scikit-image random walker seeded by the clicks (see module docstring for the seeding)."""

    beta = 1000.0  # chosen on 4 nuclei train instances from {130, 1000, 4000}; 4000 was 20x slower

    def _segment(self, gray, points, labels, window) -> np.ndarray:
        from skimage.segmentation import random_walker

        seeds = np.zeros(gray.shape, dtype=np.int32)
        seeds[_far_boundary(points, labels, window)] = 2
        radius = _disk_radius(self._gray.shape)
        _paint_disks(seeds, points[labels == 0], radius, 2)
        _paint_disks(seeds, points[labels == 1], radius, 1)
        if not (seeds == 2).any():
            return np.ones(gray.shape, dtype=bool)  # no background evidence yet
        with warnings.catch_warnings():
            # "probability range outside [0, 1]": harmless rounding at tol=1e-3, labels are unaffected.
            warnings.simplefilter("ignore", UserWarning)
            labels_out = random_walker(gray / 255.0, seeds, beta=self.beta, mode="cg_j", tol=1e-3)
        return labels_out == 1
