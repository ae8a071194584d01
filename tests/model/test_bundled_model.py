"""The shipped hrsam_tiny weights segment real nuclei with a few clicks.

Data: a 128x128 crop of the DSB-2018 validation half (tests/data, never used in
training), 7 whole nuclei, clicked with the standard protocol.
"""
from pathlib import Path

import numpy as np
import pytest
import tifffile

from hrsam_model import Predictor, build_model, bundled_weights_path
from hrsam_model.evaluation.datasets import Instance
from hrsam_model.evaluation.runner import evaluate

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture(scope="module")
def nuclei():
    image = tifffile.imread(DATA / "nuclei_val_crop.tif")
    labels = tifffile.imread(DATA / "nuclei_val_crop_labels.tif")
    return [Instance(image, labels == v, f"nucleus{v}", "nuclei") for v in np.unique(labels) if v]


def test_bundled_weights_ship_with_the_package():
    path = bundled_weights_path("hrsam_tiny")
    assert path.is_file(), f"{path} is missing: the plugin would segment with random weights"
    assert path.stat().st_size <= 30 * 2 ** 20


@pytest.fixture(scope="module")
def best_of_three(nuclei):
    predictor = Predictor(build_model("hrsam_tiny", pretrained=True), device="cpu")
    return np.array([max(r.ious[:3]) for r in evaluate(predictor, nuclei, num_clicks=3)])


def test_bundled_model_segments_nuclei_far_better_than_chance(best_of_three):
    # measured 2026-11-26 (mean(mean(2q, 2r), 2t-a), shipped): mean 0.873, per nucleus 0.82 0.94
    # 0.90 0.82 0.87 0.87 0.89 (mean(2q, 2r): 0.877, lowest 0.81; 2t-a: 0.873, lowest 0.82; 2t-b:
    # 0.880, lowest 0.81; mean(mean(2m, 2o), 2p): 0.876, lowest 0.80; 2q alone: 0.885, lowest
    # 0.80; 2r alone: 0.874, lowest 0.82; mean(2m, 2o): 0.898, lowest 0.87; 2m: 0.890, lowest
    # 0.84; 2o alone: 0.880, lowest 0.81; mean(2k, 2j): 0.878, lowest 0.82; 2j alone: 0.887,
    # lowest 0.82; … + 2i: 0.871, lowest 0.76; 2h alone: 0.793, lowest 0.54, which is why 2h did
    # not ship alone)
    assert best_of_three.mean() >= 0.65, best_of_three.round(3).tolist()
    assert (best_of_three >= 0.45).all(), best_of_three.round(3).tolist()


def test_bundled_model_reaches_iou_08_within_three_clicks(best_of_three):
    # issue 4's bar, on average over the crop's nuclei; no nucleus may be left badly segmented
    assert best_of_three.mean() >= 0.8, best_of_three.round(3).tolist()
    assert (best_of_three >= 0.6).all(), best_of_three.round(3).tolist()


def test_random_weights_do_not_pass_the_same_bar(nuclei):
    """Guards the test above: it must be the training that makes the difference."""
    predictor = Predictor(build_model("hrsam_tiny"), device="cpu")
    results = evaluate(predictor, nuclei[:3], num_clicks=3)
    assert np.mean([max(r.ious[:3]) for r in results]) < 0.65
