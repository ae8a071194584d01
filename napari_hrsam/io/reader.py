"""npe2 reader: medical volumes and DICOM folders become image or labels layers (the rule is in
``napari_hrsam.io.label_files``) placed in physical space; OME-Zarr images become multiscale image
layers with their physical scale (``napari_hrsam.io.ngff``)."""
from __future__ import annotations

from pathlib import Path

from . import images as io, ngff


def napari_get_reader(path):
    """Return a reader for a volume file, a DICOM file or a folder holding a DICOM series; else None."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(_is_ours(Path(p)) for p in paths):
        return None
    return read_layers


def _is_ours(path: Path) -> bool:
    if ngff.is_ngff(path):
        return True
    if path.is_dir():
        return bool(io._find_dicom_series(path, recursive=True))
    return io.path_suffix(path) in io.VOLUME_SUFFIXES + io.DICOM_SUFFIXES


def read_layers(path) -> list[tuple]:
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    return [layer_data(p) for p in paths]


def layer_data(path) -> tuple:
    """``(array, layer kwargs, "image" | "labels")`` with scale = spacing and translate = origin
    (z, y, x); "labels" for a labels volume (``metadata["is_labels"]``), e.g. one this plugin saved.
    An OME-Zarr image is its pyramid (a list of lazy arrays, full resolution first)."""
    if ngff.is_ngff(path):
        levels, kwargs = ngff.read_ngff(path)
        return (levels if kwargs["multiscale"] else levels[0]), kwargs, "image"
    array, metadata = io.read_image(path)
    kwargs = {
        "name": _layer_name(Path(path)),
        "scale": metadata["spacing"],
        "translate": metadata["origin"],
        "metadata": metadata,
    }
    if metadata.get("is_labels"):
        return array, kwargs, "labels"
    kwargs["rgb"] = metadata["rgb"]
    if metadata["is_ct"]:
        kwargs["contrast_limits"] = io.SOFT_TISSUE_WINDOW
    return array, kwargs, "image"


def _layer_name(path: Path) -> str:
    suffix = io.path_suffix(path)
    return path.name[: -len(suffix)] if suffix and not path.is_dir() else path.name
