"""The napari layers that carry prompts and the preview, and their translation to the session.

Layer coordinates are the image layer's data coordinates (the helper layers copy its
scale, translate, rotation and shear), so a point's coordinates are voxel indices of the
image. The session speaks (row, col) on a slice named by a ``SliceKey``; the functions
here convert between the two and never touch the model.
"""
from __future__ import annotations

import weakref

import numpy as np
from napari.utils.colormaps import DirectLabelColormap

from napari_hrsam.engine.state import NEGATIVE, POSITIVE, SliceKey

POINTS_NAME = "HRSAM prompts"
BOX_NAME = "HRSAM box"
PREVIEW_NAME = "HRSAM preview"
POSITIVE_COLOR = "lime"
NEGATIVE_COLOR = "red"
PREVIEW_COLOR = "cyan"  # unlike any committed label colour from the default map, mostly
# a marker's size on screen, (min, max) pixels whatever the zoom: never hiding a cell
# and its mask when zoomed in on a huge image, still visible when zoomed out
MARKER_SCREEN_PIXELS = (6, 14)
BOX_SCREEN_PIXELS = 2.0  # the box outline's width on screen, whatever the zoom


def placement(image_layer) -> dict:
    """Layer keyword arguments that put a helper layer on the image's grid."""
    return {
        "scale": tuple(image_layer.scale),
        "translate": tuple(image_layer.translate),
        "rotate": np.asarray(image_layer.rotate),
        "shear": np.asarray(image_layer.shear),
    }


def spatial_shape(image_layer) -> tuple[int, ...]:
    data = image_layer.data[0] if image_layer.multiscale else image_layer.data
    shape = tuple(int(n) for n in data.shape)
    return shape[:-1] if image_layer.rgb else shape


def add_helper_layers(viewer, image_layer) -> tuple:
    """(points, box, preview) layers on the image's grid; the prompts layer on top, in
    pan/zoom mode so the widget's mouse callback (not napari's add mode) turns clicks into
    points. Markers are 1.5% of the image wide, but 6 to 14 screen pixels whatever the zoom."""
    shape = spatial_shape(image_layer)
    ndim, place = len(shape), placement(image_layer)
    size = max(3.0, 0.015 * max(shape[-2:]))
    colors = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: PREVIEW_COLOR})
    preview = viewer.add_labels(np.zeros(shape, np.uint8), name=PREVIEW_NAME, opacity=0.6, colormap=colors, **place)
    preview.selected_label = 1  # napari's brush paints the mask, its eraser takes out of it
    box = viewer.add_shapes(ndim=ndim, name=BOX_NAME, edge_color="yellow", face_color="transparent",
                            **place)
    points = viewer.add_points(np.empty((0, ndim)), ndim=ndim, name=POINTS_NAME, size=size,
                               features={"label": np.empty(0, int)}, border_color="black",
                               canvas_size_limits=MARKER_SCREEN_PIXELS, **place)
    points.mode = "pan_zoom"
    points.cursor = "crosshair"
    hold_box_width_on_screen(viewer, box)
    return points, box, preview


def hold_box_width_on_screen(viewer, box) -> None:
    """Keep ``box``'s outlines (drawn and to be drawn) BOX_SCREEN_PIXELS wide on screen as the
    camera zooms (napari sizes Shapes edges in data pixels). Stops once the layer is removed."""
    layer_ref = weakref.ref(box)

    def update(event=None):
        layer = layer_ref()
        if layer is None or layer not in viewer.layers:
            viewer.camera.events.zoom.disconnect(update)
            return
        scale = min(abs(float(s)) for s in layer.scale[-2:]) or 1.0
        width = BOX_SCREEN_PIXELS / (viewer.camera.zoom * scale)
        layer.current_edge_width = width
        if len(layer.data):
            layer.edge_width = [width] * len(layer.data)

    viewer.camera.events.zoom.connect(update)
    update()


# ------------------------------------------------------------------------- coordinates


def key_at(coords, displayed_axes) -> SliceKey:
    """The slice through ``coords`` (image data coordinates) showing ``displayed_axes``."""
    position = tuple(int(round(float(v))) for a, v in enumerate(coords) if a not in displayed_axes)
    return SliceKey(tuple(displayed_axes), position)


def row_col(coords, displayed_axes) -> tuple[float, float]:
    return float(coords[displayed_axes[0]]), float(coords[displayed_axes[1]])


def coords_of(key: SliceKey, row: float, col: float, ndim: int) -> np.ndarray:
    """Image data coordinates of (row, col) on slice ``key``."""
    coords = np.zeros(ndim)
    others = [a for a in range(ndim) if a not in key.displayed_axes]
    coords[others] = key.position
    coords[key.displayed_axes[0]], coords[key.displayed_axes[1]] = row, col
    return coords


