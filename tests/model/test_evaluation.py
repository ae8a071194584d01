"""The evaluation harness: click simulator, metrics, runner, baselines, splits and folder format."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

from _benchmark_scripts import load_benchmark
from _fake_datasets import write_fake_data
from hrsam_model.evaluation import datasets
from hrsam_model.evaluation.clicker import Click, Clicker, boundary_distance, next_click
from hrsam_model.evaluation.metrics import (
    clicks_to_reach,
    contradicted_clicks,
    iou,
    miou_at,
    noc,
    nof,
    one_pixel_off_ious,
    summarize,
)
from hrsam_model.evaluation.runner import evaluate

DEV_DATA = Path(os.environ.get("HRSAM_DATA") or "/work/data")  # the real data, where it was fetched

TEST_DATA = Path(__file__).parent.parent / "data"


def disk(shape, centre, radius):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


# ------------------------------------------------------------------------------------- clicker
def test_first_click_is_positive_at_the_disk_centre():
    gt = disk((64, 64), (20, 37), 9)
    assert next_click(gt, np.zeros_like(gt)) == Click(20, 37, True)


def test_false_positive_blob_gets_a_negative_click_at_its_centre():
    gt = disk((80, 80), (20, 20), 8)
    blob = disk((80, 80), (60, 55), 6)
    assert next_click(gt, gt | blob) == Click(60, 55, False)


def test_larger_error_region_wins_and_ties_go_negative():
    gt = disk((80, 80), (20, 20), 10)
    pred = gt & ~disk((80, 80), (20, 20), 4)  # misses a radius-4 core: FN depth ~5
    small_fp = disk((80, 80), (60, 60), 2)  # FP depth ~3
    assert next_click(gt, pred | small_fp) == Click(20, 20, True)
    # Two mirror-image errors of equal size: negative.
    gt = np.zeros((40, 40), bool)
    gt[10:15, 5:10] = True
    pred = np.zeros_like(gt)
    pred[10:15, 25:30] = True
    assert next_click(gt, pred).positive is False


def test_image_edge_counts_as_boundary():
    assert boundary_distance(np.ones((5, 5), bool))[2, 2] == 3
    assert boundary_distance(np.ones((5, 5), bool))[0, 0] == 1
    # Object filling the left 10 columns of a 20x20 image: farthest point is mid-object, not at the edge.
    gt = np.zeros((20, 20), bool)
    gt[:, :10] = True
    click = next_click(gt, np.zeros_like(gt))
    assert click.positive and click.col in (4, 5)  # 5 from the image edge and from column 10
    assert boundary_distance(gt)[:, 0].max() == 1


def test_distance_is_exact_euclidean():
    region = np.zeros((30, 30), bool)
    region[5:25, 5:25] = True
    region[15, 15] = False
    distance = boundary_distance(region)
    assert distance[15, 18] == pytest.approx(3.0)
    assert distance[12, 12] == pytest.approx(np.hypot(3, 3))


def test_no_error_gives_no_click_and_clicked_pixels_are_not_repeated():
    gt = disk((32, 32), (16, 16), 5)
    assert next_click(gt, gt) is None
    clicker = Clicker(gt)
    first = clicker.click()
    second = clicker.click()  # same (empty) prediction: the centre is used up
    assert first != second and second.positive
    np.testing.assert_array_equal(clicker.points(), [[first.col, first.row], [second.col, second.row]])
    np.testing.assert_array_equal(clicker.labels(), [1, 1])


def test_training_variant_clicks_inside_the_inner_region_and_varies():
    gt = disk((64, 64), (32, 32), 15)
    distance = boundary_distance(gt)
    clicks = {next_click(gt, np.zeros_like(gt), inner_k=1.7, rng=np.random.default_rng(s)) for s in range(20)}
    assert len(clicks) > 5
    for click in clicks:
        assert click.positive and distance[click.row, click.col] > distance.max() / 1.7


def test_clicker_rejects_bad_input():
    with pytest.raises(ValueError):
        next_click(np.zeros((4, 4), bool), np.zeros((5, 5), bool))
    with pytest.raises(ValueError):
        next_click(np.zeros((4, 4), bool), np.zeros((4, 4), bool), inner_k=0.5)


# ------------------------------------------------------------------------------------- metrics
def test_noc_nof_and_miou_on_hand_made_curves():
    curves = [[0.5, 0.86, 0.91, 0.95], [0.9, 0.9, 0.9, 0.9], [0.1, 0.2, 0.3, 0.84]]
    assert clicks_to_reach(curves[0], 0.85) == 2
    assert clicks_to_reach(curves[0], 0.90) == 3
    assert clicks_to_reach(curves[2], 0.85) == 20
    assert noc(curves, 0.85) == pytest.approx((2 + 1 + 20) / 3)
    assert noc(curves, 0.90) == pytest.approx((3 + 1 + 20) / 3)
    assert nof(curves, 0.85) == 1
    assert miou_at(curves, 1) == pytest.approx((0.5 + 0.9 + 0.1) / 3)
    assert miou_at(curves, 3) == pytest.approx((0.91 + 0.9 + 0.3) / 3)
    assert miou_at(curves, 10) == pytest.approx((0.95 + 0.9 + 0.84) / 3)  # short curves keep their last IoU
    with pytest.raises(ValueError):
        noc([], 0.85)


def test_iou():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True
    b[1:3] = True
    assert iou(a, b) == pytest.approx(4 / 12)
    assert iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0


def test_one_pixel_off_yardstick_on_a_square():
    square = np.zeros((20, 20), bool)
    square[5:15, 5:15] = True
    moved, shrunk = one_pixel_off_ious(square)
    assert moved == pytest.approx(90 / 110)  # 10 x 10 moved by one: 90 shared of 110 covered
    assert shrunk == pytest.approx(64 / 100)
    big = np.zeros((200, 200), bool)
    big[50:150, 50:150] = True
    assert one_pixel_off_ious(big)[0] > 0.97  # a large object hardly notices one pixel
    corner = np.zeros((6, 6), bool)
    corner[:3, :3] = True  # moved up or left it loses a row (6 / 9), no wrap-around; down or right 6 / 12
    assert one_pixel_off_ious(corner)[0] == pytest.approx((6 / 9 + 6 / 9 + 6 / 12 + 6 / 12) / 4)
    with pytest.raises(ValueError, match="non-empty 2-D mask"):
        one_pixel_off_ious(np.zeros((4, 4), bool))


# -------------------------------------------------------------------------------------- runner
class FakePredictor:
    """Returns a fixed sequence of masks; records what the runner passes in."""

    def __init__(self, masks):
        self.masks = masks
        self.calls = []
        self.embedded = 0

    def embed(self, image):
        self.embedded += 1
        return SimpleNamespace(image=image)

    def set_embedding(self, embedding):
        self.current = embedding

    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask=False):
        step = len(self.calls)
        self.calls.append((np.array(points), np.array(labels), mask_input))
        mask = self.masks[min(step, len(self.masks) - 1)]
        return SimpleNamespace(mask=mask, logits=np.full((1, 8, 8), float(step)), iou=1.0)


def test_runner_follows_the_protocol_with_a_fake_predictor():
    shape = (48, 48)
    gt = disk(shape, (24, 24), 10)
    too_big = disk(shape, (24, 24), 16)
    too_small = disk(shape, (24, 24), 6)
    fake = FakePredictor([too_big, too_small, gt])
    image = np.zeros(shape, np.uint8)
    instance = datasets.Instance(image, gt, "disk", "synthetic")
    [result] = evaluate(fake, [instance], num_clicks=5)
    assert result.ious[:3] == pytest.approx([iou(too_big, gt), iou(too_small, gt), 1.0])
    assert result.ious == pytest.approx(result.ious[:3] + [1.0, 1.0])  # perfect: stops, curve padded
    assert len(fake.calls) == 3 and len(result.click_seconds) == 3
    points, labels, mask_input = fake.calls[0]
    np.testing.assert_array_equal(points, [[24, 24]])  # (x, y) of the centre
    assert mask_input is None
    points, labels, mask_input = fake.calls[1]
    assert len(points) == 2 and labels[1] == 0  # the first mask was too big: negative click
    assert mask_input[0, 0, 0] == 0.0  # the logits from click 1 are fed back
    assert fake.calls[2][1][2] == 1  # the second mask was too small: positive click
    summary = summarize([result])
    assert summary.noc85 == 3 and summary.nof85 == 0


def test_runner_counts_the_clicks_a_mask_ignores():
    shape = (48, 48)
    gt, too_big = disk(shape, (24, 24), 10), disk(shape, (24, 24), 16)
    instance = datasets.Instance(np.zeros(shape, np.uint8), gt, "disk", "synthetic")
    [stubborn] = evaluate(FakePredictor([too_big]), [instance], num_clicks=2)
    assert stubborn.ignored == [0, 1]  # click 2 (negative, in the ring) stays inside the mask
    [empty] = evaluate(FakePredictor([np.zeros(shape, bool)]), [instance], num_clicks=3)
    assert empty.ignored == [1, 2, 3]  # every positive click left out
    assert summarize([stubborn, empty]).ignored == pytest.approx((1 / 2 + 3 / 3) / 2)
    assert contradicted_clicks(gt, [[24, 24], [0, 0], [40, 40]], [1, 0, 1]) == 1


def test_runner_encodes_a_shared_image_once():
    shape = (40, 40)
    image = np.zeros(shape, np.uint16)
    masks = [disk(shape, (10, 10), 4), disk(shape, (28, 28), 5)]
    fake = FakePredictor([np.zeros(shape, bool)])
    results = evaluate(fake, [datasets.Instance(image, m, f"m{i}", "s") for i, m in enumerate(masks)], num_clicks=2)
    assert fake.embedded == 1
    assert results[0].encode_seconds is not None and results[1].encode_seconds is None


def test_runner_rejects_bad_instances():
    fake = FakePredictor([np.zeros((8, 8), bool)])
    with pytest.raises(ValueError, match="empty"):
        evaluate(fake, [datasets.Instance(np.zeros((8, 8)), np.zeros((8, 8), bool), "e", "s")])
    with pytest.raises(ValueError):
        evaluate(object(), [datasets.Instance(np.zeros((8, 8)), np.ones((8, 8), bool), "e", "s")])


# ----------------------------------------------------------------------------------- baselines
def noisy_disk_image(seed=0):
    rng = np.random.default_rng(seed)
    gt = disk((256, 256), (130, 120), 11)  # nucleus-sized
    image = (40 + 150 * gt + rng.normal(0, 12, gt.shape)).clip(0, 255).astype(np.uint8)
    return image, gt


@pytest.mark.parametrize("name", ["GrabCutPredictor", "RandomWalkerPredictor"])
def test_classic_baselines_segment_a_bright_disk(name):
    if name == "GrabCutPredictor":
        pytest.importorskip("cv2")
    from hrsam_model.evaluation import baselines

    image, gt = noisy_disk_image()
    [result] = evaluate(getattr(baselines, name)(), [datasets.Instance(image, gt, "disk", "synthetic")], num_clicks=3)
    assert max(result.ious) >= 0.8


@pytest.mark.parametrize("name", ["GrabCutPredictor", "RandomWalkerPredictor"])
def test_classic_baselines_answer_a_click_on_an_image_smaller_than_their_margin(name):
    # 20x20 px: every border pixel lies within the 16 px margin of a central click, so there is
    # no background seed at all (the random walker raised NameError here)
    if name == "GrabCutPredictor":
        pytest.importorskip("cv2")
    from hrsam_model.evaluation import baselines

    image = np.random.default_rng(0).integers(0, 255, (20, 20)).astype(np.uint8)
    predictor = getattr(baselines, name)()
    predictor.set_image(image)
    mask = predictor.predict(np.array([[10, 10]]), np.array([1])).mask
    assert mask.shape == (20, 20) and mask[10, 10]


# -------------------------------------------------------------------------------------- splits
def test_no_validation_pixel_is_in_a_training_image(tmp_path):
    write_fake_data(tmp_path)
    nuclei = {s: datasets.load_instances("nuclei", s, tmp_path) for s in datasets.SPLITS}
    assert all(i.image.max() < 256 for i in nuclei["train"])
    assert all(i.image.min() >= 256 for i in nuclei["val"])
    assert sorted(i.name[-3:] for i in nuclei["train"]) == ["001", "004"]
    assert sorted(i.name[-3:] for i in nuclei["val"]) == ["002", "003"]

    ecoli = {s: datasets.load_instances("ecoli", s, tmp_path) for s in datasets.SPLITS}
    assert {int(i.image.max()) for i in ecoli["train"]} == set(range(15))
    assert {int(i.image.min()) for i in ecoli["val"]} == set(range(15, 20))

    brain = {s: datasets.load_instances("brain", s, tmp_path, max_instances=None) for s in datasets.SPLITS}
    train_values = set(np.unique(np.concatenate([i.image.ravel() for i in brain["train"]])))
    val_values = set(np.unique(np.concatenate([i.image.ravel() for i in brain["val"]])))
    assert train_values <= {0, 80} and val_values <= {0, 180}
    axes = {i.name.split("/")[3].rstrip("0123456789") for i in brain["train"]}
    assert axes == {"axial", "coronal", "sagittal"}
    targets = {i.name.split("/")[2] for i in brain["val"]}
    assert targets == {"whole_brain", "caudate"}
    assert len(brain["val"]) <= 2 * 3 * 2

    for s in datasets.SPLITS:
        pixels = datasets.load_split_images("nuclei", s, tmp_path)[0]
        assert (pixels.max() < 256) if s == "train" else (pixels.min() >= 256)
    assert datasets.load_split_images("brain", "train", tmp_path)[0].max() == 80


def test_accuracy_benchmark_tables_each_kind_of_brain_target(tmp_path, monkeypatch, capsys):
    write_fake_data(tmp_path)
    monkeypatch.setenv("HRSAM_DATA", str(tmp_path))
    accuracy = load_benchmark("accuracy")
    assert accuracy.main(["--model", "none", "--baselines", "grabcut", "--datasets", "brain",
                          "--by-kind", "--clicks", "2"]) == 0
    out = capsys.readouterr().out
    total = int(out.split("brain (val), ")[1].split(" instances")[0])
    per_kind = {kind: int(out.split(f"brain (val), {kind}, ")[1].split(" instances")[0])
                for kind in ("whole_brain", "caudate")}
    assert sum(per_kind.values()) == total and min(per_kind.values()) > 0
    assert out.count("grabcut") == 3  # the dataset's table and one per kind
    assert out.count("yardstick: the true masks moved by one pixel score mean IoU") >= 3
    assert accuracy.main(["--model", "none", "--baselines", "grabcut", "--datasets", "brain",
                          "--split", "train", "--clicks", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 clicks, train splits" in out and "brain (train), " in out and "(val)" not in out


def test_inference_variants_benchmark_prints_a_row_per_setting(tmp_path, monkeypatch, capsys):
    write_fake_data(tmp_path)
    monkeypatch.setenv("HRSAM_DATA", str(tmp_path))
    variants = load_benchmark("inference_variants")
    assert variants.main(["--untrained", "--datasets", "brain", "--max-instances", "2", "--clicks", "3",
                          "--contrast", "0", "100", "--disc-radii", "0", "2"]) == 0
    out = capsys.readouterr().out
    assert "brain (val), 2 instances" in out and "random weights" in out
    rows = [line for line in out.splitlines() if line.count(" | ") == 5][1:]  # the header, then one per variant
    assert [row.split(" | ")[0].strip() for row in rows] == [
        "widget (zoom-in, clicks held 1 px)", "contrast 0-100",
        "clicks not held", "clicks held, r = 2 px"]
    cells = [[cell.strip() for cell in row.split(" | ")] for row in rows]
    assert all(0 <= float(c[2]) <= 1 and c[3] == c[4] == "" for c in cells)  # no mIoU@5/@10 after 3 clicks


def test_missing_data_names_the_fetch_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="pip download --no-deps stardist==0.9.2"):
        datasets.load_instances("nuclei", "val", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load_instances("cells", "val", tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        datasets.load_instances("nuclei", "test", tmp_path)


def test_real_splits_are_disjoint_when_the_data_is_present():
    try:
        train = datasets.load_instances("nuclei", "train", DEV_DATA)
        val = datasets.load_instances("nuclei", "val", DEV_DATA)
    except FileNotFoundError:
        pytest.skip("DSB-2018 nuclei not downloaded")
    assert len(train) > 30 and len(val) > 30
    assert {i.name for i in train}.isdisjoint(i.name for i in val)
    full = tifffile.imread(DEV_DATA / "nuclei" / "img2d.tif")
    assert all(np.array_equal(i.image, full[:, 256:]) for i in val)


def test_subsample_is_deterministic_and_keeps_order():
    items = list(range(100))
    a = datasets.subsample(items, 10, seed=3)
    assert a == datasets.subsample(items, 10, seed=3) == sorted(a) and len(a) == 10
    assert datasets.subsample(items, 200) == items


# -------------------------------------------------------------------------------- folder format
def test_export_and_load_folder_round_trip(tmp_path):
    image = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40)
    masks = [disk((30, 40), (10, 10), 4), disk((30, 40), (20, 30), 6)]
    instances = [datasets.Instance(image, m, f"toy/{i}", "toy") for i, m in enumerate(masks)]
    datasets.export_instances(instances, tmp_path / "out")
    back = datasets.load_folder(tmp_path / "out")
    assert [b.name for b in back] == ["toy/0", "toy/1"] and back[0].dataset == "toy"
    for a, b in zip(instances, back):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.mask, b.mask)


def test_load_folder_splits_label_images_and_reports_problems(tmp_path):
    labels = np.zeros((20, 20), np.uint8)
    labels[2:6, 2:6] = 1
    labels[10:15, 10:15] = 7
    tifffile.imwrite(tmp_path / "image_a.tif", np.zeros((20, 20), np.uint8))
    tifffile.imwrite(tmp_path / "mask_a.tif", labels)
    np.savez(tmp_path / "b.npz", image=np.zeros((20, 20)), mask=labels == 1)
    loaded = datasets.load_folder(tmp_path)
    assert len(loaded) == 3 and sorted(int(i.mask.sum()) for i in loaded) == [16, 16, 25]
    tifffile.imwrite(tmp_path / "image_c.tif", np.zeros((20, 20), np.uint8))
    with pytest.raises(ValueError, match="mask_c"):
        datasets.load_folder(tmp_path)
    with pytest.raises(FileNotFoundError):
        datasets.load_folder(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- shipped test crop
def test_shipped_crop_holds_complete_validation_nuclei():
    image = tifffile.imread(TEST_DATA / "nuclei_val_crop.tif")
    labels = tifffile.imread(TEST_DATA / "nuclei_val_crop_labels.tif")
    assert image.shape == labels.shape == (128, 128) and image.dtype == np.uint16
    values = [v for v in np.unique(labels) if v]
    assert values == list(range(1, 8))
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    assert not edge.any()  # every labelled nucleus is whole
    assert all((labels == v).sum() >= datasets.MIN_AREA["nuclei"] for v in values)
    source = DEV_DATA / "nuclei" / "img2d.tif"
    if source.is_file():  # it is the validation half's pixels, unchanged
        np.testing.assert_array_equal(image, tifffile.imread(source)[208:336, 256:384])
        assert datasets.NUCLEI_SPLIT_COLUMN <= 256  # the crop starts at column 256: validation side


# ---------------------------------------------------------------------------------- entry point
def test_run_evaluation_prints_a_table_for_a_folder(tmp_path, monkeypatch):
    from hrsam_model.evaluation import run_evaluation

    image, gt = noisy_disk_image()
    datasets.export_instances([datasets.Instance(image, gt, "disk", "synthetic")], tmp_path / "set")
    monkeypatch.setenv("HRSAM_DATA", str(tmp_path))  # no lite_medsam.pth there: that baseline is skipped
    text = run_evaluation((), data=str(tmp_path / "set"), baselines=["randomwalker", "litemedsam"],
                          num_clicks=3)
    header = next(line for line in text.splitlines() if line.startswith("method"))
    assert header.split() == ["method", "n", "NoC@85", "NoC@90", "NoF@85", "mIoU@1", "mIoU@3", "mIoU@5",
                              "mIoU@10", "mIoU@1", "touching", "ignored", "s/click", "enc", "s"]
    row = next(line for line in text.splitlines() if line.startswith("randomwalker")).split()
    assert row[1] == "1" and float(row[5]) > 0.5
    yardstick = next(line for line in text.splitlines() if line.startswith("yardstick"))
    moved, shrunk = one_pixel_off_ious(gt)
    assert f"{moved:.3f}" in yardstick and f"{shrunk:.3f}" in yardstick
    assert "skipped baseline litemedsam" in text and "lite_medsam.pth not found" in text
    with pytest.raises(ValueError, match="unknown baseline"):
        run_evaluation((), data=str(tmp_path / "set"), baselines=["nonsense"])


def test_litemedsam_baseline_maps_prompts_onto_its_256_px_canvas():
    weights = DEV_DATA / "lite_medsam.pth"
    if not weights.is_file():
        pytest.skip("lite_medsam.pth not downloaded")
    from hrsam_model.evaluation.litemedsam import LiteMedSAMPredictor

    image = tifffile.imread(TEST_DATA / "nuclei_val_crop.tif")
    labels = tifffile.imread(TEST_DATA / "nuclei_val_crop_labels.tif")
    predictor = LiteMedSAMPredictor(weights)
    predictor.set_image(image)
    scores = []
    for value in range(1, labels.max() + 1):
        rows, cols = np.nonzero(labels == value)
        result = predictor.predict(box=[cols.min(), rows.min(), cols.max(), rows.max()])
        assert result.mask.shape == labels.shape and result.logits.shape == (1, 256, 256)
        scores.append(iou(result.mask, labels == value))
    assert np.mean(scores) >= 0.75  # LiteMedSAM is good with boxes (0.84 measured); a wrong map is ~0


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32])
@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_numpy_nifti_reader_gives_simpleitks_voxels(tmp_path, dtype, suffix):
    import SimpleITK as sitk

    from hrsam_model.evaluation.nifti import read_nifti_voxels

    volume = (np.arange(5 * 6 * 7).reshape(5, 6, 7) % 250).astype(dtype)  # (z, y, x), no symmetry
    path = tmp_path / f"volume{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(volume), str(path))
    ours = read_nifti_voxels(path)
    assert ours.dtype == volume.dtype
    np.testing.assert_array_equal(ours, sitk.GetArrayFromImage(sitk.ReadImage(str(path))))


def test_numpy_nifti_reader_refuses_what_is_not_nifti(tmp_path):
    from hrsam_model.evaluation.nifti import read_nifti_voxels

    (tmp_path / "text.nii").write_text("not a volume" * 40)
    with pytest.raises(ValueError, match="not a NIfTI-1 file"):
        read_nifti_voxels(tmp_path / "text.nii")
    (tmp_path / "short.nii.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(ValueError, match="readable|too short"):
        read_nifti_voxels(tmp_path / "short.nii.gz")


def test_truncated_brain_volume_is_an_error_with_or_without_simpleitk(tmp_path, monkeypatch):
    write_fake_data(tmp_path)
    path = datasets._brain_file(tmp_path, "ch2.nii.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="ch2.nii.gz"):
        datasets._read_nifti(path)
    monkeypatch.setitem(sys.modules, "SimpleITK", None)
    with pytest.raises(ValueError, match="ch2.nii.gz"):
        datasets._read_nifti(path)


def test_brain_split_loads_the_same_without_simpleitk(tmp_path, monkeypatch):
    write_fake_data(tmp_path)
    with_sitk = datasets.load_instances("brain", "train", tmp_path, max_instances=None)
    monkeypatch.setitem(sys.modules, "SimpleITK", None)  # import SimpleITK now raises ImportError
    without = datasets.load_instances("brain", "train", tmp_path, max_instances=None)
    assert [i.name for i in without] == [i.name for i in with_sitk] and len(without) > 0
    for a, b in zip(without, with_sitk):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.mask, b.mask)


def test_automatic_benchmark_prints_both_methods_per_set(tmp_path, monkeypatch, capsys):
    write_fake_data(tmp_path)
    monkeypatch.setenv("HRSAM_DATA", str(tmp_path))
    automatic = load_benchmark("automatic")
    assert automatic.main(["--untrained", "--datasets", "nuclei,ecoli", "--max-images", "1",
                           "--points-per-side", "4"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.count(" | ") == 9][1:]
    assert [row.split(" | ")[1].strip() for row in rows] == ["hrsam_tiny segment_all", "Otsu + watershed"] * 2
    assert all(0 <= float(row.split(" | ")[4]) <= 1 for row in rows)  # F1
