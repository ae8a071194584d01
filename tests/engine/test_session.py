"""Behaviour of napari_hrsam.engine.session.Session: prompts, undo/redo, commit, propagation, worker
answers and bad input (fake predictor: exact answers), plus end-to-end runs with the real tiny
model. Huge slices, lazy arrays and the embedding cache: test_session_large_data.py."""
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from _session_fakes import NO_HOLD, FakePredictor, cylinder, disk
from napari_hrsam.engine.mask_policy import MaskPolicy
from napari_hrsam.engine.session import Session
from napari_hrsam.engine.state import SliceKey


def two_disks(shape=(100, 120)):
    """Disk A centred (40, 50) r10, disk B centred (70, 90) r8."""
    return disk(shape, (40, 50), 10) | disk(shape, (70, 90), 8)


# ------------------------------------------------------------------------ prompts
def test_click_previews_the_clicked_disk_only():
    image = two_disks()
    session = Session(image, FakePredictor(), mask_policy=NO_HOLD)
    preview = session.add_point((40, 50))
    np.testing.assert_array_equal(preview, disk(image.shape, (40, 50), 10) > 0)
    assert session.iou == pytest.approx(0.9)
    assert not session.pending
    session.add_point((70, 90))
    np.testing.assert_array_equal(session.preview, image > 0)
    session.add_point((72, 90), positive=False)
    np.testing.assert_array_equal(session.preview, disk(image.shape, (40, 50), 10) > 0)
    assert session.prompts.labels == (1, 1, 0)


def test_predict_again_follows_a_changed_mask_policy_without_an_undo_step():
    image = two_disks()
    predictor = FakePredictor()
    session = Session(image, predictor, mask_policy=NO_HOLD)
    session.add_point((40, 50))
    session.mask_policy = MaskPolicy(keep_clicked_pieces=False, hold_clicks=False)
    session.predict_again()
    assert session.pending
    np.testing.assert_array_equal(session.predict(), image > 0)  # both disks: the whole mask
    session.mask_policy = NO_HOLD
    session.predict_again()  # remembered results of these prompts are not reused
    np.testing.assert_array_equal(session.predict(), disk(image.shape, (40, 50), 10) > 0)
    assert session.history[0] == ["add point"] and session.undo() and session.preview is None


def test_predictor_gets_x_y_order_and_previous_logits():
    predictor = FakePredictor()
    session = Session(two_disks(), predictor)
    session.add_point((40, 55))
    first = predictor.predict_calls[-1]
    np.testing.assert_allclose(first["points"], [[55, 40]])  # (x=col, y=row)
    assert first["mask_input"] is None
    session.add_point((70, 90))
    second = predictor.predict_calls[-1]
    np.testing.assert_allclose(second["points"], [[55, 40], [90, 70]])
    assert second["mask_input"] is not None  # iterative clicking feeds the logits back
    session.remove_point(0)
    assert predictor.predict_calls[-1]["mask_input"] is None  # not an extension any more
    np.testing.assert_array_equal(session.preview, disk((100, 120), (70, 90), 8) > 0)


def test_box_and_set_prompts():
    image = two_disks()
    session = Session(image, FakePredictor())
    session.set_box((25, 35, 55, 65))
    np.testing.assert_array_equal(session.preview, disk(image.shape, (40, 50), 10) > 0)
    np.testing.assert_allclose(session.predictor.predict_calls[-1]["box"], [35, 25, 65, 55])
    session.set_prompts([(40, 50), (70, 90)], [1, 1])
    assert session.prompts.box is None
    np.testing.assert_array_equal(session.preview, image > 0)
    depth = len(session.history[0])
    session.set_prompts([(40, 50), (70, 90)], [1, 1])  # unchanged: no new step
    assert len(session.history[0]) == depth
    session.set_box(None)  # nothing to remove: no step either
    assert len(session.history[0]) == depth


