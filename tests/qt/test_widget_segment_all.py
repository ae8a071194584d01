"""The widget's "Segment all": every object into the labels layer in one undo step, in the
background (bundled model)."""
import numpy as np
import pytest

from hrsam_model import Predictor, build_model
from test_widget import click, dock, wait_idle


@pytest.fixture(scope="module")
def model():
    return build_model("hrsam_tiny", pretrained=True)


def test_segment_all_fills_the_labels_layer_and_undo_takes_it_back(make_napari_viewer, qtbot, model):
    rows, cols = np.ogrid[:200, :200]
    image = np.full((200, 200), 30, np.uint8)
    centres = [(50, 50), (50, 150), (150, 50), (150, 150)]
    for r, c in centres:
        image[(rows - r) ** 2 + (cols - c) ** 2 <= 20 ** 2] = 200
    viewer = make_napari_viewer()
    viewer.add_image(image, name="disks")
    widget = dock(viewer, lambda choice: Predictor(model, device="cpu", target_size=choice.target_size))
    widget.density_spin.setValue(16)
    widget.segment_all()
    assert widget.busy  # in the background: napari stays responsive
    wait_idle(qtbot, widget, timeout=60000)
    labels = widget.labels_layer.data
    ids = {int(labels[r, c]) for r, c in centres}
    assert 0 not in ids and len(ids) == 4  # each disk its own object
    click(widget.points_layer, (100, 100))  # clicking afterwards still segments as usual
    wait_idle(qtbot, widget)
    widget.undo()  # the click
    widget.undo()  # the whole segment-all run
    assert not widget.labels_layer.data.any()
    widget.redo()
    assert {int(widget.labels_layer.data[r, c]) for r, c in centres} == ids
