"""The dock widget in a real napari viewer (pytest-qt + make_napari_viewer under Xvfb).

Most tests drive the widget with ``FakePredictor`` (tests/_session_fakes.py): it segments
the bright connected component under a positive click, so a test knows the right mask
exactly and checks the widget's behaviour (layers, keys, workers, undo) quickly. One test
runs the real bundled model end to end.
"""
import threading
from dataclasses import dataclass, field

import numpy as np
import pytest
from napari.utils.interactions import (
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)
from qtpy.QtWidgets import QLabel

import napari_hrsam._qt.scheduling as scheduling_module
import napari_hrsam._qt.session_choice as widget_sessions_module
import napari_hrsam._qt.strokes as strokes_module
import napari_hrsam._qt.widget as widget_module
from _session_fakes import FakePredictor, disk
from napari_hrsam.io import images as io

PLUGIN, WIDGET = "napari-hrsam", "HRSAM segmentation"
WAIT_MS = 20_000


@dataclass
class MouseEvent:
    """The fields napari's mouse callbacks read from a vispy event."""

    type: str
    position: tuple
    button: int = 1
    pos: np.ndarray = field(default_factory=lambda: np.zeros(2))
    modifiers: list = field(default_factory=list)
    is_dragging: bool = False
    handled: bool = False
    view_direction: list | None = None
    up_direction: list | None = None
    dims_displayed: list = field(default_factory=lambda: [0, 1])


class Persisted:
    """napari swaps the event under a running drag callback by setting ``__wrapped__``."""

    def __init__(self, event):
        self.__wrapped__ = event

    def __getattr__(self, name):
        return getattr(self.__wrapped__, name)


def click(layer, world, button=1, drag=0.0):
    """Press and release on ``layer`` at ``world``, moving ``drag`` canvas pixels in between."""
    world = tuple(float(v) for v in world)
    mouse_press_callbacks(layer, Persisted(MouseEvent("mouse_press", world, button)))
    end = np.array([drag, 0.0])
    if drag:
        mouse_move_callbacks(layer, Persisted(MouseEvent("mouse_move", world, button, pos=end, is_dragging=True)))
    mouse_release_callbacks(layer, Persisted(MouseEvent("mouse_release", world, button, pos=end)))


@pytest.fixture
def messages(monkeypatch):
    """Notifications the widget shows, by kind."""
    seen = {"error": [], "info": [], "warning": []}
    for kind in seen:
        for module in (widget_module, widget_sessions_module, scheduling_module, strokes_module):
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", seen[kind].append)
    return seen


def two_disks(shape=(120, 160)):
    return disk(shape, (40, 50), 14) + disk(shape, (80, 115), 11, value=180)


def dock(viewer, predictor_factory=lambda choice: FakePredictor(target_size=choice.target_size)):
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    if predictor_factory is not None:
        widget.predictor_factory = predictor_factory
    return widget


def wait_idle(qtbot, widget, timeout=WAIT_MS):
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)


def iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def test_widget_docks_from_the_manifest_with_its_layers_and_key_help(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(two_disks(), name="disks")
    widget = dock(viewer)
    names = [layer.name for layer in viewer.layers]
    assert names == ["disks", "HRSAM preview", "HRSAM box", "HRSAM prompts"]
    assert viewer.layers.selection.active is widget.points_layer
    assert widget.image_combo.currentText() == "disks"
    help_text = " ".join(label.text() for label in widget.findChildren(QLabel))
    for key in ("Ctrl+Z", "Ctrl+Shift+Z", "Shift+R", "Right click"):
        assert key in help_text


def test_clicks_segment_commit_ids_and_undo_redo_exactly(make_napari_viewer, qtbot, messages):
    viewer = make_napari_viewer()
    image = two_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer)

    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    first = disk(image.shape, (40, 50), 14) > 0
    np.testing.assert_array_equal(widget.preview_layer.data > 0, first)
    labels_layer = widget.labels_layer
    assert labels_layer.name == "disks labels" and not labels_layer.data.any()  # nothing before commit

    widget.commit()
    after_one = labels_layer.data.copy()
    np.testing.assert_array_equal(after_one == 1, first)
    assert len(widget.points_layer.data) == 0 and not widget.preview_layer.data.any()

    click(widget.points_layer, (80, 115))
    wait_idle(qtbot, widget)
    widget.commit()
    after_two = labels_layer.data.copy()
    second = disk(image.shape, (80, 115), 11) > 0
    np.testing.assert_array_equal(after_two == 2, second)
    np.testing.assert_array_equal(after_two == 1, first)  # object 1 untouched

    widget.undo()  # the second commit: its prompt comes back, labels as after commit 1
    np.testing.assert_array_equal(labels_layer.data, after_one)
    assert len(widget.points_layer.data) == 1
    widget.redo()
    np.testing.assert_array_equal(labels_layer.data, after_two)
    widget.undo()
    widget.undo()  # the second click
    widget.undo()  # the first commit
    np.testing.assert_array_equal(labels_layer.data, np.zeros_like(after_one))
    assert messages["error"] == []


def test_right_click_is_negative_drag_is_no_click_and_t_toggles(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(two_disks(), name="disks")
    widget = dock(viewer)
    points = widget.points_layer

    click(points, (40, 50), drag=40.0)  # a pan, not a click
    assert len(points.data) == 0
    click(points, (40, 50))
    click(points, (80, 115), button=2)
    wait_idle(qtbot, widget)
    assert points.features["label"].tolist() == [1, 0]
    assert widget.session.prompts.labels == (1, 0)
    assert widget.session.object_masks()  # the positive disk is still segmented

    widget.toggle_polarity()  # T: a left click is now negative
    click(points, (10, 10))
    wait_idle(qtbot, widget)
    assert points.features["label"].tolist() == [1, 0, 0]
    # the colours tell the two kinds apart
    assert not np.allclose(points.face_color[0], points.face_color[1])


def test_option_checkboxes_apply_at_once_and_to_new_sessions(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = two_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer)
    assert widget.pieces_check.isChecked()  # the default: only what was clicked
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    first = disk(image.shape, (40, 50), 14) > 0
    np.testing.assert_array_equal(widget.preview_layer.data > 0, first)

    widget.pieces_check.setChecked(False)  # the same click now shows both bright disks
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, image > 0)
    widget.commit()
    np.testing.assert_array_equal(widget.labels_layer.data == 1, image > 0)

    widget.size_combo.setCurrentIndex(1)  # a new session keeps the checkbox's choice
    click(widget.points_layer, (80, 115))
    wait_idle(qtbot, widget)
    assert widget.session.mask_policy.keep_clicked_pieces is False
    assert not hasattr(widget.session.predictor, "clicked_pieces_only")  # the policy is the session's
    widget.pieces_check.setChecked(True)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(image.shape, (80, 115), 11) > 0)
    assert widget.session.zoom_in  # zoom-in is on by default in the widget
    widget.zoom_check.setChecked(False)
    wait_idle(qtbot, widget)
    assert not widget.session.zoom_in


def test_keys_are_bound_on_the_viewer(make_napari_viewer, qtbot):
    from app_model.types import KeyBinding

    viewer = make_napari_viewer()
    viewer.add_image(two_disks(), name="disks")
    widget = dock(viewer)
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    viewer.keymap[KeyBinding.from_str("C")](viewer)  # commit
    assert widget.labels_layer.data.max() == 1
    viewer.keymap[KeyBinding.from_str("Ctrl+Z")](viewer)  # undo the commit
    assert widget.labels_layer.data.max() == 0
    viewer.keymap[KeyBinding.from_str("Ctrl+Shift+Z")](viewer)  # redo
    assert widget.labels_layer.data.max() == 1


