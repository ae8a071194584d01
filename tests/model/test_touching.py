"""Objects that touch another: flagged when instances are built, scored apart in the tables."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from hrsam_model.evaluation import datasets
from hrsam_model.evaluation.metrics import InstanceResult, summarize
from hrsam_model.evaluation.report import format_table
from hrsam_model.evaluation.runner import evaluate
from hrsam_model.evaluation.touching import touches, touching_labels


def squares(shape, offset=(0, 0)) -> np.ndarray:
    """Label image: squares 1 and 2 side by side (no gap), square 3 far from both."""
    labels = np.zeros(shape, np.uint16)
    y, x = offset
    labels[y + 10:y + 20, x + 10:x + 20] = 1
    labels[y + 10:y + 20, x + 20:x + 30] = 2
    labels[y + 40:y + 50, x + 40:x + 50] = 3
    return labels


def flags(instances) -> dict[str, bool]:
    return {instance.name.split("/")[-1]: instance.touches for instance in instances}


def test_touching_labels_reach_two_pixels_and_no_further():
    labels = squares((64, 64))
    assert touching_labels(labels) == {1, 2}
    labels[10:20, 20:30] = 0
    labels[10:20, 21:30] = 2  # a one-pixel gap, as annotators leave between cells: still touching
    assert touching_labels(labels) == {1, 2}
    labels[10:20, 20:23] = 0  # a three-pixel gap: apart
    assert touching_labels(labels) == set()
    assert touching_labels(labels, distance=4) == {1, 2}
    assert touches(labels == 1, labels > 0, distance=4) and not touches(labels == 3, labels > 0)
    with pytest.raises(ValueError, match="distance"):
        touching_labels(labels, distance=0)


def test_nuclei_and_ecoli_instances_know_which_touch_another(tmp_path):
    (tmp_path / "nuclei").mkdir()
    labels = squares((512, 512), offset=(100, 300))  # on the validation half
    labels[200:220, 236:256] = 4  # a training nucleus right at the split line...
    labels[200:220, 256:276] = 5  # ...against a validation one: the half image does not show it
    tifffile.imwrite(tmp_path / "nuclei" / "img2d.tif", np.zeros((512, 512), np.uint16))
    tifffile.imwrite(tmp_path / "nuclei" / "mask2d.tif", labels)
    nuclei = datasets.load_instances("nuclei", "val", tmp_path)
    assert flags(nuclei) == {"nucleus001": True, "nucleus002": True, "nucleus003": False, "nucleus005": False}
    assert flags(datasets.load_instances("nuclei", "train", tmp_path)) == {"nucleus004": False}

    (tmp_path / "ecoli").mkdir()
    tifffile.imwrite(tmp_path / "ecoli" / "trpL_150310-11_img.tif", np.zeros((20, 64, 64), np.uint16))
    tifffile.imwrite(tmp_path / "ecoli" / "trpL_150310-11_mask.tif", np.stack([squares((64, 64))] * 20))
    cells = datasets.load_instances("ecoli", "val", tmp_path)
    assert len(cells) == 15 and [c.touches for c in cells[:3]] == [True, True, False]


def test_label_images_in_a_folder_are_flagged_and_single_masks_are_not(tmp_path):
    tifffile.imwrite(tmp_path / "image_a.tif", np.zeros((64, 64), np.uint8))
    tifffile.imwrite(tmp_path / "mask_a.tif", squares((64, 64)).astype(np.uint8))
    np.savez(tmp_path / "b.npz", image=np.zeros((64, 64)), mask=squares((64, 64)) == 1)
    loaded = {i.name: i.touches for i in datasets.load_folder(tmp_path)}
    assert loaded == {f"{tmp_path.name}/a#1": True, f"{tmp_path.name}/a#2": True,
                      f"{tmp_path.name}/a#3": False, f"{tmp_path.name}/b": False}
    assert datasets.Instance(np.zeros((4, 4)), np.ones((4, 4), bool), "old", "s").touches is False


def test_exported_instances_keep_their_touching_flag(tmp_path):
    labels = squares((64, 64))
    instances = [datasets.Instance(np.zeros((64, 64), np.uint8), labels == v, f"toy/{v}", "toy", v != 3)
                 for v in (1, 2, 3)]
    datasets.export_instances(instances, tmp_path / "set")
    assert [i.touches for i in datasets.load_folder(tmp_path / "set")] == [True, True, False]


def test_brain_targets_touch_other_targets_in_their_slice(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    (tmp_path / "mricron").mkdir()
    shape = (40, 40, 181)
    brain = np.zeros(shape, np.uint8)
    brain[5:35, 5:35, 30:150] = 1
    atlas = np.zeros(shape, np.uint8)
    atlas[10:30, 10:30, 95:110] = 72  # caudate R
    atlas[10:30, 10:30, 110:125] = 74  # putamen R, against it along x
    names = ["37 Hippocampus_L", "38 Hippocampus_R", "71 Caudate_L", "72 Caudate_R", "73 Putamen_L",
             "74 Putamen_R", "75 Pallidum_L", "76 Pallidum_R", "77 Thalamus_L", "78 Thalamus_R"]
    (tmp_path / "mricron" / "aal.nii.txt").write_text("\n".join(f"{n} 0" for n in names) + "\n")
    for name, volume in (("ch2", 120 * brain), ("ch2bet", 120 * brain), ("aal", atlas)):
        sitk.WriteImage(sitk.GetImageFromArray(volume), str(tmp_path / "mricron" / f"{name}.nii.gz"))
    found = {tuple(i.name.split("/")[2:4]): i.touches for i in datasets.load_instances("brain", "val", tmp_path)}
    by_view = {(target, view.rstrip("0123456789")): flag for (target, view), flag in found.items()}
    assert by_view == {
        ("whole_brain", "axial"): False, ("whole_brain", "coronal"): False, ("whole_brain", "sagittal"): False,
        ("caudate", "axial"): True, ("caudate", "coronal"): True, ("caudate", "sagittal"): False,
        ("putamen", "axial"): True, ("putamen", "coronal"): True, ("putamen", "sagittal"): False,
    }  # a sagittal slice of one never shows the other


def result(first_iou: float, touches_another: bool) -> InstanceResult:
    return InstanceResult("x", "s", ious=[first_iou, 1.0], touches=touches_another)


def test_report_shows_first_click_iou_over_touching_instances_next_to_all():
    results = [result(0.2, True), result(0.5, True), result(0.9, False), result(0.8, False)]
    summary = summarize(results, max_clicks=2)
    assert summary.touching == 2 and summary.touching_miou1 == pytest.approx(0.35)
    assert summary.miou[1] == pytest.approx(0.6)
    lines = format_table([("model", summary), ("apart", summarize(results[2:], max_clicks=2))]).splitlines()
    header = lines[0]
    column = header.index("mIoU@1 touching")
    assert header.index("mIoU@1 ") < column < header.index("ignored")
    assert "0.350 (2)" in lines[2] and "0.600" in lines[2]
    assert "- (0)" in lines[3] and "0.850" in lines[3]


def test_runner_carries_the_touching_flag_into_the_results():
    gt = np.zeros((16, 16), bool)
    gt[4:12, 4:12] = True

    class Perfect:
        def set_image(self, image):
            pass

        def predict(self, points, labels, mask_input=None):
            return SimpleNamespace(mask=gt, logits=None)

    image = np.zeros((16, 16), np.uint8)
    instances = [datasets.Instance(image, gt, "a", "s", touches=True), datasets.Instance(image, gt, "b", "s")]
    assert [r.touches for r in evaluate(Perfect(), instances, num_clicks=1)] == [True, False]
