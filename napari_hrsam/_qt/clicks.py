"""Mouse clicks on the canvas for napari's drag-callback lists (a layer's or the viewer's).

A press and release less than DRAG_PIXELS apart on screen is a click; anything longer is
napari's pan and is left alone.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

DRAG_PIXELS = 5


def click_callback(on_click: Callable[[object], None], wanted: Callable[[object], bool]):
    """A napari mouse-drag callback that calls ``on_click(event)`` at the release of a click
    whose press ``wanted(source)`` accepted (source: the layer or viewer it is attached to)."""

    def callback(source, event):
        if event.type != "mouse_press" or not wanted(source):
            return
        start = np.asarray(event.pos, dtype=float)
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = dragged or np.linalg.norm(np.asarray(event.pos, dtype=float) - start) > DRAG_PIXELS
            yield
        if not dragged:
            on_click(event)

    return callback
