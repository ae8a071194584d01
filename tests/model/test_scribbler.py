"""The stroke simulator of the scribble / lasso evaluation."""
import numpy as np

from hrsam_model.evaluation.scribbler import error_region, lasso, longest_path, scribble
from napari_hrsam.engine.strokes import checked_path


def test_a_scribble_runs_along_the_missing_part_and_stays_inside_it():
    gt = np.zeros((60, 80), bool)
    gt[20:30, 10:70] = True  # a long bar
    pred = gt.copy()
    pred[:, 40:] = False  # the right half is missing
    vertices, positive = scribble(gt, pred)
    assert positive
    rows, cols = np.round(vertices).astype(int).T
    assert (gt & ~pred)[rows, cols].all()
    assert cols.max() - cols.min() >= 20  # along the bar, not across it


def test_a_scribble_over_a_false_positive_is_negative_and_none_when_nothing_is_wrong():
    gt = np.zeros((40, 40), bool)
    gt[10:20, 10:20] = True
    pred = gt.copy()
    pred[25:35, 5:35] = True
    vertices, positive = scribble(gt, pred)
    assert not positive and pred[tuple(np.round(vertices).astype(int).T)].all()
    assert scribble(gt, gt) is None
    single = np.zeros((40, 40), bool)
    single[5, 5] = True
    assert scribble(single, None) is None  # one pixel: no stroke, the caller clicks
    assert error_region(gt, None)[0].sum() == 100


def test_longest_path_on_an_l_shaped_skeleton_spans_both_arms():
    skeleton = np.zeros((20, 20), bool)
    skeleton[2, 2:15] = True
    skeleton[2:18, 14] = True
    path = longest_path(skeleton)
    assert {path[0], path[-1]} == {(2, 2), (17, 14)}


def test_a_lasso_is_a_valid_loose_outline_around_the_object():
    rows, cols = np.ogrid[:100, :120]
    gt = (rows - 50) ** 2 / 30**2 + (cols - 60) ** 2 / 40**2 <= 1
    outline = lasso(gt)
    checked_path(outline, gt.shape, closed=True)  # the engine accepts it
    from skimage.draw import polygon

    inside = np.zeros_like(gt)
    inside[polygon(outline[:, 0], outline[:, 1], gt.shape)] = True
    assert (inside & gt).sum() >= 0.99 * gt.sum() and inside.sum() <= 1.4 * gt.sum()
    assert len(lasso(gt, hull=True)) >= 3
