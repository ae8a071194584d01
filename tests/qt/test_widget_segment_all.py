"""The widget's "Segment all": every object into the labels layer in one undo step, in the
background (bundled model)."""
import numpy as np
import pytest

from hrsam_model import Predictor, build_model
from napari_hrsam.engine.automatic import AutoSettings
from test_widget import click, dock, wait_idle


@pytest.fixture(scope="module")
def model():
    return build_model("hrsam_tiny", pretrained=True)


def dock_with(viewer, model):
    """The widget on the bundled model, with a 16 x 16 segment-all grid."""
    widget = dock(viewer, lambda choice: Predictor(model, device="cpu", target_size=choice.target_size))
    widget.density_spin.setValue(16)
    return widget


def four_disks():
    """A 200 x 200 image with four bright disks of radius 20, and their centres."""
    rows, cols = np.ogrid[:200, :200]
    image = np.full((200, 200), 30, np.uint8)
    centres = [(50, 50), (50, 150), (150, 50), (150, 150)]
    for r, c in centres:
        image[(rows - r) ** 2 + (cols - c) ** 2 <= 20 ** 2] = 200
    return image, centres


def test_segment_all_fills_the_labels_layer_and_undo_takes_it_back(make_napari_viewer, qtbot, model):
    image, centres = four_disks()
    viewer = make_napari_viewer()
    viewer.add_image(image, name="disks")
    widget = dock_with(viewer, model)
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


def test_e_edits_the_object_under_the_cursor_and_commit_keeps_its_id(make_napari_viewer, qtbot):
    from _session_fakes import FakePredictor, disk

    image = disk((120, 160), (40, 50), 14) + disk((120, 160), (80, 115), 11, value=180)
    viewer = make_napari_viewer()
    viewer.add_image(image, name="disks")
    widget = dock(viewer, lambda choice: FakePredictor(target_size=256))
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    widget.commit()
    first = widget.labels_layer.data.copy()
    assert widget.edit_object_at((40, 50))
    wait_idle(qtbot, widget)
    assert len(widget.points_layer.data) == 1 and widget.session.object.label_id == 1
    click(widget.points_layer, (80, 115))  # the object now takes in the second disk
    wait_idle(qtbot, widget)
    widget.commit()
    labels = widget.labels_layer.data
    assert labels.max() == 1 and (labels[first == 1] == 1).all() and labels[80, 115] == 1
    assert not widget.edit_object_at((5, 5))  # background: nothing to edit


def test_a_drawn_box_restricts_segment_all(make_napari_viewer, qtbot, model):
    image, centres = four_disks()
    viewer = make_napari_viewer()
    viewer.add_image(image, name="disks")
    widget = dock_with(viewer, model)
    widget.box_layer.add_rectangles(np.array([[20.0, 20.0], [85.0, 85.0]]))  # around the top-left disk
    wait_idle(qtbot, widget, timeout=60000)
    widget.segment_all()
    wait_idle(qtbot, widget, timeout=60000)
    labels = widget.labels_layer.data
    assert labels[50, 50] > 0 and not labels[100:, :].any() and not labels[:, 100:].any()


def test_all_slices_of_a_volume_become_3d_objects(make_napari_viewer, qtbot, model):
    image, centres = four_disks()
    viewer = make_napari_viewer()
    viewer.add_image(np.stack([image] * 3), name="volume")
    widget = dock_with(viewer, model)
    widget.all_slices_check.setChecked(True)
    widget.segment_all()
    wait_idle(qtbot, widget, timeout=120000)
    labels = widget.labels_layer.data
    for r, c in centres:
        assert len({int(v) for v in labels[:, r, c]}) == 1 and labels[0, r, c] > 0  # one id through z
    assert len({int(labels[0, r, c]) for r, c in centres}) == 4


@pytest.mark.parametrize("seeds", ["grid", "blobs"])
def test_the_seeds_and_split_choices_reach_the_run_and_each_finds_the_disks(make_napari_viewer, qtbot, model, monkeypatch,
                                                                   seeds):
    from napari_hrsam.engine.session import Session

    asked = []
    original = Session.segment_all_request

    def recording(self, settings=None, *args, **kwargs):
        asked.append(settings)
        return original(self, settings, *args, **kwargs)

    monkeypatch.setattr(Session, "segment_all_request", recording)
    image, centres = four_disks()
    viewer = make_napari_viewer()
    viewer.add_image(image, name="disks")
    widget = dock_with(viewer, model)
    widget.seeds_combo.setCurrentText(seeds)
    widget.split_touching_check.setChecked(seeds == "blobs")
    widget.segment_all()
    wait_idle(qtbot, widget, timeout=60000)
    assert [s.seeds for s in asked] == [seeds] and asked[0].points_per_side == 16
    assert asked[0].split_depth == (AutoSettings().split_depth if seeds == "blobs" else 0.0)
    ids = {int(widget.labels_layer.data[r, c]) for r, c in centres}
    assert 0 not in ids and len(ids) == 4
