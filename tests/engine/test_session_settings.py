"""Session results follow the settings they were made under (contrast limits, mask policy,
zoom-in): a remembered mask comes back only under the same settings, undo/redo re-predict
what other settings made, and a slice without contrast gives an empty mask and a warning
instead of an invented object. Fake predictors: exact answers."""
import warnings

import numpy as np
import pytest

from _session_fakes import BlobPredictor, FakePredictor, disk
from napari_hrsam.engine.mask_policy import MaskPolicy
from napari_hrsam.engine.session import Session
from napari_hrsam.engine.slice_engine import NoContrastWarning

SOFT_TISSUE, LUNG = (-160, 240), (-1350, 150)  # CT windows; the fake thresholds at their middle


def ct(depth=40, shape=(96, 96)):
    """Air (-1000) around a body (-100, r 30) holding an organ (100, r 8) at (48, 48)."""
    body = disk(shape, (48, 48), 30, value=1) > 0
    organ = disk(shape, (48, 48), 8, value=1) > 0
    plane = np.where(organ, 100, np.where(body, -100, -1000)).astype(np.int16)
    return np.repeat(plane[None], depth, axis=0), organ, body


def test_a_remembered_mask_comes_back_only_under_the_contrast_it_was_made_with():
    volume, organ, body = ct()
    predictor = FakePredictor()
    session = Session(volume, predictor, position=(20,), contrast_limits=SOFT_TISSUE)
    np.testing.assert_array_equal(session.add_point((48, 48)), organ)
    session.reset()
    session.set_contrast_limits(LUNG)
    np.testing.assert_array_equal(session.add_point((48, 48)), body)  # not the old window's mask
    session.reset()
    session.set_contrast_limits(SOFT_TISSUE)
    calls = len(predictor.predict_calls)
    np.testing.assert_array_equal(session.add_point((48, 48)), organ)  # remembered: no model run
    assert len(predictor.predict_calls) == calls


def test_a_remembered_mask_comes_back_only_under_the_mask_policy_it_was_made_with():
    image = disk((80, 100), (30, 30), 8) | disk((80, 100), (50, 70), 8)
    predictor = FakePredictor()
    session = Session(image, predictor)
    np.testing.assert_array_equal(session.add_point((30, 30)), disk(image.shape, (30, 30), 8) > 0)
    session.reset()
    session.mask_policy = MaskPolicy(keep_clicked_pieces=False)  # set without predict_again
    np.testing.assert_array_equal(session.add_point((30, 30)), image > 0)


def test_zoom_in_set_without_predict_again_applies_to_a_repeated_click():
    image = disk((900, 1200), (300, 700), 20)
    predictor = FakePredictor(target_size=1024)
    session = Session(image, predictor)
    session.add_point((300, 700))
    session.reset()
    session.zoom_in = True
    session.add_point((300, 700))  # not the remembered whole-slice mask: the closer look runs
    assert predictor.embed_calls[-1]["shape"] == (200, 200)
    np.testing.assert_array_equal(session.preview, image > 0)


def test_zoom_in_switched_off_between_its_two_passes_is_honoured():
    image = disk((900, 1200), (300, 700), 20)
    predictor = FakePredictor(target_size=1024)
    session = Session(image, predictor, zoom_in=True)
    session.add_point((300, 700), predict=False)
    assert session.apply(session.compute(session.pending_request()))  # the whole-view pass
    assert session.pending  # the closer look is due...
    session.zoom_in = False  # ...when the user switches zoom-in off
    session.predict_again()
    session.predict()
    assert predictor.embed_calls[-1]["shape"] == (900, 1200)  # no zoom window
    np.testing.assert_array_equal(session.preview, image > 0)


def test_undo_and_redo_after_a_contrast_change_predict_under_the_current_contrast():
    volume, organ, body = ct()
    predictor = FakePredictor()
    session = Session(volume, predictor, position=(20,), contrast_limits=SOFT_TISSUE)
    session.add_point((48, 48))
    session.add_point((5, 5), positive=False)  # in the air: the organ stays
    np.testing.assert_array_equal(session.preview, organ)
    session.set_contrast_limits(LUNG)
    assert session.undo()
    assert session.pending  # the snapshot's mask may show meanwhile, but is due again
    np.testing.assert_array_equal(session.predict(), body)
    assert predictor.predict_calls[-1]["mask_input"] is None  # no logits of another window
    assert session.redo() and session.pending
    np.testing.assert_array_equal(session.predict(), body)
    session.set_contrast_limits(SOFT_TISSUE)  # back: what it made is remembered again
    calls = len(predictor.predict_calls)
    assert session.undo() and not session.pending
    np.testing.assert_array_equal(session.preview, organ)
    assert len(predictor.predict_calls) == calls
    assert session.history == (["add point"], ["add point"])  # re-predicting made no steps


def test_a_prediction_made_under_other_contrast_is_dropped_and_asked_again():
    volume, organ, body = ct()
    session = Session(volume, FakePredictor(), position=(20,), contrast_limits=SOFT_TISSUE)
    session.add_point((48, 48), predict=False)
    answer = session.compute(session.pending_request())  # in a worker, under the old window
    session.set_contrast_limits(LUNG)  # the user changed the window meanwhile
    assert not session.apply(answer) and session.pending
    np.testing.assert_array_equal(session.predict(), body)


# ------------------------------------------------------------------------ no contrast
@pytest.mark.parametrize("image, position, limits", [
    (np.zeros((64, 64), np.uint8), None, None),  # all zero
    (np.full((3, 64, 64), 700, np.int16), (1,), None),  # a constant slice (percentile limits)
    (ct()[0], (20,), (500, 900)),  # nothing inside the window: all clipped to its bottom
])
def test_a_slice_without_contrast_gives_an_empty_mask_and_a_warning(image, position, limits):
    session = Session(image, BlobPredictor(), position=position, contrast_limits=limits)
    with pytest.warns(NoContrastWarning, match="no contrast") as caught:
        preview = session.add_point((30, 30))
    assert caught[0].filename == __file__  # the line that clicked, so each click is heard
    assert not preview.any() and session.iou == 0.0
    assert "no contrast" in session.warning
    with pytest.raises(ValueError, match="nothing to commit"):
        session.commit()


def test_a_slice_with_contrast_has_no_warning():
    volume, organ, body = ct()
    session = Session(volume, BlobPredictor(), position=(20,), contrast_limits=SOFT_TISSUE)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoContrastWarning)
        assert session.add_point((48, 48)).any()
    assert session.warning is None and session.iou == pytest.approx(0.7)
    session.set_contrast_limits((500, 900))  # a window above every value: no contrast now
    session.reset()
    with pytest.warns(NoContrastWarning):
        assert not session.add_point((48, 48)).any()


def test_no_contrast_in_one_channel_is_still_contrast():
    image = np.zeros((2, 64, 64), np.uint16)
    image[1] = disk((64, 64), (30, 30), 10, value=900, dtype=np.uint16)
    session = Session(image, FakePredictor(), channel_axis=0, contrast_limits=(0, 1000))
    np.testing.assert_array_equal(session.add_point((30, 30)), image[1] > 0)
    assert session.warning is None
