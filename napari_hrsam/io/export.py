"""Export committed objects for training: COCO instance annotations, an instance TIFF per image,
and each object's prompts as JSON.

The input is saved work: one autosave folder (``Session(..., autosave=DIR)``, a ``session.json``
and a ``labels.zarr``), or a folder holding several (a series' project folder). The output:

- ``coco``: ``annotations.json`` in COCO's instance format: one image entry per 2-D image, or per
  slice (along the first axis) of a volume that holds labels; one annotation per object and slice
  (``segmentation`` as COCO's uncompressed RLE, ``bbox`` [x, y, w, h], ``area``, ``iscrowd`` 0), one
  category "object". ``attributes`` carry the label id and the source folder.
- ``tiff``: ``<name>_labels.tif`` per saved image, the label array as it is.
- both: ``<name>_prompts.json``, every object's prompts as the session recorded them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_hrsam.engine.autosave import FOLDER_SUFFIX, LABELS_DIR, STATE_FILE

FORMATS = ("coco", "tiff")


def saved_folders(folder) -> list[Path]:
    """The autosave folders in ``folder`` (itself, or its subfolders, sorted); ValueError if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    if (folder / STATE_FILE).is_file():
        return [folder]
    found = sorted(p.parent for p in folder.glob(f"*/{STATE_FILE}"))
    if not found:
        raise ValueError(f"{folder} holds no saved work (no {STATE_FILE} in it or its subfolders)")
    return found


def read_saved(folder: Path) -> tuple[np.ndarray, dict]:
    """(labels, session.json's content) of one autosave folder."""
    import zarr

    state = json.loads((folder / STATE_FILE).read_text())
    labels = np.asarray(zarr.open_array(str(folder / LABELS_DIR), mode="r")[...])
    return labels, state


def export(folder, out, fmt: str = "coco") -> dict:
    """Export every saved image under ``folder`` into ``out``; returns counts
    {"images": n, "objects": m, "annotations": k}."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    folders = saved_folders(folder)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "object"}]}
    objects = 0
    for source in folders:
        labels, state = read_saved(source)
        name = _name_of(source)
        objects += len(state.get("objects", {}))
        (out / f"{name}_prompts.json").write_text(json.dumps(state.get("objects", {}), indent=1))
        if fmt == "tiff":
            import tifffile

            tifffile.imwrite(out / f"{name}_labels.tif", labels)
        else:
            _add_coco(coco, labels, name, source)
    if fmt == "coco":
        (out / "annotations.json").write_text(json.dumps(coco))
    return {"images": len(folders) if fmt == "tiff" else len(coco["images"]), "objects": objects,
            "annotations": len(coco["annotations"])}


def _name_of(folder: Path) -> str:
    name = folder.name
    return name[: -len(FOLDER_SUFFIX)] if name.endswith(FOLDER_SUFFIX) else name


def _planes(labels: np.ndarray):
    """(suffix, 2-D plane) pairs: the image itself, or each slice of the first axis of a volume."""
    if labels.ndim == 2:
        yield "", labels
        return
    flat = labels.reshape((-1,) + labels.shape[-2:])
    for index, plane in enumerate(flat):
        yield f"_z{index:04d}", plane


def _add_coco(coco: dict, labels: np.ndarray, name: str, source: Path) -> None:
    for suffix, plane in _planes(labels):
        values = np.unique(plane)
        values = values[values != 0]
        if labels.ndim > 2 and not len(values):
            continue  # a volume's empty slices are not images of the dataset
        image_id = len(coco["images"]) + 1
        coco["images"].append({"id": image_id, "file_name": f"{name}{suffix}", "height": int(plane.shape[0]),
                               "width": int(plane.shape[1])})
        for value in values:
            mask = plane == value
            rows, cols = np.nonzero(mask)
            x, y = int(cols.min()), int(rows.min())
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": image_id, "category_id": 1,
                "segmentation": rle(mask), "area": float(rows.size),
                "bbox": [float(x), float(y), float(cols.max() - x + 1), float(rows.max() - y + 1)], "iscrowd": 0,
                "attributes": {"label_id": int(value), "source": str(source)}})


def rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed run-length encoding of a boolean mask: run lengths in column-major
    order, starting with a (possibly empty) run of background."""
    flat = np.asarray(mask, bool).ravel(order="F")
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    edges = np.r_[0, changes, flat.size]
    counts = np.diff(edges).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}