def test_removing_the_dock_unbinds_its_keys(make_napari_viewer):
    from app_model.types import KeyBinding

    viewer = make_napari_viewer()
    viewer.add_image(two_disks(), name="disks")
    widget = dock(viewer)
    assert KeyBinding.from_str("C") in viewer.keymap
    viewer.window.remove_dock_widget(widget)
    assert KeyBinding.from_str("C") not in viewer.keymap
    viewer.add_image(two_disks(), name="more")  # the removed widget no longer listens
    assert widget.image_combo.count() == 1


def test_box_prompt_segments_inside_the_box(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = two_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer)
    widget.box_layer.add_rectangles(np.array([[60, 95], [60, 135], [100, 135], [100, 95]]))
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(image.shape, (80, 115), 11) > 0)


def test_a_second_box_replaces_the_first(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = two_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer)
    widget.box_layer.add_rectangles(np.array([[20, 30], [20, 70], [60, 70], [60, 30]]))
    wait_idle(qtbot, widget)
    widget.box_layer.add_rectangles(np.array([[60, 95], [60, 135], [100, 135], [100, 95]]))
    wait_idle(qtbot, widget)
    assert len(widget.box_layer.data) == 1
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(image.shape, (80, 115), 11) > 0)
    widget.undo()  # back to the first box
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(image.shape, (40, 50), 14) > 0)
    np.testing.assert_allclose(widget.box_layer.data[0].min(axis=0), (20, 30))


def test_rgb_image(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    grey = two_disks()
    viewer.add_image(np.stack([grey, grey // 2, grey], axis=-1), name="rgb")
    widget = dock(viewer)
    assert widget.preview_layer.data.shape == grey.shape
    click(widget.points_layer, (80, 115))
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(grey.shape, (80, 115), 11) > 0)


def test_a_new_click_makes_running_work_stale_and_the_viewer_stays_responsive(make_napari_viewer, qtbot):
    release = threading.Event()
    entered = threading.Event()

    class SlowPredictor(FakePredictor):
        def embed(self, image, contrast_limits=None):
            entered.set()
            release.wait(timeout=30)  # an embedding that takes as long as the test wants
            return super().embed(image, contrast_limits)

    predictor = SlowPredictor(target_size=1024)
    viewer = make_napari_viewer()
    image = two_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer, lambda choice: predictor)

    click(widget.points_layer, (40, 50))
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    # While the worker is stuck in the embedding, Qt still runs the viewer.
    ticks = []
    from qtpy.QtCore import QTimer

    QTimer.singleShot(0, lambda: ticks.append(1))
    qtbot.waitUntil(lambda: ticks == [1], timeout=WAIT_MS)
    viewer.dims.set_point(0, 3)  # the viewer reacts to the user meanwhile
    assert widget.busy and not widget.progress_bar.isHidden()

    click(widget.points_layer, (80, 115))  # a second click before the first answer
    release.set()
    wait_idle(qtbot, widget)
    both = (disk(image.shape, (40, 50), 14) > 0) | (disk(image.shape, (80, 115), 11) > 0)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, both)
    assert [len(call["points"]) for call in predictor.predict_calls] == [2]  # the stale request never ran the decoder
    assert widget.progress_bar.isHidden()


def test_commit_pressed_while_segmenting_happens_when_the_mask_arrives(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = two_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer)
    click(widget.points_layer, (40, 50))
    assert widget.busy
    widget.commit()  # C pressed before the worker answered
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels_layer.data == 1, disk(image.shape, (40, 50), 14) > 0)
    assert len(widget.points_layer.data) == 0


def test_model_errors_become_notifications_and_leave_layers_as_they_were(make_napari_viewer, qtbot, messages):
    class BrokenPredictor(FakePredictor):
        def embed(self, image, contrast_limits=None):
            raise ValueError("this slice cannot be embedded")

    viewer = make_napari_viewer()
    viewer.add_image(two_disks(), name="disks")
    widget = dock(viewer, lambda choice: BrokenPredictor(target_size=choice.target_size))
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    assert any("cannot be embedded" in m for m in messages["error"])
    assert len(widget.points_layer.data) == 0  # the failed prompt was taken back
    assert not widget.preview_layer.data.any() and not widget.labels_layer.data.any()