def test_undo_redo_prompts_and_redo_tail_dropped():
    image = two_disks()
    predictor = FakePredictor()
    session = Session(image, predictor)
    session.add_point((40, 50))
    a = session.preview.copy()
    session.add_point((70, 90))
    assert session.undo()
    np.testing.assert_array_equal(session.preview, a)
    assert session.prompts.points == ((40.0, 50.0),)
    calls = len(predictor.predict_calls)
    assert session.redo()
    np.testing.assert_array_equal(session.preview, image > 0)
    assert len(predictor.predict_calls) == calls  # redo reuses the remembered prediction
    assert session.undo() and session.undo()
    assert session.preview is None and session.prompts.empty
    assert not session.undo()
    assert session.redo()  # back to one click
    session.add_point((72, 92), positive=False)  # new action: the redo tail is gone
    assert not session.can_redo and not session.redo()
    assert session.history == (["add point", "add point"], [])


def test_reset_is_undoable():
    session = Session(two_disks(), FakePredictor())
    session.add_point((40, 50))
    session.add_point((70, 90))
    before = session.preview.copy()
    session.reset()
    assert session.preview is None and session.object.empty
    session.undo()
    np.testing.assert_array_equal(session.preview, before)
    assert len(session.prompts.points) == 2


# ------------------------------------------------------------------------ commit
def test_commit_ids_one_then_two_and_exact_undo_redo():
    image = two_disks()
    session = Session(image, FakePredictor())
    empty = session.labels.copy()
    session.add_point((40, 50))
    assert session.commit() == 1
    after_one = session.labels.copy()
    expected_one = np.where(disk(image.shape, (40, 50), 10) > 0, 1, 0)
    np.testing.assert_array_equal(after_one, expected_one)
    assert session.object.empty and session.preview is None
    session.add_point((70, 90))
    assert session.commit() == 2
    after_two = session.labels.copy()
    np.testing.assert_array_equal(after_two, expected_one + np.where(
        disk(image.shape, (70, 90), 8) > 0, 2, 0))
    assert sorted(session.objects) == [1, 2]
    session.undo()
    np.testing.assert_array_equal(session.labels, after_one)
    assert session.prompts.points == ((70.0, 90.0),)  # the object is back for editing
    session.undo(), session.undo(), session.undo()
    np.testing.assert_array_equal(session.labels, empty)
    while session.redo():
        pass
    np.testing.assert_array_equal(session.labels, after_two)


def test_commit_never_overwrites_unless_asked():
    image = disk((80, 80), (40, 40), 15)
    labels = np.zeros((80, 80), np.uint16)
    labels[30:50, 30:50] = 7  # an existing object
    session = Session(image, FakePredictor(), labels=labels)
    session.add_point((40, 40))
    assert session.next_label_id == 8
    assert session.commit() == 8
    assert (labels[30:50, 30:50] == 7).all()
    assert ((labels == 8) == ((image > 0) & (labels != 7))).all()
    session.undo()
    session.add_point((40, 40))  # a fresh click on the same disk
    session.undo()  # back to the restored object
    assert session.commit(overwrite=True) == 8
    np.testing.assert_array_equal(labels == 8, image > 0)
    session.undo()
    assert (labels[30:50, 30:50] == 7).all() and labels.max() == 7


def test_commit_with_nothing_new_is_refused():
    image = disk((50, 50), (25, 25), 8)
    labels = np.where(image > 0, 3, 0).astype(np.int32)
    session = Session(image, FakePredictor(), labels=labels)
    with pytest.raises(ValueError, match="nothing to commit"):
        session.commit()
    session.add_point((25, 25))
    with pytest.raises(ValueError, match="already has a label"):
        session.commit()
    assert session.history == (["add point"], [])
    np.testing.assert_array_equal(labels, np.where(image > 0, 3, 0))


def test_remove_object_undoable():
    session = Session(two_disks(), FakePredictor())
    session.add_point((40, 50))
    session.commit()
    session.add_point((70, 90))
    session.commit()
    both = session.labels.copy()
    assert session.remove_object(1) == int((both == 1).sum())
    assert not (session.labels == 1).any() and (session.labels == 2).any()
    assert sorted(session.objects) == [2]
    session.undo()
    np.testing.assert_array_equal(session.labels, both)
    assert sorted(session.objects) == [1, 2]
    with pytest.raises(ValueError, match="no voxel"):
        session.remove_object(5)


