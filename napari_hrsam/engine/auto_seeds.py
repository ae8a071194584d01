"""Where segment all clicks: a regular grid, or the centres of the blobs in each window.

Blobs are found by scikit-image's Laplacian-of-Gaussian detector on the window's pixels scaled to
the contrast window (channels averaged), bright blobs where the window is mostly dark and dark
blobs where it is mostly bright, at scales from 2 px up to a sixteenth of the window's side. On
crowded small objects (nuclei) one click near each centre finds objects that a grid passes by
or hits at their border, with a fraction of the decoder calls; at most ``points_per_side ** 2``
blobs, the strongest, are kept per window."""
from __future__ import annotations

import numpy as np


def object_polarity(pixels: np.ndarray) -> int:
    """+1 where a window's objects are bright (the window is mostly dark), -1 where they are dark:
    from the median of its 0..1 intensities (channels averaged), smoothed by 1 px."""
    return _polarity(_smoothed_gray(pixels))


def _smoothed_gray(pixels: np.ndarray) -> np.ndarray:
    from skimage.filters import gaussian

    gray = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels
    return gaussian(np.asarray(gray, np.float32), 1)


def _polarity(gray: np.ndarray) -> int:
    return -1 if float(np.median(gray)) >= 0.5 else 1


def blob_points(pixels: np.ndarray, origin: tuple[int, int], max_points: int) -> list[tuple[float, float]]:
    """(row, col) slice pixels of the blob centres in ``pixels`` (a window's 0..1 intensities,
    (h, w) or (h, w, channels)) whose top-left corner is ``origin``; strongest first."""
    return blob_seeds(pixels, origin, max_points)[0]


def blob_seeds(pixels: np.ndarray, origin: tuple[int, int], max_points: int) -> tuple[list[tuple[float, float]], int]:
    """(``blob_points``, ``object_polarity``) of a window, smoothing its pixels once for both."""
    from skimage.feature import blob_log

    gray = _smoothed_gray(pixels)
    polarity = _polarity(gray)
    if polarity < 0:  # mostly bright: the objects are the dark blobs
        gray = 1.0 - gray
    max_sigma = max(2.5, min(gray.shape) / 16)
    blobs = blob_log(gray, min_sigma=2, max_sigma=max_sigma, num_sigma=6, threshold=0.02)
    if len(blobs) == 0:
        return [], polarity
    rows, cols = blobs[:, 0].astype(int), blobs[:, 1].astype(int)
    sigma = blobs[:, 2]
    strength = gray[rows, cols] * sigma  # bright and large first
    order = np.argsort(-strength, kind="stable")[:max_points]
    return [(float(rows[i] + origin[0]), float(cols[i] + origin[1])) for i in order], polarity
