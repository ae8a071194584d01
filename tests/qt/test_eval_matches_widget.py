"""``hrsam eval`` measures what the widget shows: the same clicks through ``SessionMethod`` (the
evaluation's way into the engine) and through the dock widget give the same masks, zoom-in on."""
from pathlib import Path

import numpy as np
import pytest
import tifffile

from hrsam_model import Predictor, build_model
from hrsam_model.evaluation.clicker import Clicker
from napari_hrsam.engine.click_method import SessionMethod
from test_widget import click, dock, wait_idle

DATA = Path(__file__).resolve().parents[2] / "napari_hrsam" / "data"


@pytest.fixture(scope="module")
def model():
    return build_model("hrsam_tiny", pretrained=True)


def test_eval_through_the_session_and_the_widget_give_the_same_masks(make_napari_viewer, qtbot, model):
    image = tifffile.imread(DATA / "nuclei_2d.tif")[:192, :256]
    truth = tifffile.imread(DATA / "nuclei_2d_mask.tif")[:192, :256]
    targets = [label for label in np.unique(truth)[1:] if (truth == label).sum() > 150][:2]
    assert len(targets) == 2

    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = dock(viewer, lambda choice: Predictor(model, device="cpu", target_size=choice.target_size))
    assert widget.zoom_check.isChecked() and widget.pieces_check.isChecked() and widget.hold_check.isChecked()
    limits = tuple(float(v) for v in viewer.layers["nuclei"].contrast_limits)  # what the widget passes
    method = SessionMethod(Predictor(model, device="cpu"), zoom_in=True, contrast_limits=limits)
    method.set_image(image)

    compared = 0
    for label in targets:
        clicker, answer = Clicker(truth == label, seed=42), None
        for _ in range(4):
            if clicker.click(None if answer is None else answer.mask) is None:
                break
            points, labels = clicker.points(), clicker.labels()
            answer = method.predict(points=points, labels=labels,
                                    mask_input=None if answer is None else answer.logits)
            (x, y), positive = points[-1], labels[-1] == 1
            widget.negative_check.setChecked(not positive)
            click(widget.points_layer, (y, x))
            wait_idle(qtbot, widget)
            shown = widget.preview_layer.data > 0
            np.testing.assert_array_equal(shown, answer.mask, err_msg=f"object {label}, click {len(points)}")
            compared += 1
        assert answer.mask[truth == label].mean() > 0.5  # a real segmentation, not two empty masks
        widget.commit()
    assert compared >= 4
