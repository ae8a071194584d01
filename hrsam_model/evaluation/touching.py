"""Which objects touch another one: the case where a first click most often takes in a neighbour.

An object *touches* another when some pixel of the other lies within `TOUCH_DISTANCE` pixels of it
(4-connected steps, so 2 px reaches the diagonal neighbour and bridges a one-pixel gap that an
annotator left between two cells). Only labelled objects count as "another": background never does.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

TOUCH_DISTANCE = 2


def touching_labels(labels: np.ndarray, distance: int = TOUCH_DISTANCE) -> set[int]:
    """The label values of a label image (0 = background) whose object touches another label's."""
    labels = np.asarray(labels)
    if distance < 1:
        raise ValueError(f"distance must be >= 1 pixel, got {distance}")
    out = set()
    for label, where in enumerate(ndi.find_objects(labels), start=1):
        if where is None:
            continue
        box = tuple(slice(max(s.start - distance, 0), s.stop + distance) for s in where)
        window = labels[box]
        grown = ndi.binary_dilation(window == label, iterations=distance)
        if np.any((window[grown] != label) & (window[grown] != 0)):
            out.add(label)
    return out


def touches(mask: np.ndarray, others: np.ndarray, distance: int = TOUCH_DISTANCE) -> bool:
    """Whether boolean `mask` comes within `distance` pixels of any pixel of boolean `others`
    (pixels of `others` inside `mask` itself do not count)."""
    mask, others = np.asarray(mask, dtype=bool), np.asarray(others, dtype=bool)
    if mask.shape != others.shape:
        raise ValueError(f"mask shape {mask.shape} does not match others shape {others.shape}")
    if distance < 1:
        raise ValueError(f"distance must be >= 1 pixel, got {distance}")
    if not mask.any() or not others.any():
        return False
    grown = ndi.binary_dilation(mask, iterations=distance)
    return bool(np.any(grown & others & ~mask))
