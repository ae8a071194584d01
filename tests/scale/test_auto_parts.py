"""Segment everything split into parts: a huge 2-D image in runs of tiles, a volume in slabs of
slices; merged, the labels equal one run over the whole input, in this process and on Dask."""
from pathlib import Path

import numpy as np
import pytest
import tifffile

from _session_fakes import disk
from hrsam_model.device import cpu_bf16_supported
from napari_hrsam.cli.batch import run_whole_or_part
from napari_hrsam.cli.main import main
from napari_hrsam.engine.model_choice import ModelChoice
from napari_hrsam.scale.auto_parts import merge_unit, plan
from napari_hrsam.scale.batch import AutoUnit
from napari_hrsam.scale.executor import run_stages

CHOICE = ModelChoice("hrsam_tiny", "", "cpu", 1024, False)
DISKS = [(70, 80), (250, 255), (270, 440), (430, 160), (440, 430), (160, 540)]  # some on tile borders


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    folder = tmp_path_factory.mktemp("large")
    image = np.zeros((600, 600), np.uint8)
    for centre in DISKS:
        image = np.maximum(image, disk(image.shape, centre, 28, value=200))
    tifffile.imwrite(folder / "slide.tif", image)
    return folder / "slide.tif"


def run(first, merges):
    return run_stages([(run_whole_or_part, first), (merge_unit, merges)], CHOICE, workers=0, threads=1)


def test_tiles_of_a_huge_image_merge_into_the_labels_of_one_run(large, tmp_path):
    whole_unit = AutoUnit(str(large), str(tmp_path / "whole"), density=8)
    first, merges, failures = plan([whole_unit], 1024, tiles_per_task=100)
    assert not failures and first == [whole_unit] and not merges
    run(first, merges)
    expected = tifffile.imread(whole_unit.output)

    split_unit = AutoUnit(str(large), str(tmp_path / "split"), density=8)
    first, merges, _ = plan([split_unit], 1024, tiles_per_task=4)
    assert [p.windows for p in first] == [(0, 4), (4, 8), (8, 9)] and len(merges) == 1
    interrupted = run(first[:1], [])[0]  # a run stopped after its first part
    assert interrupted[0]["encoder_passes"] == 4 and first[0].path.is_file()
    stages = run(first, merges)
    assert [s["skipped"] for s in stages[0]] == [True, False, False]  # the written part is not redone
    assert all(s["error"] is None for stage in stages for s in stage)
    labels = tifffile.imread(split_unit.output)
    if cpu_bf16_supported():  # bf16 batches may round a boundary pixel differently in another model instance
        assert (labels != expected).mean() <= 1e-4 and np.array_equal(np.unique(labels), np.unique(expected))
    else:  # fp32: identical (README, "Scaling out")
        np.testing.assert_array_equal(labels, expected)
    for centre in DISKS:  # each disk once, whole, also where a tile border cuts it
        truth = disk(labels.shape, centre, 28) > 0
        values = np.unique(labels[truth])
        assert len(values[values > 0]) == 1, centre
        found = labels == values[-1]
        assert (found & truth).sum() / (found | truth).sum() >= 0.8, centre
    assert len(np.unique(labels)) - 1 == len(DISKS)
    assert not (tmp_path / "split" / ".parts").exists()  # removed once merged

    again = run(*plan([split_unit], 1024, tiles_per_task=4)[:2])
    assert [s["skipped"] for s in again[0]] == [True]  # the finished input is not split again


def test_slabs_of_a_volume_on_a_local_cluster_equal_the_serial_run(tmp_path, capsys):
    volume = np.zeros((7, 96, 96), np.uint8)
    for z in range(1, 6):
        volume[z] = np.maximum(disk((96, 96), (30, 30), 12), disk((96, 96), (65, 62), 10, value=180))
    tifffile.imwrite(tmp_path / "stack.tif", volume)
    code = main(["segment", str(tmp_path / "stack*.tif"), "--auto", "--density", "8", "--out", str(tmp_path / "one"),
                 "--slices-per-task", "100"])  # a glob: the batch path, in this process
    assert code == 0, capsys.readouterr().err
    expected = tifffile.imread(tmp_path / "one" / "stack_labels.tif")
    assert len(np.unique(expected)) - 1 == 2  # two 3-D objects, linked through the slices
    code = main(["segment", str(tmp_path / "stack.tif"), "--auto", "--density", "8", "--out", str(tmp_path / "two"),
                 "--workers", "2", "--slices-per-task", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 of 1 images segmented" in captured.out and "2 objects" in captured.out
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "two" / "stack_labels.tif"), expected)
    assert not list(Path(tmp_path / "two").rglob("*.npz"))