def slice_index(key: SliceKey, ndim: int, bbox) -> tuple:
    """Index into a spatial array for the (row0, col0, row1, col1) window of slice ``key``."""
    r0, c0, r1, c1 = bbox
    index = []
    others = iter(key.position)
    for axis in range(ndim):
        if axis == key.displayed_axes[0]:
            index.append(slice(r0, r1))
        elif axis == key.displayed_axes[1]:
            index.append(slice(c0, c1))
        else:
            index.append(next(others))
    return tuple(index)


def inside(shape, coords) -> bool:
    """True when ``coords`` fall on a voxel of an array of ``shape`` (pixel i spans i +- 0.5)."""
    return all(-0.5 <= float(v) < n - 0.5 for v, n in zip(coords, shape))


# ------------------------------------------------------------------------- layers -> session


def prompts_on(key: SliceKey, points_layer, box_layer) -> tuple[list, list, tuple | None]:
    """(points as (row, col), labels 1/0, box as (row0, col0, row1, col1) or None) on ``key``."""
    points, labels = [], []
    if len(points_layer.data):
        signs = points_layer.features["label"].to_numpy() if "label" in points_layer.features else None
        for i, coords in enumerate(points_layer.data):
            if key_at(coords, key.displayed_axes) == key:
                points.append(row_col(coords, key.displayed_axes))
                labels.append(int(signs[i]) if signs is not None else POSITIVE)
    rectangles = rectangles_on(key, box_layer)
    box = None
    if rectangles:  # the newest rectangle is the box; the widget removes older ones
        rows, cols = rectangles[-1][:, key.displayed_axes[0]], rectangles[-1][:, key.displayed_axes[1]]
        box = (float(rows.min()), float(cols.min()), float(rows.max()), float(cols.max()))
    return points, labels, box


def rectangles_on(key: SliceKey, box_layer) -> list[np.ndarray]:
    """Vertices of the box layer's rectangles drawn on slice ``key``, oldest first."""
    return [vertices for vertices, kind in zip(box_layer.data, box_layer.shape_type)
            if kind == "rectangle" and len(vertices) and all(key_at(v, key.displayed_axes) == key for v in vertices)]


# ------------------------------------------------------------------------- session -> layers


def user_prompts(session) -> tuple[np.ndarray, list, list]:
    """Every user prompt of the session's object: (point coords, labels, box vertices)."""
    ndim = len(session.spatial_shape)
    coords, labels, boxes = [], [], []
    for key, state in session.object.slices.items():
        if state.source != "user":
            continue  # propagated slices have machine-made prompts; their masks show in the preview
        for (row, col), label in zip(state.prompts.points, state.prompts.labels):
            coords.append(coords_of(key, row, col, ndim))
            labels.append(label)
        if state.prompts.box is not None:
            r0, c0, r1, c1 = state.prompts.box
            corners = [(r0, c0), (r0, c1), (r1, c1), (r1, c0)]
            boxes.append(np.array([coords_of(key, r, c, ndim) for r, c in corners]))
    return np.array(coords).reshape(-1, ndim), labels, boxes


def show_points(points_layer, coords: np.ndarray, labels) -> None:
    """Replace the points layer's content (caller guards against its data events)."""
    points_layer.data = coords
    points_layer.features = {"label": np.asarray(labels, dtype=int)}
    color_points(points_layer)


def color_points(points_layer) -> None:
    if len(points_layer.data) == 0:
        return
    labels = points_layer.features["label"].to_numpy()
    points_layer.face_color = [POSITIVE_COLOR if v == POSITIVE else NEGATIVE_COLOR for v in labels]


def show_boxes(box_layer, boxes) -> None:
    box_layer.data = []
    if boxes:
        box_layer.add_rectangles(boxes, edge_color="yellow", face_color="transparent")


def polarity_label(positive: bool) -> int:
    return POSITIVE if positive else NEGATIVE


class PreviewPainter:
    """Paints the session's current object into a preview labels layer and erases what it
    painted before, touching only the masks' bounding boxes (cheap on big volumes)."""

    def __init__(self, layer):
        self.layer = layer
        self._painted: list[tuple] = []  # indices written last time

    def update(self, session) -> None:
        data = self.layer.data
        for index in self._painted:
            data[index] = 0
        ndim = data.ndim
        self._painted = [slice_index(key, ndim, mask.bbox) for key, mask in session.object_masks().items()]
        session.paint_object(data, 1)
        self.layer.refresh()

    def clear(self) -> None:
        for index in self._painted:
            self.layer.data[index] = 0
        self._painted = []
        self.layer.refresh()
