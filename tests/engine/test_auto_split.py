"""Segment all cuts a mask where two touching objects meet (``engine.auto_split``), and keeps only
objects that stand out on the blobs' side (brighter than their ring where the objects are bright)."""
from types import SimpleNamespace

import numpy as np
import pytest

from hrsam_model import Predictor, build_model
from napari_hrsam import Session
from napari_hrsam.engine import automatic
from napari_hrsam.engine.auto_seeds import object_polarity
from napari_hrsam.engine.auto_split import split_at_necks
from napari_hrsam.engine.automatic import AutoSettings
from napari_hrsam.engine.state import SparseMask

ROWS, COLS = np.ogrid[:80, :120]


def disc(row, col, radius):
    return (ROWS - row) ** 2 + (COLS - col) ** 2 < radius ** 2


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_two_touching_discs_are_cut_apart_at_their_neck():
    left, right = disc(40, 40, 18), disc(40, 72, 18)  # 32 px apart: they overlap by 4 px
    parts = split_at_necks(left | right, depth=0.15, min_area=12)
    assert len(parts) == 2
    for part, (r, c) in parts:
        truth = left if c < 56 else right
        assert iou(part, truth & ~(left & right)) > 0.9 and part[r, c] and truth[r, c]
    assert len(split_at_necks(left | right, depth=0.0, min_area=12)) == 1  # depth 0: never cut


@pytest.mark.parametrize("shape", ["disc", "ellipse", "rod", "bean"])
def test_one_object_without_a_neck_stays_whole(shape):
    masks = {
        "disc": disc(40, 60, 25),
        "ellipse": ((ROWS - 40) / 14.0) ** 2 + ((COLS - 60) / 45.0) ** 2 < 1,
        "rod": (abs(ROWS - 40) < 6) & (abs(COLS - 60) < 50),
        "bean": disc(40, 50, 20) | disc(40, 70, 20),  # two discs 20 px apart: a shallow waist, one object
    }
    mask = masks[shape]
    parts = split_at_necks(mask, depth=0.15, min_area=12)
    assert len(parts) == 1 and parts[0][0] is mask


def test_contrast_is_signed_and_polarity_follows_the_window():
    image = np.full((60, 60), 0.1, np.float32)
    image[15:45, 15:45] = 0.9
    image[25:35, 25:35] = 0.1  # a dark hole in a bright object: background, not an object
    engine = SimpleNamespace(layout=SimpleNamespace(read=lambda key, box: image[box[0]:box[2], box[1]:box[3]]))
    limits = [(0.0, 1.0)]
    square, hole = np.zeros((60, 60), bool), np.zeros((60, 60), bool)
    square[15:45, 15:45], hole[25:35, 25:35] = True, True
    assert automatic._contrast(engine, None, SparseMask.from_dense(square & ~hole), limits) == pytest.approx(0.8)
    assert automatic._contrast(engine, None, SparseMask.from_dense(hole), limits) == pytest.approx(-0.8)
    assert object_polarity(image) == 1 and object_polarity(1 - image) == -1


@pytest.fixture(scope="module")
def predictor():
    return Predictor(build_model("hrsam_tiny", pretrained=True), device="cpu")


def touching_pairs():
    """Six pairs of bright discs (radius 16) whose centres are 28 px apart: each pair touches."""
    rows, cols = np.ogrid[:300, :420]
    truth = np.zeros((300, 420), np.int32)
    k = 0
    for r in (70, 220):
        for c in (60, 200, 340):
            for dc in (-14, 14):
                k += 1
                truth[((rows - r) ** 2 + (cols - c - dc) ** 2 < 16 ** 2) & (truth == 0)] = k
    noise = np.random.default_rng(1).normal(0, 6, truth.shape)
    return np.clip(np.where(truth > 0, 190, 30) + noise, 0, 255).astype(np.uint8), truth


def test_segment_all_finds_each_of_two_touching_nuclei_and_keeps_clicks_that_rebuild_it(predictor):
    image, truth = touching_pairs()
    session = Session(image, predictor)
    ids = session.segment_all(AutoSettings())
    labels = session.labels
    for k in range(1, truth.max() + 1):
        nucleus = truth == k
        values, counts = np.unique(labels[nucleus], return_counts=True)
        best = values[np.argmax(counts)]
        assert best != 0 and iou(labels == best, nucleus) >= 0.75, k
    assert len(ids) == truth.max()  # each nucleus once, no pair taken together
    for label in ids:
        prompts = session.objects[label]["slices"][0]["prompts"]
        r, c = (int(round(v)) for v in prompts["points"][0])
        assert labels[r, c] == label and prompts["labels"][0] == 1
        for (nr, nc), kind in zip(prompts["points"][1:], prompts["labels"][1:]):
            assert kind == 0 and labels[int(round(nr)), int(round(nc))] not in (0, label)


def test_every_pixel_lands_in_a_part_of_at_least_min_area():
    """A piece joined only through corners (the mask's pieces are 8-connected) is not cut off as a
    sliver: every pixel of the mask is in exactly one part, none smaller than min_area."""
    mask = disc(40, 40, 15) | disc(40, 72, 15)
    for k in range(12):  # a one-pixel diagonal chain off the first disc
        mask[51 + k, 51 + k] = True  # (50, 50) lies in the disc: joined through a corner
    parts = split_at_necks(mask, depth=0.15, min_area=12)
    stacked = np.sum([part for part, _ in parts], axis=0)
    assert (stacked == mask).all()  # nothing lost, nothing in two parts
    assert len(parts) == 2 and min(part.sum() for part, _ in parts) >= 12
