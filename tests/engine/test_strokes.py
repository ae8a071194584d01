"""Scribbles and lassos: strokes and outlines as prompts, with the bundled model and the fake."""
import numpy as np
import pytest

from _session_fakes import NO_HOLD, FakePredictor, disk
from hrsam_model import Predictor, build_model
from napari_hrsam import Session
from napari_hrsam.engine.strokes import checked_path, scribble_points


@pytest.fixture(scope="module")
def predictor():
    return Predictor(build_model("hrsam_tiny", pretrained=True), device="cpu")


def disk_image():
    rows, cols = np.ogrid[:200, :200]
    truth = (rows - 100) ** 2 + (cols - 90) ** 2 <= 35 ** 2
    noise = np.random.default_rng(0).normal(0, 8, truth.shape)
    return np.clip(np.where(truth, 190, 40) + noise, 0, 255).astype(np.uint8), truth


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_a_scribble_inside_a_disk_segments_it(predictor):
    image, truth = disk_image()
    session = Session(image, predictor, zoom_in=True)  # the widget's mode
    mask = session.add_scribble([(90, 80), (100, 95), (112, 100)])
    assert iou(mask, truth) >= 0.8
    assert session.history[0] == ["add scribble"] and len(session.prompts.points) == 2


def test_a_lasso_around_a_disk_segments_it(predictor):
    image, truth = disk_image()
    session = Session(image, predictor)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    outline = np.stack([100 + 40 * np.sin(angles), 90 + 40 * np.cos(angles)], axis=1)
    mask = session.set_lasso(outline)
    assert iou(mask, truth) >= 0.9
    assert session.prompts.box is None and session.prompts.labels == (1,)  # the outline was the mask prompt
    assert session.undo() and session.object.empty  # one undo step takes the whole lasso back
    boxed = Session(image, predictor)
    assert iou(boxed.set_lasso(outline, as_box=True), truth) >= 0.9 and boxed.prompts.box is not None



def test_a_negative_scribble_removes_a_merged_neighbour():
    image = disk((120, 160), (40, 50), 14) + disk((120, 160), (80, 115), 11, value=180)
    session = Session(image, FakePredictor(target_size=256), mask_policy=NO_HOLD)
    session.add_scribble([(35, 45), (45, 55)])
    session.add_point((80, 115))  # both disks now
    assert session.preview[80, 115]
    session.add_scribble([(75, 110), (85, 120)], positive=False)
    assert not session.preview[80, 115] and session.preview[40, 50]


def test_bad_strokes_are_refused_and_change_nothing():
    session = Session(disk((60, 60), (30, 30), 10), FakePredictor(target_size=256))
    with pytest.raises(ValueError, match="at least 2"):
        session.add_scribble([(10, 10)])
    with pytest.raises(ValueError, match="crosses itself"):
        session.set_lasso([(10, 10), (10, 40), (40, 10), (40, 40)])
    with pytest.raises(ValueError, match="leaves the slice"):
        session.set_lasso([(10, 10), (10, 80), (40, 40)])
    with pytest.raises(ValueError, match="at least 3"):
        session.set_lasso([(10, 10), (20, 20), (10, 10)])
    assert session.object.empty and not session.can_undo


def test_scribble_points_follow_the_stroke():
    vertices = checked_path([(0, 0), (0, 40), (30, 40)], (50, 50), closed=False)
    points = scribble_points(vertices)
    assert points[0] == (0.0, 0.0) and points[-1] == (30.0, 40.0) and len(points) == 4


def test_painted_pixels_stay_painted_after_the_next_click():
    image = disk((120, 160), (40, 50), 14) + disk((120, 160), (90, 120), 11, value=180)
    session = Session(image, FakePredictor(target_size=256))
    session.add_point((40, 50))
    before = session.preview.copy()
    bridge = [(r, c) for r in range(60, 66) for c in range(60, 100)]  # nothing there in the image
    erased = [(40, 50 + d) for d in range(-3, 4)]  # a line through the disk
    session.paint(bridge)
    session.paint(erased, inside=False)
    shown = session.preview
    assert all(shown[r, c] for r, c in bridge) and not any(shown[r, c] for r, c in erased)
    assert session.history[0][-2:] == ["paint", "erase"]
    session.add_point((30, 50))  # the model runs again: the strokes hold
    after = session.preview
    assert all(after[r, c] for r, c in bridge) and not any(after[r, c] for r, c in erased)
    assert after[30, 50] and after[45, 50]
    session.commit()
    record = session.objects[1]["slices"][0]["prompts"]
    assert len(record["painted"]) == len(bridge) and len(record["erased"]) == len(erased)
    session.undo()  # the commit
    session.undo()  # the click
    session.undo()  # the erase
    assert session.preview[40, 50]
    session.undo()  # the paint
    np.testing.assert_array_equal(session.preview, before)


def test_a_later_stroke_wins_and_bad_brush_input_changes_nothing():
    session = Session(disk((60, 60), (30, 30), 10), FakePredictor(target_size=256))
    with pytest.raises(ValueError, match="click the object first"):
        session.paint([(30, 30)])
    session.add_point((30, 30))
    session.paint([(5, 5), (5, 6)])
    session.paint([(5, 6)], inside=False)
    assert session.prompts.painted == ((5, 5),) and session.prompts.erased == ((5, 6),)
    steps = len(session.history[0])
    for bad, message in (([], "no pixel"), ([(5, 60)], "leaves the slice"), ([(float("nan"), 1)], "NaN"),
                         ("x", "pairs")):
        with pytest.raises(ValueError, match=message):
            session.paint(bad)
    assert len(session.history[0]) == steps and session.preview[5, 5] and not session.preview[5, 6]


def test_painting_only_shows_with_held_clicks():
    session = Session(disk((60, 60), (30, 30), 10), FakePredictor(target_size=256), mask_policy=NO_HOLD)
    session.add_point((30, 30))
    session.paint([(5, 5)])
    assert session.preview[5, 5]  # shown at once
    session.add_point((32, 30))
    assert not session.preview[5, 5]  # the official output: the model's mask as drawn
