"""The widget's stroke tools in a real viewer: scribbles and lassos on the box layer, brush and
eraser on the preview layer (fake predictor: the bright component under a positive click)."""
import numpy as np

from _session_fakes import disk
from test_widget import click, dock, messages, two_disks, wait_idle  # noqa: F401 (fixture)


def test_a_path_on_the_box_layer_is_a_scribble_and_leaves_the_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = two_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer)
    widget.box_layer.add_paths(np.array([[35.0, 45.0], [45.0, 55.0]]))
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(image.shape, (40, 50), 14) > 0)
    assert len(widget.box_layer.data) == 0 and len(widget.points_layer.data) == 2  # its clicks show
    assert widget.session.history[0] == ["add scribble"]
    widget.toggle_polarity()  # T: the next scribble is negative
    widget.box_layer.add_paths(np.array([[36.0, 46.0], [44.0, 54.0]]))
    wait_idle(qtbot, widget)
    assert list(widget.points_layer.features["label"]) == [1, 1, 0, 0]
    assert not widget.preview_layer.data[36, 46] and not widget.preview_layer.data[44, 54]  # held outside
    widget.undo()
    wait_idle(qtbot, widget)
    assert widget.preview_layer.data[44, 54] and len(widget.points_layer.data) == 2


def test_a_polygon_on_the_box_layer_is_a_lasso(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = two_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer)
    widget.box_layer.add_rectangles(np.array([[20, 30], [20, 70], [60, 70], [60, 30]]))  # a box first
    wait_idle(qtbot, widget)
    widget.box_layer.add_polygons(np.array([[62.0, 98.0], [62.0, 132.0], [98.0, 132.0], [98.0, 98.0]]))
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(image.shape, (80, 115), 11) > 0)
    assert len(widget.box_layer.data) == 0  # the lasso starts the object afresh: the box went
    assert widget.session.history[0][-1] == "set lasso"


def test_a_bad_stroke_says_why_and_changes_nothing(make_napari_viewer, qtbot, messages):
    viewer = make_napari_viewer()
    viewer.add_image(two_disks(), name="disks")
    widget = dock(viewer)
    widget.box_layer.add_polygons(np.array([[10.0, 10.0], [10.0, 40.0], [40.0, 10.0], [40.0, 40.0]]))
    wait_idle(qtbot, widget)
    assert any("crosses itself" in text for text in messages["error"])
    assert len(widget.box_layer.data) == 0 and not widget.session.can_undo


def test_brush_and_eraser_on_the_preview_hold_through_the_next_click(make_napari_viewer, qtbot, messages):
    viewer = make_napari_viewer()
    image = two_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer)
    preview = widget.preview_layer
    preview.paint((60, 80), 1)  # nothing to paint on yet: refused, and the stroke goes away
    qtbot.wait(50)  # the widget reads a stroke on the next turn of the event loop
    assert any("click the object first" in text for text in messages["error"]) and not preview.data.any()

    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    preview.brush_size = 5
    preview.paint((60, 80), 1)  # a blob where the image has nothing
    preview.paint((40, 50), 0)  # the eraser through the disk's centre
    qtbot.wait(50)
    wait_idle(qtbot, widget)
    assert preview.data[60, 80] and not preview.data[40, 50]
    assert widget.session.history[0][-2:] == ["paint", "erase"]
    click(widget.points_layer, (30, 50))  # the model runs again
    wait_idle(qtbot, widget)
    assert preview.data[60, 80] and not preview.data[40, 50] and preview.data[30, 50]
    widget.commit()
    assert widget.labels_layer.data[60, 80] == 1 and widget.labels_layer.data[40, 50] == 0
