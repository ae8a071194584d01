"""Zoom-in, the engine's one implementation: the first click finds the object on the whole image,
then the model sees a window around it. Driven through ``SessionMethod`` (what ``hrsam eval`` runs)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _session_fakes import FakePredictor, disk
from hrsam_model import Predictor
from hrsam_model.transforms import normalize_bgr
from napari_hrsam import Session
from napari_hrsam.engine.click_method import SessionMethod
from napari_hrsam.engine.mask_policy import MaskPolicy


class CoarseEyes(torch.nn.Module):
    """A stand-in model that sees the image only at its 16 px token resolution.

    Its mask is "the token is mostly bright", so a bar a few pixels wide vanishes in a whole
    1024 px view but shows once a crop is blown up to the input size."""

    name = "coarse-eyes"

    def __init__(self):
        super().__init__()
        ends = normalize_bgr(torch.tensor([0.0, 255.0]).view(2, 1, 1, 1).expand(2, 3, 1, 1))[:, 0]
        self.middle = float(ends.mean())
        self.encodes = 0

    def encode(self, x):
        self.encodes += 1
        return F.avg_pool2d(x[:, :1], 16).expand(1, 256, -1, -1)

    def decode(self, features, multimask=False, **prompts):
        low = F.interpolate(features[:, :1], scale_factor=4, mode="nearest")
        return 10 * (low - self.middle), torch.ones(1, 1)


class RecordingEyes(CoarseEyes):
    def __init__(self):
        super().__init__()
        self.mask_inputs = []

    def decode(self, features, multimask=False, **prompts):
        self.mask_inputs.append(prompts.get("mask_input"))
        return super().decode(features, multimask, **prompts)


def thin_bar_image():
    image = np.zeros((1024, 1024), np.uint8)
    image[400:600, 500:506] = 255  # 6 px wide: under half a 16 px token
    return image, image > 0


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def zoom(model, **options) -> SessionMethod:
    return SessionMethod(Predictor(model, device="cpu"), **options)


def whole(model) -> SessionMethod:
    return SessionMethod(Predictor(model, device="cpu"), zoom_in=False)


def run_clicks(method, image, clicks):
    method.set_image(image)
    result = None
    for n in range(1, len(clicks) + 1):
        result = method.predict(points=clicks[:n], labels=[1] * n,
                                mask_input=None if result is None else result.logits)
    return result


def test_zoom_in_finds_a_thin_bar_that_the_whole_view_misses():
    image, bar = thin_bar_image()
    clicks = [[502, 420], [503, 580]]
    plain = run_clicks(whole(CoarseEyes()), image, clicks)
    zoomed = run_clicks(zoom(CoarseEyes()), image, clicks)
    assert iou(plain.mask, bar) < 0.2
    assert iou(zoomed.mask, bar) > 0.6
    assert zoomed.mask.shape == bar.shape and not zoomed.mask[:, :400].any()


def off_grid_square_image():
    image = np.zeros((1024, 1024), np.uint8)
    image[406:450, 406:450] = 255  # 44 px, off the 16 px token grid: blocky in the whole view
    return image, image > 0


def test_the_first_click_looks_again_closer_without_the_coarse_mask():
    image, square = off_grid_square_image()
    plain = run_clicks(whole(CoarseEyes()), image, [[428, 428]])
    model = RecordingEyes()
    zoomed = run_clicks(zoom(model), image, [[428, 428]])
    assert iou(plain.mask, square) < 0.8
    assert iou(zoomed.mask, square) > 0.9
    assert model.encodes == 2 and model.mask_inputs == [None, None]


def test_the_first_click_keeps_the_whole_view_when_it_finds_nothing():
    image, bar = thin_bar_image()  # missed by the whole view: no object to look closer at
    model = CoarseEyes()
    method = zoom(model, mask_policy=MaskPolicy(hold_clicks=False))
    first = run_clicks(method, image, [[502, 420]])
    assert model.encodes == 1 and not first.mask.any()
    second = method.predict(points=[[502, 420], [503, 580]], labels=[1, 1], mask_input=first.logits)
    assert iou(second.mask, bar) > 0.6  # from then on, as RITM's zoom-in


def test_a_held_first_click_shows_the_closer_look_where_to_look():
    image, bar = thin_bar_image()  # missed by the whole view, but the click's own pixels hold
    model = CoarseEyes()
    method = zoom(model)
    first = run_clicks(method, image, [[502, 420]])
    assert model.encodes == 2 and iou(first.mask, bar) > 0.3  # the window around the click finds the bar
    second = method.predict(points=[[502, 420], [503, 580]], labels=[1, 1], mask_input=first.logits)
    assert iou(second.mask, bar) > 0.75


def test_a_close_window_is_kept_so_its_embedding_is_reused():
    image, _ = thin_bar_image()
    model = CoarseEyes()
    method = zoom(model)
    run_clicks(method, image, [[502, 420], [503, 580]])
    encodes = model.encodes
    result = method.predict(points=[[502, 420], [503, 580], [503, 570]], labels=[1, 1, 1],
                            mask_input=method._session)
    method.predict(points=[[502, 420], [503, 580], [503, 570], [502, 500]], labels=[1] * 4,
                   mask_input=result.logits)
    assert model.encodes == encodes  # clicks 3 and 4 decode in the window of click 2


def test_a_large_object_is_segmented_on_the_whole_image():
    image = np.zeros((300, 300), np.uint8)
    image[20:280, 20:280] = 255
    model = CoarseEyes()
    result = run_clicks(zoom(model), image, [[150, 150], [30, 30]])
    assert model.encodes == 1 and iou(result.mask, image > 0) > 0.9


def test_foreign_logits_boxes_and_skipped_clicks_are_refused():
    method = zoom(CoarseEyes())
    with pytest.raises(ValueError, match="no image"):
        method.predict(points=[[1, 1]], labels=[1])
    method.set_image(thin_bar_image()[0])
    first = method.predict(points=[[502, 500]], labels=[1])
    with pytest.raises(ValueError, match="previous answer"):
        method.predict(points=[[502, 500], [503, 350]], labels=[1, 1], mask_input=object())
    with pytest.raises(ValueError, match="one click"):
        method.predict(points=[[502, 500], [503, 350], [503, 360]], labels=[1, 1, 1], mask_input=first.logits)
    with pytest.raises(ValueError, match="clicks only"):
        method.predict(points=[[502, 500]], labels=[1], box=[0, 0, 10, 10])


def test_the_previous_mask_is_fed_in_the_windows_frame():
    image = np.zeros((1024, 1024), np.uint8)
    image[96:304, 96:304] = 255  # seen in the whole view; the clicks zoom to a ~290 px window
    model = RecordingEyes()
    method = zoom(model)
    first = run_clicks(method, image, [[200, 200]])
    session = method._session
    before = session.object.slices[session.slice_key].result
    second = method.predict(points=[[200, 200], [120, 120]], labels=[1, 1], mask_input=first.logits)
    after = session.object.slices[session.slice_key].result
    fed = model.mask_inputs[-1]
    assert fed is not None and after.region != (0, 0, 1024, 1024)
    (r0, c0, r1, c1), size = after.region.box, after.region.size
    h, w = (n * 1024 // max(size) // 4 for n in size)
    shown = F.interpolate((fed[0, :, :h, :w] > 0).float()[None], size=(r1 - r0, c1 - c0))[0, 0] > 0.5
    assert iou(shown.numpy(), before.mask.dense()[r0:r1, c0:c1]) > 0.9  # the same square, window pixels
    assert (fed[0, :, h + 1:, :] < 0).all()  # beyond the window: background
    assert iou(second.mask, image > 0) > 0.9


def test_zoom_in_option_reaches_the_evaluation_and_the_command_line(tmp_path):
    from hrsam_model.evaluation import datasets, run_evaluation
    from napari_hrsam.cli.main import build_parser
    from napari_hrsam.engine.click_method import model_method
    from napari_hrsam.engine.model_choice import ModelChoice

    assert build_parser().parse_args(["eval", "--dataset", "nuclei", "--zoom-in"]).zoom_in
    assert not build_parser().parse_args(["eval", "--dataset", "nuclei"]).zoom_in
    image = np.zeros((400, 400), np.uint8)
    image[150:190, 100:300] = 200
    datasets.export_instances([datasets.Instance(image, image > 0, "bar", "synthetic")], tmp_path / "set")
    label, method = model_method(ModelChoice(untrained=True), zoom_in=True)
    assert method.zoom_in and label == "hrsam_tiny@1024 zoom-in (RANDOM)"
    text = run_evaluation([(label, method)], data=str(tmp_path / "set"), num_clicks=3)
    assert any(line.startswith("hrsam_tiny@1024 zoom-in") for line in text.splitlines()), text


# ------------------------------------------------------------------------ in a session, with the fake
def test_zoom_in_finds_the_object_on_the_slice_then_segments_in_a_window_around_it():
    image = disk((900, 1200), (300, 700), 20) | disk((900, 1200), (700, 200), 25)
    predictor = FakePredictor(target_size=1024)
    session = Session(image, predictor, zoom_in=True)
    session.add_point((300, 700))
    # the first click sees the slice, then looks again in RITM's minimum crop around the 41 px disk
    assert [c["shape"] for c in predictor.embed_calls] == [(900, 1200), (200, 200)]
    assert predictor.predict_calls[-1]["mask_input"] is None  # the coarse first mask is not fed
    np.testing.assert_array_equal(session.preview, disk(image.shape, (300, 700), 20) > 0)
    session.add_point((290, 705))
    assert predictor.predict_calls[-1]["shape"] == (200, 200)
    assert predictor.predict_calls[-1]["mask_input"] is not None  # the window's own logits
    session.add_point((310, 695))
    assert len(predictor.embed_calls) == 2  # the window is kept: its embedding is reused
    session.reset()  # a new first click far away finds the other disk
    session.add_point((700, 200))
    assert predictor.embed_calls[-1]["shape"] == (200, 200) and len(predictor.embed_calls) == 3
    np.testing.assert_array_equal(session.preview, disk(image.shape, (700, 200), 25) > 0)


def test_zoom_in_shows_the_whole_view_mask_while_its_closer_look_is_due():
    image = disk((900, 1200), (300, 700), 20)
    session = Session(image, FakePredictor(target_size=1024), zoom_in=True)
    session.add_point((300, 700), predict=False)
    whole = session.pending_request()
    assert whole.region.box == (0, 0, 900, 1200)
    assert session.apply(session.compute(whole))
    assert session.pending and session.preview.sum() > 1000  # shown at once, before the window pass
    closer = session.pending_request()
    assert closer.region.shape == (200, 200) and closer.mask_input is None
    with pytest.raises(ValueError, match="pending"):
        session.commit()
    assert session.apply(session.compute(closer)) and not session.pending
    np.testing.assert_array_equal(session.preview, image > 0)
    # a click made while the closer look is due replaces it: the normal zoomed step, logits fed
    session.reset()
    session.add_point((300, 700), predict=False)
    session.apply(session.compute(session.pending_request()))
    session.add_point((295, 705), predict=False)
    request = session.pending_request()
    assert request.region.shape == (200, 200) and request.mask_input is not None
    session.predict()
    assert not session.pending and session.commit() == 1


def test_zoom_in_is_off_by_default_and_can_be_switched_on_for_the_current_object():
    image = disk((900, 1200), (300, 700), 20)
    predictor = FakePredictor(target_size=1024)
    session = Session(image, predictor)
    session.add_point((300, 700))
    session.add_point((290, 705))
    assert {c["shape"] for c in predictor.embed_calls} == {(900, 1200)}
    session.zoom_in = True
    session.predict_again()
    np.testing.assert_array_equal(session.predict(), image > 0)
    assert predictor.embed_calls[-1]["shape"] == (200, 200)


def test_logits_moved_into_a_zoom_window_keep_the_object_in_place():
    from napari_hrsam.engine.resampling import OUTSIDE_LOGIT, move_logits

    whole = (0, 0, 1024, 1024), (1024, 1024)  # box, size handed to the model: cell = 4 px
    rows, cols = np.mgrid[:256, :256]
    logits = np.where((rows - 75) ** 2 + (cols - 100) ** 2 <= 10 ** 2, 8.0, -8.0)[None].astype(np.float32)
    window = (200, 300, 400, 500), (200, 200)  # 200 px: one cell = 200/256 px
    moved = move_logits(logits, *whole, *window, 1024)
    assert moved.shape == (1, 256, 256)
    inside = np.argwhere(moved[0] > 0).mean(axis=0) * 200 / 256 + [200, 300]
    assert np.abs(inside - [75 * 4 + 1.5, 100 * 4 + 1.5]).max() < 2  # the same slice pixels
    narrow = (200, 300, 400, 400), (200, 100)  # padding right of the resized image
    assert (move_logits(logits, *whole, *narrow, 1024)[0, :, 130:] == OUTSIDE_LOGIT).all()
    shrunk = (0, 0, 2048, 2048), (1024, 1024)  # a huge slice's window, shrunk 2x: cell = 8 px
    big = move_logits(logits, *whole, *shrunk, 1024)
    assert (big[0, 36:40, 48:52] > 0).all() and (big[0, 130:] == OUTSIDE_LOGIT).all()
    back = move_logits(moved, *window, *whole, 1024)  # the part the window never saw: background
    assert (back[0, :40] == OUTSIDE_LOGIT).all() and (back[0, 70:80, 95:105] > 0).all()


def test_zoom_in_after_an_empty_first_mask_frames_the_clicks():
    image = np.zeros((900, 1200), np.uint8)  # nothing bright: every mask is empty
    predictor = FakePredictor(target_size=1024)
    session = Session(image, predictor, zoom_in=True)
    session.add_point((300, 700))
    session.add_point((320, 720))
    assert predictor.embed_calls[-1]["shape"] == (200, 200)
    assert session.preview is None or not session.preview.any()