def test_paint_object_into_a_preview_volume():
    volume = cylinder()
    session = Session(volume, FakePredictor())
    session.set_slice((10,))
    session.add_point((30, 30))
    session.propagate("forward", max_slices=3)
    preview = np.zeros(volume.shape, np.uint8)
    windows = session.paint_object(preview, value=1)
    expected = np.zeros_like(preview)
    expected[10:14] = volume[10:14] > 0
    np.testing.assert_array_equal(preview, expected)
    session.undo()  # the propagation
    session.paint_object(preview, value=1, erase=windows)
    expected[11:14] = 0
    np.testing.assert_array_equal(preview, expected)


def test_export_metadata_is_json():
    session = Session(two_disks(), FakePredictor())
    session.add_point((40, 50))
    session.commit()
    labels, metadata = session.export()
    assert labels is session.labels
    text = json.dumps(metadata)
    assert json.loads(text)["objects"]["1"]["slices"][0]["prompts"]["points"] == [[40.0, 50.0]]


# ------------------------------------------------------------------------ volumes
def test_propagation_fills_the_structure_and_stops_at_its_ends():
    volume = cylinder()
    session = Session(volume, FakePredictor())  # holds user clicks; propagation's own are not held
    session.set_slice((10,))
    session.add_point((30, 30))
    progress = []
    result = session.propagate(progress=lambda done, total: progress.append((done, total)))
    assert sorted(k.position[0] for k in result.slices) == [5, 6, 7, 8, 9, 11, 12, 13, 14]
    assert result.stop_reasons == {1: "empty mask", -1: "empty mask"}
    assert progress[-1][0] == 9 and progress[0] == (1, 19)
    assert session.history[0] == ["add point", "propagate"]
    session.commit()
    np.testing.assert_array_equal(session.labels, (volume > 0).astype(np.int32))
    session.undo()  # commit
    session.undo()  # the whole propagation is one step
    assert list(session.object.slices) == [SliceKey((1, 2), (10,))]


def test_propagation_range_direction_cancel_and_user_slices():
    volume = cylinder()
    session = Session(volume, FakePredictor())
    session.set_slice((10,))
    session.add_point((30, 30))
    result = session.propagate("forward", max_slices=2)
    assert sorted(k.position[0] for k in result.slices) == [11, 12]
    assert result.stop_reasons == {1: "range end"}
    session.undo()
    session.set_slice((7,))
    session.add_point((30, 30))  # a user slice below
    session.set_slice((10,))
    calls = iter(range(100))
    result = session.propagate("backward", should_cancel=lambda: next(calls) >= 5)
    assert sorted(k.position[0] for k in result.slices) == [8, 9]
    assert result.stop_reasons == {-1: "user-prompted slice"}
    calls = iter(range(100))
    result = session.propagate("forward", should_cancel=lambda: next(calls) >= 1)
    assert result.cancelled and sorted(k.position[0] for k in result.slices) == [11]


def test_propagation_stops_on_low_iou():
    low = Session(cylinder(), FakePredictor(iou=0.3))
    low.set_slice((10,))
    low.add_point((30, 30))
    result = low.propagate()
    assert not result.slices and set(result.stop_reasons.values()) == {"low predicted IoU"}
    assert low.history[0] == ["add point"]  # nothing propagated, no step


def test_any_axis_order_writes_the_right_voxels():
    # (y, z, x) volume viewed with rows = x and cols = y (transposed) on z = 3
    zyx = cylinder(depth=8, first=2, last=5, shape=(40, 50), centre=(15, 30), radius=6)
    yzx = np.ascontiguousarray(zyx.transpose(1, 0, 2))
    session = Session(yzx, FakePredictor())
    session.set_slice((0, 3, 0), displayed_axes=(2, 0))  # full-length position
    assert session.slice_shape == (50, 40)
    session.add_point((30, 15))  # row = x = 30, col = y = 15
    session.propagate()
    session.commit()
    np.testing.assert_array_equal(session.labels, (yzx > 0).astype(np.int32))


