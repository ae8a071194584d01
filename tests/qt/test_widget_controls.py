"""The widget's controls as a user meets them (issue 30): messages after propagation and
commit, Cancel during a click, model / target size / labels layer changes that keep the
history, prompt markers sized on screen, clicks while another layer is selected.

Same fixtures and fake predictor as tests/test_widget.py.
"""
import threading

import numpy as np
import pytest
from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

from _session_fakes import FakePredictor, disk
from test_widget import WAIT_MS, MouseEvent, Persisted, click, dock, messages, wait_idle  # noqa: F401

THREE = ((30, 40), (80, 115), (30, 130))  # disk centres of three_disks()


def three_disks(shape=(120, 160)):
    return sum(disk(shape, centre, 12) for centre in THREE)


def one_slice_volume():
    volume = np.zeros((8, 64, 64), np.uint8)
    volume[4] = disk((64, 64), (32, 32), 12)
    return volume


def test_a_propagation_that_finds_nothing_says_so_not_that_the_object_changed(make_napari_viewer, qtbot, messages):
    viewer = make_napari_viewer()
    viewer.add_image(one_slice_volume(), name="volume")
    widget = dock(viewer)
    viewer.dims.set_current_step(0, 4)
    click(widget.points_layer, (4, 32, 32))
    wait_idle(qtbot, widget)
    widget.propagate_forward()  # the ] key: slice 5 is empty
    wait_idle(qtbot, widget)
    status = widget.status_label.text()
    assert "changed meanwhile" not in status
    assert "found nothing" in status and "empty mask" in status
    assert [z for z in range(8) if widget.preview_layer.data[z].any()] == [4]


def slow_widget(make_napari_viewer):
    """(widget, image, release, entered): a widget whose encoder cannot be interrupted; it
    sets ``entered`` when an encoding starts and waits for ``release``."""
    release, entered = threading.Event(), threading.Event()

    class SlowPredictor(FakePredictor):
        def embed(self, image, contrast_limits=None):
            entered.set()
            release.wait(timeout=30)
            return super().embed(image, contrast_limits)

    viewer = make_napari_viewer()
    image = three_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer, lambda choice: SlowPredictor(target_size=choice.target_size))
    return widget, image, release, entered


def test_cancel_during_a_click_applies_no_mask_and_takes_the_click_back(make_napari_viewer, qtbot, messages):
    widget, image, release, entered = slow_widget(make_napari_viewer)
    click(widget.points_layer, THREE[0])
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    assert widget.cancel_button.isEnabled()
    widget.cancel_button.click()
    assert len(widget.points_layer.data) == 0 and widget.session.object.empty  # taken back at once
    assert "ancel" in widget.status_label.text() and not widget.session.can_undo
    release.set()  # the worker finishes its encoding after the Cancel
    wait_idle(qtbot, widget)
    assert not widget.preview_layer.data.any()  # its mask is never shown
    assert len(widget.points_layer.data) == 0 and widget.session.object.empty
    assert messages["error"] == []

    click(widget.points_layer, THREE[1])  # the next click segments as usual
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(image.shape, THREE[1], 12) > 0)


def test_a_click_right_after_cancel_counts_while_the_cancelled_work_finishes(make_napari_viewer, qtbot, messages):
    widget, image, release, entered = slow_widget(make_napari_viewer)
    click(widget.points_layer, THREE[0])
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    widget.cancel()
    click(widget.points_layer, THREE[1])  # while the cancelled encoding still runs
    release.set()
    wait_idle(qtbot, widget)
    assert widget.session.prompts.points == (THREE[1],)
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(image.shape, THREE[1], 12) > 0)
    assert messages["error"] == []


def test_cancel_stops_the_real_encoder_at_its_next_block():
    from _micro_model import micro_model
    from napari_hrsam.engine.model_choice import EncodingCancelled, ModelChoice, ModelStore

    store, spec = ModelStore(), ModelChoice()
    model = micro_model()
    store._models[spec.network_key] = model
    predictor = store.predictor(spec)
    blocks = model.backbone.blocks
    ran = []
    handles = [block.register_forward_hook(lambda *_: ran.append(1)) for block in blocks]
    predictor.should_cancel = lambda: len(ran) >= 1  # Cancel pressed during the first block
    image = np.zeros((64, 64), np.uint8)
    with pytest.raises(EncodingCancelled):
        predictor.embed(image)
    assert len(ran) == 1 < len(blocks)
    predictor.should_cancel = lambda: False
    predictor.embed(image)  # the next encoding runs to the end
    assert len(ran) == 1 + len(blocks)
    for handle in handles:
        handle.remove()


def commit_two(widget, qtbot):
    for centre in THREE[:2]:
        click(widget.points_layer, centre)
        wait_idle(qtbot, widget)
        widget.commit()
    return widget.labels_layer.data.copy()


