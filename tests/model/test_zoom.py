"""Zoom-in: the model sees a crop around the object (from the 2nd click, or the 1st after a whole view)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hrsam_model import Predictor
from hrsam_model.transforms import normalize_bgr
from hrsam_model.zoom import ZoomInPredictor


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
    whole = run_clicks(Predictor(CoarseEyes(), device="cpu"), image, clicks)
    zoomed = run_clicks(ZoomInPredictor(Predictor(CoarseEyes(), device="cpu")), image, clicks)
    assert iou(whole.mask, bar) < 0.2
    assert iou(zoomed.mask, bar) > 0.6
    assert zoomed.mask.shape == bar.shape and not zoomed.mask[:, :400].any()


def test_the_first_click_sees_the_whole_image_like_the_plain_predictor():
    image, _ = thin_bar_image()
    image[100:300, 100:300] = 255
    plain = run_clicks(Predictor(CoarseEyes(), device="cpu"), image, [[200, 200]])
    zoomed = run_clicks(ZoomInPredictor(Predictor(CoarseEyes(), device="cpu")), image, [[200, 200]])
    assert np.array_equal(plain.mask, zoomed.mask) and plain.mask[150:250, 150:250].all()


def off_grid_square_image():
    image = np.zeros((1024, 1024), np.uint8)
    image[406:450, 406:450] = 255  # 44 px, off the 16 px token grid: blocky in the whole view
    return image, image > 0


def test_zooming_from_the_first_click_looks_again_closer_without_the_coarse_mask():
    image, square = off_grid_square_image()
    plain = run_clicks(Predictor(CoarseEyes(), device="cpu"), image, [[428, 428]])
    model = RecordingEyes()
    zoomed = run_clicks(ZoomInPredictor(Predictor(model, device="cpu"), skip_clicks=0), image, [[428, 428]])
    assert iou(plain.mask, square) < 0.8
    assert iou(zoomed.mask, square) > 0.9
    assert model.encodes == 2 and model.mask_inputs == [None, None]


def test_zooming_from_the_first_click_keeps_the_whole_view_when_it_finds_nothing():
    image, bar = thin_bar_image()  # missed by the whole view: no object to look closer at
    model = CoarseEyes()
    zoom = ZoomInPredictor(Predictor(model, device="cpu", clicks_hold=False), skip_clicks=0)
    first = run_clicks(zoom, image, [[502, 420]])
    assert model.encodes == 1 and not first.mask.any()
    second = zoom.predict(points=[[502, 420], [503, 580]], labels=[1, 1], mask_input=first.logits)
    assert iou(second.mask, bar) > 0.6  # from then on, as RITM's zoom-in


def test_a_held_first_click_shows_the_closer_look_where_to_look():
    image, bar = thin_bar_image()  # missed by the whole view, but the click's own pixels hold
    model = CoarseEyes()
    zoom = ZoomInPredictor(Predictor(model, device="cpu"), skip_clicks=0)
    first = run_clicks(zoom, image, [[502, 420]])
    assert model.encodes == 2 and iou(first.mask, bar) > 0.3  # the window around the click finds the bar
    second = zoom.predict(points=[[502, 420], [503, 580]], labels=[1, 1], mask_input=first.logits)
    assert iou(second.mask, bar) > 0.75


def test_a_close_crop_is_kept_so_its_embedding_is_reused():
    image, _ = thin_bar_image()
    model = CoarseEyes()
    zoom = ZoomInPredictor(Predictor(model, device="cpu"))
    run_clicks(zoom, image, [[502, 420], [503, 580], [503, 570], [502, 500]])
    assert model.encodes == 2  # the whole image, then one crop for clicks 2-4


def test_a_large_object_is_segmented_on_the_whole_image():
    image = np.zeros((300, 300), np.uint8)
    image[20:280, 20:280] = 255
    model = CoarseEyes()
    result = run_clicks(ZoomInPredictor(Predictor(model, device="cpu")), image, [[150, 150], [30, 30]])
    assert model.encodes == 1 and iou(result.mask, image > 0) > 0.9


def test_foreign_logits_boxes_and_multimask_are_refused():
    zoom = ZoomInPredictor(Predictor(CoarseEyes(), device="cpu"))
    with pytest.raises(ValueError, match="no image"):
        zoom.predict(points=[[1, 1]], labels=[1])
    zoom.set_image(thin_bar_image()[0])
    first = zoom.predict(points=[[502, 500]], labels=[1])
    with pytest.raises(ValueError, match="previous result"):
        zoom.predict(points=[[502, 500], [503, 350]], labels=[1, 1], mask_input=first.logits.copy())
    with pytest.raises(ValueError, match="clicks only"):
        zoom.predict(points=[[502, 500]], labels=[1], box=[0, 0, 10, 10])
    with pytest.raises(ValueError, match="min_crop"):
        ZoomInPredictor(Predictor(CoarseEyes(), device="cpu"), min_crop=4)


def test_the_previous_mask_is_fed_in_the_crops_frame():
    image = np.zeros((1024, 1024), np.uint8)
    image[96:304, 96:304] = 255  # seen in the whole view; the second click zooms to ~290 px
    model = RecordingEyes()
    zoom = ZoomInPredictor(Predictor(model, device="cpu"))
    first = run_clicks(zoom, image, [[200, 200]])
    second = zoom.predict(points=[[200, 200], [120, 120]], labels=[1, 1], mask_input=first.logits)
    fed = model.mask_inputs
    assert model.encodes == 2 and fed[0] is None
    (r0, c0, r1, c1), emb = zoom._last[1], zoom.predictor.embedding
    h, w = (n // 4 for n in emb.resized_shape)
    shown = F.interpolate((fed[1][0, :, :h, :w] > 0).float()[None], size=(r1 - r0, c1 - c0))[0, 0] > 0.5
    assert iou(shown.numpy(), first.mask[r0:r1, c0:c1]) > 0.9  # the same square, in crop pixels
    assert (fed[1][0, :, h + 1:, :] < 0).all()  # beyond the crop: background
    assert iou(second.mask, image > 0) > 0.9


def test_zoom_in_option_reaches_the_evaluation_and_the_command_line(tmp_path):
    from hrsam_model.evaluation import datasets, run_evaluation
    from hrsam_model.evaluation.command import build_parser, load_model_predictor
    from napari_hrsam.cli.main import build_parser as hrsam_parser

    label, predictor, _ = load_model_predictor("hrsam_tiny", untrained=True, zoom_in=True)
    assert isinstance(predictor, ZoomInPredictor) and "zoom-in" in label and predictor.skip_clicks == 0
    label, predictor, _ = load_model_predictor("hrsam_tiny", untrained=True, zoom_in="second")
    assert predictor.skip_clicks == 1 and "from click 2" in label
    with pytest.raises(ValueError, match="zoom_in"):
        load_model_predictor("hrsam_tiny", untrained=True, zoom_in="third")
    assert build_parser().parse_args(["--dataset", "nuclei", "--zoom-in"]).zoom_in == "first"
    for parser, command in ((build_parser(), []), (hrsam_parser(), ["eval"])):
        args = command + ["--dataset", "nuclei"]
        assert parser.parse_args(args + ["--zoom-in"]).zoom_in == "first"
        assert parser.parse_args(args + ["--zoom-in", "second"]).zoom_in == "second"
        assert not parser.parse_args(args).zoom_in

    image = np.zeros((400, 400), np.uint8)
    image[150:190, 100:300] = 200
    datasets.export_instances([datasets.Instance(image, image > 0, "bar", "synthetic")], tmp_path / "set")
    text = run_evaluation(model="hrsam_tiny", untrained=True, data=str(tmp_path / "set"), num_clicks=3,
                          zoom_in=True)
    assert any(line.startswith("hrsam_tiny@1024 zoom-in") for line in text.splitlines()), text