def test_multichannel_and_rgb():
    volume = np.zeros((2, 6, 40, 40), np.uint16)  # (channel, z, y, x)
    volume[1, 3] = disk((40, 40), (20, 20), 7, value=3000, dtype=np.uint16)
    volume[0, 3] = disk((40, 40), (10, 10), 5, value=3000, dtype=np.uint16)
    predictor = FakePredictor()
    session = Session(volume, predictor, channel_axis=0, channels=(1,))
    assert session.spatial_shape == (6, 40, 40) and session.labels.shape == (6, 40, 40)
    session.set_slice((3,))
    session.add_point((20, 20))
    np.testing.assert_array_equal(session.preview, volume[1, 3] > 0)
    both = Session(volume, FakePredictor(), channel_axis=0, contrast_limits=(0, 3000))
    both.set_slice((3,))
    both.add_point((10, 10))  # channel 0 is red in the model's RGB
    np.testing.assert_array_equal(both.preview, volume[0, 3] > 0)
    rgb = np.zeros((30, 30, 3), np.uint8)
    rgb[..., 1] = disk((30, 30), (15, 15), 6, value=255)
    session = Session(rgb, FakePredictor())  # RGB guessed like napari
    assert session.labels.shape == (30, 30)
    session.add_point((15, 15))
    np.testing.assert_array_equal(session.preview, rgb[..., 1] > 0)


@pytest.mark.parametrize("dtype, low, high", [(np.uint16, 100, 900), (np.int16, -200, 800),
                                               (np.float32, -0.5, 2.5)])
def test_dtypes_and_contrast_limits(dtype, low, high):
    inside = disk((60, 60), (30, 30), 9) > 0
    image = np.where(inside, high, low).astype(dtype)
    predictor = FakePredictor()
    session = Session(image, predictor, mask_policy=NO_HOLD)
    session.add_point((30, 30))
    np.testing.assert_array_equal(session.preview, inside)
    assert predictor.embed_calls[-1]["contrast_limits"] == (low, high)  # percentiles
    session.set_contrast_limits((low, 3 * high - 2 * low))  # e.g. a CT window: new embedding
    session.add_point((5, 5), positive=False)
    assert predictor.embed_calls[-1]["contrast_limits"] == (low, 3 * high - 2 * low)
    assert not session.preview.any()  # the disk is now below the window's middle


# ------------------------------------------------------------------------ worker split
def test_worker_split_drops_stale_answers():
    image = two_disks()
    session = Session(image, FakePredictor())
    session.add_point((40, 50), predict=False)
    assert session.pending and session.preview is None
    first = session.pending_request()
    session.add_point((70, 90), predict=False)  # the user clicks again meanwhile
    assert session.compute(first) is None  # stale before it started
    second = session.pending_request()
    answers = {}
    worker = threading.Thread(target=lambda: answers.update(p=session.compute(second)))
    worker.start()
    worker.join()
    assert session.apply(answers["p"]) and not session.pending
    np.testing.assert_array_equal(session.preview, image > 0)
    assert not session.apply(answers["p"])  # applying twice changes nothing


def test_failed_worker_prediction_is_discarded_with_redo_tail():
    image = np.zeros((40, 40), np.float32)
    image[10:20, 10:20] = 5
    session = Session(image, FakePredictor())
    session.add_point((15, 15))
    session.add_point((30, 30), positive=False)
    session.undo()
    image[0, 0] = np.nan  # the data went bad (another plugin wrote into it)
    session.set_contrast_limits((0, 10))  # new limits: a new embedding must be made
    session.add_point((12, 12), predict=False)
    request = session.pending_request()
    with pytest.raises(ValueError, match="NaN"):
        session.compute(request)
    assert session.discard(request)
    assert session.history == (["add point"], ["add point"])  # redo tail is back
    assert session.prompts.points == ((15.0, 15.0),) and not session.pending