@pytest.mark.parametrize("change", ["target size", "model", "checkpoint"])
def test_a_model_change_keeps_the_history_and_predicts_the_object_again(make_napari_viewer, qtbot, messages,
                                                                         change, tmp_path):
    made = []

    def factory(choice):
        made.append(FakePredictor(target_size=choice.target_size))
        return made[-1]

    viewer = make_napari_viewer()
    image = three_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer, factory)
    after_two = commit_two(widget, qtbot)
    click(widget.points_layer, THREE[2])  # an object in progress
    wait_idle(qtbot, widget)
    before = len(made)
    if change == "target size":
        widget.size_combo.setCurrentIndex(1)
    elif change == "model":
        widget.model_combo.setCurrentIndex(1)
    else:
        widget.checkpoint_edit.setText(str(tmp_path / "other.pth"))
        widget.checkpoint_edit.editingFinished.emit()
    wait_idle(qtbot, widget)
    assert len(made) == before + 1 and made[-1].predict_calls  # the new predictor drew the mask
    assert widget.session.predictor is made[-1]
    assert len(widget.points_layer.data) == 1  # the object's click stays
    third = disk(image.shape, THREE[2], 12) > 0
    np.testing.assert_array_equal(widget.preview_layer.data > 0, third)
    widget.undo()  # the click of the object in progress
    widget.undo()  # the second commit
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels_layer.data, np.where(after_two == 2, 0, after_two))
    assert len(widget.points_layer.data) == 1  # object 2's click is back
    widget.undo()
    widget.undo()  # the first commit
    assert not widget.labels_layer.data.any()
    wait_idle(qtbot, widget)  # object 1 is drawn again by the new predictor
    np.testing.assert_array_equal(widget.preview_layer.data > 0, disk(image.shape, THREE[0], 12) > 0)
    assert messages["error"] == []


def test_another_labels_layer_has_its_own_history_and_switching_back_restores_it(make_napari_viewer, qtbot,
                                                                                 messages):
    viewer = make_napari_viewer()
    image = three_disks()
    viewer.add_image(image, name="disks")
    widget = dock(viewer)
    click(widget.points_layer, THREE[0])
    wait_idle(qtbot, widget)
    widget.commit()
    first = widget.labels_layer
    other = viewer.add_labels(np.zeros(image.shape, np.uint16), name="other labels")
    viewer.layers.selection.active = widget.points_layer
    widget.labels_combo.setCurrentIndex(widget.labels_combo.findText("other labels"))
    # says that undo now works on the other layer, and how to get back to the first one's history
    assert any("disks labels" in m and "undo" in m.lower() for m in messages["info"])
    click(widget.points_layer, THREE[1])
    wait_idle(qtbot, widget)
    widget.commit()
    assert widget.labels_layer is other and (other.data == 1).sum() == (disk(image.shape, THREE[1], 12) > 0).sum()

    widget.labels_combo.setCurrentIndex(0)  # "New labels layer", then back to the first layer
    widget.labels_combo.setCurrentIndex(widget.labels_combo.findText("disks labels"))
    widget.undo()  # the commit into the first layer
    assert widget.labels_layer is first and not first.data.any()
    assert other.data.any()  # the other layer is untouched
    widget.labels_combo.setCurrentIndex(widget.labels_combo.findText("other labels"))
    widget.undo()  # and its own history is still there
    assert not other.data.any()


