"""The widget's stroke tools: scribbles and lassos drawn on the HRSAM box layer, and brush
corrections painted on the HRSAM preview layer.

- On the box layer (a Shapes layer), napari's path tool draws a scribble: positive, or negative
  after T (the same toggle as clicks); the polygon and lasso tools draw a lasso around the object.
  A drawn stroke is handed to the session (``Session.add_scribble`` / ``set_lasso``) and leaves
  the layer: the scribble's clicks and the lasso's box show in the prompt layers, like any prompt.
  Rectangles stay box prompts.
- On the preview layer (a Labels layer), napari's brush paints into the mask and its eraser takes
  out of it (``Session.paint``): the pixels stay on their side through the next clicks.
"""
from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer

from . import prompt_layers as layers_io
from .scheduling import USER_ERRORS

SCRIBBLE_SHAPES = ("path", "line")
LASSO_SHAPES = ("polygon",)


def strokes_on(key, box_layer) -> list[tuple[int, str, np.ndarray]]:
    """(index in the layer, "scribble" or "lasso", (row, col) vertices) of the box layer's
    paths and polygons drawn on slice ``key``."""
    out = []
    for index, (vertices, kind) in enumerate(zip(box_layer.data, box_layer.shape_type)):
        if kind not in SCRIBBLE_SHAPES + LASSO_SHAPES or not len(vertices):
            continue
        if all(layers_io.key_at(v, key.displayed_axes) == key for v in vertices):
            rows_cols = np.asarray(vertices)[:, list(key.displayed_axes)]
            out.append((index, "scribble" if kind in SCRIBBLE_SHAPES else "lasso", rows_cols))
    return out


class StrokeActions:
    """Scribbles, lassos and brush corrections for ``HRSAMWidget``."""

    def _take_strokes(self) -> bool:
        """Hand the box layer's new paths and polygons to the session as scribbles and lassos
        (one undo step each) and take them off the layer. False when there were none."""
        if self._boxes is None or not any(kind in SCRIBBLE_SHAPES + LASSO_SHAPES for kind in self._boxes.shape_type):
            return False
        try:
            session, _ = self._ensure_session()
            strokes = strokes_on(session.slice_key, self._boxes)
            self._runner.cancel()  # a running propagation is stale now
            for _, kind, rows_cols in strokes:
                if kind == "lasso":
                    session.set_lasso(rows_cols, predict=False)
                else:
                    session.add_scribble(rows_cols, positive=not self.negative_check.isChecked(), predict=False)
        except USER_ERRORS as err:
            show_error(f"HRSAM: {err}")
        self._show_session_prompts()  # the strokes leave the layer, their prompts show
        self._after_change()
        return True

    def _on_preview_painted(self, _event=None):
        """napari's brush or eraser changed the preview layer. napari emits the event before it
        writes the pixels of a programmatic ``paint`` (after them for a mouse stroke): read
        them on the next turn of the event loop."""
        if self._preview is not None and not self._syncing:
            QTimer.singleShot(0, self._take_painting)

    def _take_painting(self):
        """The difference between the preview layer and the mask the session shows, on the
        current slice, becomes a brush correction (``Session.paint``); what the session
        refuses (no object yet) is said and wiped from the layer."""
        layer = self._preview
        if layer is None:
            return
        try:
            session, _ = self._ensure_session()
            key = session.slice_key
            index = layers_io.slice_index(key, layer.data.ndim, (0, 0) + session.slice_shape)
            plane = np.asarray(layer.data[index])
            if key.displayed_axes[0] > key.displayed_axes[1]:
                plane = plane.T
            shown = session.preview
            shown = np.zeros(plane.shape, bool) if shown is None else shown
            painted, erased = np.argwhere((plane != 0) & ~shown), np.argwhere((plane == 0) & shown)
            if len(painted):
                session.paint(painted, inside=True)
            if len(erased):
                session.paint(erased, inside=False)
        except USER_ERRORS as err:
            show_error(f"HRSAM: {err}")
            if self._session is not None and self._session.slice_key is not None:
                key = self._session.slice_key
                layer.data[layers_io.slice_index(key, layer.data.ndim, (0, 0) + self._session.slice_shape)] = 0
        self._after_change()  # repaints the preview from the session
