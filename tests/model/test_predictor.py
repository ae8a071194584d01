"""Predictor: input handling, coordinate maps, caching, and clear errors that keep state."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hrsam_model import Predictor, build_model
from hrsam_model.pixels import points_to_model, resized_shape, to_display_range
from hrsam_model.transforms import logits_to_image, normalize_bgr, prepare_input


@pytest.fixture(scope="module")
def predictor():
    return Predictor(build_model("hrsam_tiny"), device="cpu")


def test_display_range_per_dtype():
    u8 = np.array([[0, 10], [200, 255]], dtype=np.uint8)
    assert np.array_equal(to_display_range(u8)[..., 0], u8.astype(np.float32))  # uint8 used as is
    u16 = np.linspace(0, 4000, 10000).reshape(100, 100).astype(np.uint16)
    out = to_display_range(u16)
    assert out.shape == (100, 100, 3) and out.min() == 0 and out.max() == 255
    ct = np.array([[-1000, 40], [80, 3000]], dtype=np.int16)
    window = to_display_range(ct, contrast_limits=(0, 80))[..., 0]
    assert window.tolist() == [[0, 127.5], [255, 255]]
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    assert to_display_range(rgba).shape == (4, 5, 3)


def test_network_input_is_bgr_normalised_and_padded():
    red = np.zeros((30, 60, 3), np.float32)
    red[..., 0] = 255
    x, resized = prepare_input(red, 64)
    assert resized == (32, 64) and x.shape == (1, 3, 64, 64)
    assert x[0, 2, :32].mean() > 2 and x[0, 0, :32].mean() < -1  # red lands in the last channel
    assert torch.all(x[0, :, 32:] == 0)  # padding is zero = the mean colour
    expected = normalize_bgr(torch.tensor([255.0, 0, 0]).view(1, 3, 1, 1)).flatten()
    assert torch.allclose(x[0, :, 5, 5], expected)


def test_coordinates_map_to_the_model_and_back():
    shape = (700, 1100)
    resized = resized_shape(*shape, 1024)
    assert resized == (652, 1024)
    (mx, my), = points_to_model([[550, 350]], shape, resized)
    low = torch.full((1, 1, 256, 256), -5.0)
    low[..., int(my / 4) - 3: int(my / 4) + 4, int(mx / 4) - 3: int(mx / 4) + 4] = 5.0
    full = logits_to_image(low, 1024, resized, shape)[0, 0] > 0
    assert full.shape == shape and full[350, 550] and not full[100, 100]
    rows, cols = np.nonzero(full.numpy())
    assert abs(rows.mean() - 350) < 4 and abs(cols.mean() - 550) < 4


def test_logits_to_image_matches_the_official_order():
    """Cropping the low-res logits before upsampling must not change a single value."""
    low = torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    for resized, shape in [((652, 1024), (700, 1100)), ((1024, 333), (1024, 333)), ((1024, 1024), (512, 512))]:
        official = F.interpolate(low, size=(1024, 1024), mode="bilinear", align_corners=False)
        official = official[..., : resized[0], : resized[1]]
        if tuple(official.shape[-2:]) != shape:
            official = F.interpolate(official, size=shape, mode="bilinear", align_corners=False)
        assert torch.equal(logits_to_image(low, 1024, resized, shape), official)


@pytest.mark.parametrize(
    "image",
    [np.zeros((0, 5)), np.zeros((1, 1)), np.full((8, 8), np.nan), np.zeros((2, 8, 8, 3)),
     np.zeros((8, 8, 2)), np.array([["a", "b"], ["c", "d"]])],
    ids=["empty", "one-pixel", "nan", "4d", "two-channels", "strings"],
)
def test_bad_images_raise_and_keep_the_embedding(predictor, image):
    good = predictor.set_image(np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError):
        predictor.set_image(image)
    assert predictor.embedding is good


@pytest.mark.parametrize(
    "prompt",
    [dict(points=[[40, 5]], labels=[1]), dict(points=[[-3, 5]], labels=[1]), dict(points=[[1, 2]], labels=[2]),
     dict(points=[[1, 2, 3]], labels=[1]), dict(points=[[1, 2]], labels=[1, 0]), dict(points=[[np.nan, 2]], labels=[1]),
     dict(box=[10, 10, 5, 20]), dict(box=[1, 2, 3]), dict(), dict(points=[[1, 2]]),
     dict(points=[[1, 2]], labels=[1], mask_input=np.zeros((1, 64, 64)))],
    ids=["x-outside", "negative", "label-2", "3-coords", "label-count", "nan-point", "inverted-box",
         "short-box", "no-prompt", "no-labels", "wrong-mask-input"],
)
def test_bad_prompts_raise_and_keep_the_embedding(predictor, prompt):
    good = predictor.set_image(np.zeros((20, 30), np.uint8))
    with pytest.raises(ValueError):
        predictor.predict(**prompt)
    assert predictor.embedding is good
    assert predictor.predict(points=[[29.4, 19.4]], labels=[1]).mask.shape == (20, 30)  # edge pixel is inside


@pytest.mark.parametrize("box", [[10, 5, 10, 15], [5, 8, 25, 8], [3, 3, 3, 3]], ids=["zero-width", "zero-height", "point"])
def test_zero_area_box_is_refused_like_the_session_does(predictor, box):
    good = predictor.set_image(np.zeros((20, 30), np.uint8))
    with pytest.raises(ValueError, match="has no area"):
        predictor.predict(box=box)
    assert predictor.embedding is good


def test_predict_before_set_image():
    with pytest.raises(ValueError, match="set_image"):
        Predictor(build_model("hrsam_tiny"), device="cpu").predict(points=[[1, 1]], labels=[1])


def test_multimask_and_box(predictor):
    predictor.set_image((np.random.default_rng(2).random((90, 120)) * 255).astype(np.uint8))
    res = predictor.predict(points=[[60, 45]], labels=[1], multimask=True)
    assert res.masks.shape == (3, 90, 120) and res.ious.shape == (3,)
    assert res.iou == pytest.approx(float(res.ious.max()))
    boxed = predictor.predict(box=[10, 10, 80, 60], mask_input=res.logits)
    assert boxed.mask.shape == (90, 120)


def test_unknown_device_and_target_size():
    with pytest.raises(ValueError, match="device"):
        Predictor(build_model("hrsam_tiny"), device="tpu")
    with pytest.raises(ValueError, match="target_size"):
        Predictor(build_model("hrsam_tiny"), target_size=1000)
