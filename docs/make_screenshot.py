"""Make docs/screenshot.png: the widget docked, one object committed, a second one previewed.

    xvfb-run -a -s "-screen 0 1400x1000x24" python docs/make_screenshot.py

Uses the shipped 2-D nuclei sample and the default model (hrsam_tiny with its bundled
weights; random weights if the weights file is missing, which the window title then says).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "screenshot.png"
SIZE = (1300, 820)


def nuclei_centres(image: np.ndarray, count: int) -> list[tuple[float, float]]:
    """Centroids (row, col) of the largest bright blobs: click targets that are surely nuclei."""
    from skimage.filters import threshold_otsu
    from skimage.measure import label, regionprops

    regions = regionprops(label(image > threshold_otsu(image)))
    regions.sort(key=lambda r: r.area, reverse=True)
    return [tuple(r.centroid) for r in regions[:count]]


def wait_until_idle(widget, timeout: float = 900.0) -> None:
    from qtpy.QtWidgets import QApplication

    start = time.perf_counter()
    while widget.busy:
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the segmentation did not finish")
        QApplication.processEvents()
        time.sleep(0.02)
    QApplication.processEvents()


def close_notifications(viewer) -> None:
    """Close napari's notification pop-ups (the random-weights warning would cover the canvas)."""
    from qtpy.QtWidgets import QWidget

    for popup in viewer.window._qt_window.findChildren(QWidget):
        if type(popup).__name__ == "NapariQtNotification":
            popup.close()


def main() -> int:
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*SIZE)  # napari has no public resize; the canvas needs room
    [image] = viewer.open_sample("napari-hrsam", "nuclei_2d")
    _, widget = viewer.window.add_plugin_dock_widget("napari-hrsam", "HRSAM segmentation")

    first, second = nuclei_centres(np.asarray(image.data), 2)
    widget.add_point_at(image.data_to_world(first), positive=True)
    wait_until_idle(widget)
    widget.commit()
    widget.add_point_at(image.data_to_world(second), positive=True)
    wait_until_idle(widget)

    weights = widget.model_label.text().removeprefix("Model: ")
    viewer.title = f"napari-hrsam: {weights}"
    short = "RANDOM weights, bundled file missing" if "RANDOM" in weights else weights
    viewer.text_overlay.text = f"HRSAM: {short}"  # the window title is not in the picture
    viewer.text_overlay.position = "top_left"
    viewer.text_overlay.font_size = 10
    viewer.text_overlay.visible = True
    close_notifications(viewer)
    viewer.reset_view()
    for _ in range(5):
        napari.qt.get_qapp().processEvents()
    viewer.screenshot(path=str(OUT), canvas_only=False, flash=False)
    print(f"wrote {OUT} ({weights}); labels: {np.unique(widget.labels_layer.data).tolist()}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