def test_bad_inputs_show_a_message_and_change_no_layer(make_napari_viewer, qtbot, messages):
    viewer = make_napari_viewer()
    widget = dock(viewer)
    assert not widget.add_point_at((5, 5))  # no image at all
    assert len(viewer.layers) == 0 and len(messages["error"]) == 1

    image = two_disks()
    viewer.add_image(image, name="disks")
    wrong = viewer.add_labels(np.zeros((10, 10), np.uint16), name="small labels")
    layer_names = [layer.name for layer in viewer.layers]

    click(widget.points_layer, (500, 50))  # outside the image
    assert len(widget.points_layer.data) == 0 and "outside" in messages["error"][-1]

    widget.labels_combo.setCurrentIndex(widget.labels_combo.findText("small labels"))
    click(widget.points_layer, (40, 50))  # labels layer of the wrong shape
    assert "shape" in messages["error"][-1] and len(widget.points_layer.data) == 0
    assert [layer.name for layer in viewer.layers] == layer_names and not wrong.data.any()

    widget.commit()  # nothing to commit
    assert "nothing to commit" in messages["info"][-1]
    widget.labels_combo.setCurrentIndex(0)  # back to a new labels layer
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    widget.propagate("forward")  # a 2-D image has no other slices
    assert "volume" in messages["error"][-1]


def test_a_deleted_labels_layer_comes_back_with_its_objects(make_napari_viewer, qtbot, messages):
    viewer = make_napari_viewer()
    viewer.add_image(two_disks(), name="disks")
    widget = dock(viewer)
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    widget.commit()
    labels = widget.labels_layer
    viewer.layers.remove(labels)
    click(widget.points_layer, (80, 115))
    wait_idle(qtbot, widget)
    widget.commit()
    assert labels in viewer.layers and set(np.unique(labels.data)) == {0, 1, 2}
    assert any("restored" in m for m in messages["info"])


def sphere_volume(shape=(12, 64, 64), centre=(6, 32, 32), radius=5.5):
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    radial = np.sqrt((y - centre[1]) ** 2 + (x - centre[2]) ** 2)
    ball = (radial <= 14) & (np.abs(z - centre[0]) <= radius)  # a short cylinder: every slice alike
    return (ball * 200).astype(np.uint8)


def test_volume_segment_one_slice_then_propagate_fills_the_neighbours(make_napari_viewer, qtbot, messages):
    viewer = make_napari_viewer()
    volume = sphere_volume()
    viewer.add_image(volume, name="volume", scale=(3.0, 1.0, 1.0))
    widget = dock(viewer)
    viewer.dims.set_current_step(0, 6)
    click(widget.points_layer, (18.0, 32, 32))  # world z = 6 slices * 3.0
    wait_idle(qtbot, widget)
    preview = widget.preview_layer.data
    assert preview[6].any() and not preview[5].any() and not preview[7].any()

    widget.propagate("both")
    wait_idle(qtbot, widget)
    filled = [z for z in range(volume.shape[0]) if preview[z].any()]
    assert filled == [z for z in range(volume.shape[0]) if volume[z].any()]  # slices 1..11
    for z in filled:
        assert iou(preview[z] > 0, volume[z] > 0) > 0.95

    viewer.dims.set_current_step(0, 8)  # the session follows the slider
    assert widget.session.slice_key.position == (8,)
    widget.commit()
    assert [z for z in range(volume.shape[0]) if (widget.labels_layer.data[z] == 1).any()] == filled
    widget.undo()
    assert not widget.labels_layer.data.any()
    assert messages["error"] == []


