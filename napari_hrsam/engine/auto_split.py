"""Touching objects that segment all took as one: a mask is cut where its outline pinches.

hrsam_tiny often answers a click on one of two touching nuclei with both of them; the click on the
other one then falls inside that mask and is not decoded again. The shape tells such a pair apart
from one object: its width (the distance transform) has two summits with a narrower neck between
them. Each summit's basin of the distance transform is a candidate part (scikit-image's watershed,
as in the classic distance-transform pipeline); neighbouring basins are joined again, widest neck
first, unless the neck is narrower than ``1 - depth`` of the smaller basin's summit and at least
``MIN_NECK_DEPTH`` pixels below it. A convex object has no neck and stays whole; ``depth`` 0 joins
everything back.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

# A neck must also be this many pixels narrower than the summits on both sides: the distance
# transform moves in whole pixels, so on a rod 3-4 px wide a share alone cuts at every wobble
# (chosen on the training halves: docs/segment-all.md)
MIN_NECK_DEPTH = 1.0


def split_at_necks(mask: np.ndarray, depth: float, min_area: int,
                   min_neck_depth: float = MIN_NECK_DEPTH) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """The parts of boolean ``mask`` (h, w), each with its summit (row, col): the widest point,
    a natural click for it. One part (the mask itself) when nothing pinches deeper than ``depth``
    (0..1) of a part's half-width and by ``min_neck_depth`` pixels; parts under ``min_area``
    pixels join a neighbour."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    width = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    summit = _argmax(width)
    if depth <= 0:
        return [(mask, summit)]  # the summit is the point a caller may click
    peaks = peak_local_max(width, min_distance=3, labels=mask.astype(np.int32), exclude_border=False)
    if len(peaks) < 2:
        return [(mask, summit)]
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    basins = watershed(-width, markers, mask=mask, connectivity=2)  # 8-connected, as the mask's pieces
    count = len(peaks)
    height = np.asarray(ndi.maximum(width, basins, range(1, count + 1)), float)
    area = np.asarray(ndi.sum(mask, basins, range(1, count + 1)), float)
    group = list(range(count))  # basin -> the basin that stands for its group

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for (i, j), neck in sorted(_necks(basins, width).items(), key=lambda item: -item[1]):
        a, b = root(i), root(j)
        if a == b:
            continue
        shallow = min(height[a], height[b]) - neck < min_neck_depth
        if neck >= (1 - depth) * min(height[a], height[b]) or shallow or min(area[a], area[b]) < min_area:
            group[b] = a
            height[a], area[a] = max(height[a], height[b]), area[a] + area[b]
    members: dict[int, list[int]] = {}
    for i in range(count):
        members.setdefault(root(i), []).append(i + 1)
    if len(members) == 1:
        return [(mask, summit)]
    parts = []
    for labels in members.values():
        part = np.isin(basins, labels)
        parts.append((part, _argmax(np.where(part, width, -1))))
    return parts


def _argmax(values: np.ndarray) -> tuple[int, int]:
    row, col = np.unravel_index(int(np.argmax(values)), values.shape)
    return int(row), int(col)


def _necks(basins: np.ndarray, width: np.ndarray) -> dict[tuple[int, int], float]:
    """{(basin i, basin j) (0-based, i < j): the widest point of the border between them}, the
    border taken over the 8 neighbours of each pixel (as the watershed and the mask's pieces)."""
    necks: dict[tuple[int, int], float] = {}
    rows, cols = basins.shape
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        c0, c1 = max(0, -dc), cols - max(0, dc)
        a, b = basins[: rows - dr, c0:c1], basins[dr:, c0 + dc: c1 + dc]
        wa, wb = width[: rows - dr, c0:c1], width[dr:, c0 + dc: c1 + dc]
        border = (a != b) & (a > 0) & (b > 0)
        for i, j, w in zip(a[border], b[border], np.minimum(wa[border], wb[border])):
            key = (int(min(i, j)) - 1, int(max(i, j)) - 1)
            necks[key] = max(necks.get(key, 0.0), float(w))
    return necks