# ------------------------------------------------------------------------ bad input
def test_bad_input_changes_nothing():
    with pytest.raises(ValueError, match="no image"):
        Session(None, FakePredictor())
    with pytest.raises(ValueError, match="spatial axes"):
        Session(np.zeros((5, 3)), FakePredictor(), channel_axis=0)
    with pytest.raises(ValueError, match="does not match"):
        Session(np.zeros((10, 10)), FakePredictor(), labels=np.zeros((10, 11), np.int32))
    with pytest.raises(ValueError, match="not an integer"):
        Session(np.zeros((10, 10)), FakePredictor(), labels=np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="contrast_limits"):
        Session(np.zeros((10, 10)), FakePredictor(), contrast_limits=(5, 1))
    stack = np.zeros((2, 3, 4, 30, 30), np.uint8)
    session = Session(stack, FakePredictor())
    with pytest.raises(ValueError, match="set_slice"):
        session.add_point((5, 5))
    with pytest.raises(ValueError, match="outside spatial axis"):
        session.set_slice((1, 2, 9))
    assert session.slice_key is None and session.history == ([], [])

    image = two_disks()
    session = Session(image, FakePredictor())
    session.add_point((40, 50))
    session.commit()
    session.add_point((70, 90))
    labels, preview, history = session.labels.copy(), session.preview.copy(), session.history
    for action in (lambda: session.add_point((100, 5)), lambda: session.add_point((5, -1)),
                   lambda: session.set_box((0, 0, 200, 10)), lambda: session.remove_point(4),
                   lambda: session.set_prompts([(1, 1)], [2]),
                   lambda: session.propagate(), lambda: session.remove_object(0)):
        with pytest.raises(ValueError):
            action()
        np.testing.assert_array_equal(session.labels, labels)
        np.testing.assert_array_equal(session.preview, preview)
        assert session.history == history

    nan = np.zeros((30, 30), np.float32)
    nan[3, 3] = np.nan
    session = Session(nan, FakePredictor())
    with pytest.raises(ValueError, match="NaN"):
        session.add_point((10, 10))
    assert session.history == ([], []) and session.object.empty and not session.labels.any()


# ------------------------------------------------------------------------ real model
def test_real_tiny_model_end_to_end():
    from hrsam_model import Predictor, build_model

    predictor = Predictor(build_model("hrsam_tiny", pretrained=False), device="cpu")
    volume = np.stack([two_disks((96, 128))] * 3)
    session = Session(volume, predictor)
    session.set_slice((1,))
    preview = session.add_point((40, 50))
    assert preview.shape == (96, 128) and preview.dtype == bool
    assert len(session.cache) == 1 and session.cache.nbytes > 0
    assert session.object.slices[session.slice_key].result.logits.shape == (1, 256, 256)
    session.add_point((70, 90), positive=False)
    assert len(session.cache) == 1 and session.cache.hits >= 1
    second = session.preview.copy()
    session.undo()
    np.testing.assert_array_equal(session.preview, preview)
    session.redo()
    np.testing.assert_array_equal(session.preview, second)
    if second.any():
        assert session.commit() == 1
        np.testing.assert_array_equal(session.labels[1] == 1, second)
        assert not session.labels[0].any() and not session.labels[2].any()
        session.undo()
        assert not session.labels.any()
    else:  # random weights may well predict nothing: then there is nothing to commit
        with pytest.raises(ValueError, match="nothing to commit"):
            session.commit()


BUNDLED = Path(__file__).resolve().parents[2] / "hrsam_model" / "weights" / "hrsam_tiny.safetensors"


@pytest.mark.skipif(not BUNDLED.exists(), reason="bundled weights hrsam_tiny.safetensors not there yet")
def test_bundled_model_segments_a_bright_disk():
    from hrsam_model import Predictor, build_model

    image = disk((256, 256), (100, 140), 30, value=220) + 20
    predictor = Predictor(build_model("hrsam_tiny", pretrained=True), device="cpu")
    session = Session(image, predictor)
    preview = session.add_point((100, 140))
    truth = disk((256, 256), (100, 140), 30) > 0
    assert (preview & truth).sum() / (preview | truth).sum() >= 0.8