def test_a_failed_propagation_keeps_the_slice_that_was_segmented(make_napari_viewer, qtbot, messages):
    class FirstSliceOnly(FakePredictor):
        def embed(self, image, contrast_limits=None):
            if self.embed_calls:
                raise ValueError("no more embeddings today")
            return super().embed(image, contrast_limits)

    viewer = make_napari_viewer()
    viewer.add_image(sphere_volume(), name="volume")
    widget = dock(viewer, lambda choice: FirstSliceOnly(target_size=choice.target_size))
    viewer.dims.set_current_step(0, 6)
    click(widget.points_layer, (6, 32, 32))
    wait_idle(qtbot, widget)
    before = widget.preview_layer.data.copy()
    widget.propagate("forward")
    wait_idle(qtbot, widget)
    assert "no more embeddings" in messages["error"][-1]
    assert len(widget.points_layer.data) == 1 and widget.session.prompts.points
    np.testing.assert_array_equal(widget.preview_layer.data, before)


def test_nifti_through_reader_widget_and_writer_keeps_geometry(make_napari_viewer, qtbot, tmp_path):
    direction = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    geometry = {"spacing": (2.5, 0.8, 0.7), "origin": (-30.0, 12.0, 4.0), "direction": direction}
    import SimpleITK as sitk

    volume = sitk.GetImageFromArray(sphere_volume().astype(np.float32))  # float: an image, not labels
    io._apply_geometry(volume, geometry)
    sitk.WriteImage(volume, str(tmp_path / "volume.nii.gz"))
    viewer = make_napari_viewer()
    [image] = viewer.open(str(tmp_path / "volume.nii.gz"), plugin=PLUGIN)
    widget = dock(viewer)
    viewer.dims.set_current_step(0, 6)
    centre = image.data_to_world((6, 32, 32))
    click(widget.points_layer, centre)
    wait_idle(qtbot, widget)
    widget.commit()
    labels = widget.labels_layer
    np.testing.assert_allclose(labels.scale, image.scale)
    np.testing.assert_allclose(labels.translate, image.translate)

    [path] = labels.save(str(tmp_path / "labels.nii.gz"), plugin=PLUGIN)
    array, metadata = io.read_image(path)
    np.testing.assert_array_equal(array, labels.data)
    assert array[6].any()
    np.testing.assert_allclose(metadata["spacing"], geometry["spacing"], rtol=1e-6)
    np.testing.assert_allclose(metadata["origin"], geometry["origin"], atol=1e-5)
    np.testing.assert_allclose(metadata["direction"], direction, atol=1e-6)


def test_real_bundled_model_segments_the_clicked_disk(make_napari_viewer, qtbot, messages):
    """End to end with hrsam_model.Predictor (built lazily in the worker)."""
    from hrsam_model import bundled_weights_path

    weights = bundled_weights_path("hrsam_tiny")
    viewer = make_napari_viewer()
    shape = (256, 256)
    image = disk(shape, (80, 90), 30) + disk(shape, (170, 180), 25, value=160)
    viewer.add_image(image, name="disks")
    widget = dock(viewer, predictor_factory=None)  # the default: hrsam_tiny, bundled if present
    click(widget.points_layer, (80, 90))
    wait_idle(qtbot, widget, timeout=570_000)
    assert messages["error"] == []
    assert widget.session.iou is not None  # the real decoder answered
    np.testing.assert_array_equal(widget.preview_layer.data > 0, widget.session.preview)
    if weights.is_file():
        assert "bundled weights" in widget.model_label.text()
        assert iou(widget.preview_layer.data > 0, disk(shape, (80, 90), 30) > 0) >= 0.8
    else:
        assert "RANDOM" in widget.model_label.text() and messages["warning"]


def test_a_click_on_an_image_without_contrast_warns_and_segments_nothing(make_napari_viewer, qtbot, messages):
    from _session_fakes import BlobPredictor

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((120, 160), np.uint8), name="blank")
    widget = dock(viewer, lambda choice: BlobPredictor(target_size=choice.target_size))  # it invents objects
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    assert not widget.preview_layer.data.any()
    assert len(messages["warning"]) == 1 and "no contrast" in messages["warning"][0]
    assert "no contrast" in widget.status_label.text()