def test_prompt_markers_stay_a_few_screen_pixels_wide_on_a_huge_image(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    side = 8192
    image = np.zeros((side, side), np.uint8)
    viewer.add_image(image, name="huge", contrast_limits=(0, 255))
    widget = dock(viewer)
    widget.predictor_factory = lambda choice: FakePredictor(target_size=choice.target_size)
    centre = (4000.0, 4000.0)
    widget.add_point_at(centre)
    wait_idle(qtbot, widget)
    for zoom in (1.0, 4.0):  # a cell of 20-40 px spans 20-160 screen pixels
        viewer.camera.center = centre
        viewer.camera.zoom = zoom
        shot = viewer.screenshot(canvas_only=True, flash=False)
        lime = (shot[..., 1] > 150) & (shot[..., 0] < 100) & (shot[..., 2] < 100)
        rows, cols = np.flatnonzero(lime.any(axis=1)), np.flatnonzero(lime.any(axis=0))
        assert rows.size and cols.size, f"no marker on screen at zoom {zoom}"
        width = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
        assert 5 <= width <= 20, f"marker {width} screen px wide at zoom {zoom}"


def test_the_box_outline_stays_a_few_screen_pixels_wide_on_a_huge_image(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    side = 8192
    viewer.add_image(np.zeros((side, side), np.uint8), name="huge", contrast_limits=(0, 255))
    widget = dock(viewer)
    widget.box_layer.add_rectangles(np.array([[3800.0, 3800.0], [4200.0, 4200.0]]))
    for zoom in (0.1, 1.0, 4.0):
        viewer.camera.center = (4000.0, 3800.0)  # the box's left edge at the centre of the canvas
        viewer.camera.zoom = zoom
        shot = viewer.screenshot(canvas_only=True, flash=False)
        yellow = (shot[..., 0] > 150) & (shot[..., 1] > 150) & (shot[..., 2] < 100)
        row = yellow[shot.shape[0] // 2]
        assert row.any(), f"no outline on screen at zoom {zoom}"
        cols = np.flatnonzero(row)
        widest = max(len(run) for run in np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1))
        assert widest <= 6, f"outline {widest} screen px wide at zoom {zoom}"


def one_committed_disk(make_napari_viewer, qtbot):
    """(viewer, widget) after the first of THREE was clicked and committed."""
    viewer = make_napari_viewer()
    viewer.add_image(three_disks(), name="disks")
    widget = dock(viewer)
    click(widget.points_layer, THREE[0])
    wait_idle(qtbot, widget)
    widget.commit()
    return viewer, widget


def test_commit_over_labelled_pixels_names_what_the_widget_offers(make_napari_viewer, qtbot, messages):
    viewer, widget = one_committed_disk(make_napari_viewer, qtbot)
    click(widget.points_layer, THREE[0])  # the same object again
    wait_idle(qtbot, widget)
    widget.commit()
    message = messages["error"][-1]
    assert "already" in message and "overwrite=True" not in message
    assert "eraser" in message


def test_a_click_while_another_layer_is_selected_says_which_layer_to_select(make_napari_viewer, qtbot, messages):
    viewer, widget = one_committed_disk(make_napari_viewer, qtbot)
    viewer.layers.selection.active = widget.labels_layer  # e.g. to look at the labels
    widget.labels_layer.mode = "pan_zoom"
    event = MouseEvent("mouse_press", THREE[1])
    mouse_press_callbacks(viewer, Persisted(event))
    mouse_release_callbacks(viewer, Persisted(MouseEvent("mouse_release", THREE[1])))
    assert any("HRSAM prompts" in m for m in messages["info"])
    assert "HRSAM prompts" in widget.status_label.text()


def test_a_restored_labels_layer_leaves_the_prompts_layer_selected(make_napari_viewer, qtbot):
    viewer, widget = one_committed_disk(make_napari_viewer, qtbot)
    viewer.layers.remove(widget.labels_layer)
    viewer.layers.selection.active = widget.points_layer
    click(widget.points_layer, THREE[1])
    wait_idle(qtbot, widget)
    widget.commit()  # brings the labels layer back
    assert widget.labels_layer in viewer.layers
    assert viewer.layers.selection.active is widget.points_layer  # the next click still works


def test_cancel_stops_the_widgets_own_encoder_midway(make_napari_viewer, qtbot, messages):
    """The default predictor (LazyPredictor on a micro model): Cancel breaks the encoding off."""
    from _micro_model import micro_model
    from napari_hrsam.engine.model_choice import ModelChoice

    release, entered, ran = threading.Event(), threading.Event(), []

    def first_block(*_):
        ran.append(1)
        entered.set()
        release.wait(timeout=30)  # the encoder is busy until the test lets it go on

    viewer = make_napari_viewer()
    viewer.add_image(three_disks(), name="disks")
    widget = dock(viewer, predictor_factory=None)
    model = micro_model()
    widget._store._models[ModelChoice().network_key] = model  # the widget's default model, made small
    handle = model.backbone.blocks[0].register_forward_hook(first_block)
    click(widget.points_layer, THREE[0])
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    widget.cancel()
    release.set()
    wait_idle(qtbot, widget)
    handle.remove()
    assert len(ran) == 1  # stopped before the second block: nothing more was computed
    assert len(widget.points_layer.data) == 0 and not widget.preview_layer.data.any()
    assert "ancel" in widget.status_label.text() and messages["error"] == []


def test_cancel_during_zoom_ins_closer_look_keeps_the_whole_slice_mask(make_napari_viewer, qtbot, messages):
    release, entered = threading.Event(), threading.Event()

    class SlowSecondEmbedding(FakePredictor):
        def embed(self, image, contrast_limits=None):
            if self.embed_calls:  # the window around the object: slow
                entered.set()
                release.wait(timeout=30)
            return super().embed(image, contrast_limits)

    shape, centre = (700, 700), (350, 350)
    viewer = make_napari_viewer()
    viewer.add_image(disk(shape, centre, 15), name="small disk")
    widget = dock(viewer, lambda choice: SlowSecondEmbedding(target_size=choice.target_size))
    assert widget.zoom_check.isChecked()
    click(widget.points_layer, centre)
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    whole = disk(shape, centre, 15) > 0
    np.testing.assert_array_equal(widget.preview_layer.data > 0, whole)  # the first pass shows
    widget.cancel()
    release.set()
    wait_idle(qtbot, widget)
    assert "whole-slice mask" in widget.status_label.text()
    assert len(widget.points_layer.data) == 1 and not widget.session.pending
    np.testing.assert_array_equal(widget.preview_layer.data > 0, whole)
    widget.commit()
    np.testing.assert_array_equal(widget.labels_layer.data == 1, whole)
    assert messages["error"] == []
