"""OME-Zarr (NGFF 0.4 and 0.5, local paths) through ome-zarr-py, the format's maintained library.

- ``read_ngff(path)``: the first image of a store as its pyramid (lazy dask arrays, full
  resolution first) with the physical scale and translation of level 0, in napari's layer terms.
- ``write_ngff_labels(path, labels, ...)``: labels as NGFF labels (``labels/<name>``, a pyramid
  made by nearest-neighbour downsampling): into the image's own store when ``path`` is one, else
  into a new store; the image's scale (or the one given) is kept.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SUFFIXES = (".ome.zarr", ".zarr")
SPATIAL = ("z", "y", "x")


def is_ngff(path) -> bool:
    """A local folder whose zarr metadata says OME-Zarr (an image with multiscales)."""
    path = Path(path)
    if not path.is_dir():
        return False
    for name, key in (("zarr.json", "attributes"), (".zattrs", None)):
        meta = path / name
        if meta.is_file():
            try:
                attributes = json.loads(meta.read_text())
            except (OSError, ValueError):
                return False
            attributes = attributes.get(key, {}) if key else attributes
            return "multiscales" in attributes.get("ome", attributes)
    return False


def read_ngff(path) -> tuple[list, dict]:
    """(levels, layer kwargs) of the first image in the store at ``path``: ``levels`` full
    resolution first; kwargs name, scale, translate (spatial axes; a channel axis becomes
    ``channel_axis``) and metadata. ValueError when ``path`` is no OME-Zarr image."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    path = Path(path)
    location = parse_url(str(path))
    if location is None or not is_ngff(path):
        raise ValueError(f"{path} is not an OME-Zarr image (no multiscales metadata)")
    images = [node for node in Reader(location)() if any(isinstance(s, Multiscales) for s in node.specs)
              and node.data]
    if not images:
        raise ValueError(f"{path} holds no OME-Zarr image")
    node = images[0]
    axes = [axis["name"] if isinstance(axis, dict) else str(axis) for axis in node.metadata.get("axes", [])]
    scale, translate = _level0_transform(node.metadata, len(axes))
    kwargs = {"name": path.name[: -len(".ome.zarr")] if path.name.endswith(".ome.zarr") else path.stem,
              "metadata": {"source": str(path), "ngff_axes": axes}}
    levels = list(node.data)
    if "t" in axes:  # one time point: the first
        t = axes.index("t")
        levels = [level[(slice(None),) * t + (0,)] for level in levels]
        axes = axes[:t] + axes[t + 1:]
        scale, translate = scale[:t] + scale[t + 1:], translate[:t] + translate[t + 1:]
    keep = [i for i, name in enumerate(axes) if name in SPATIAL]
    if "c" in axes:
        kwargs["channel_axis"] = axes.index("c")
    kwargs["scale"] = [scale[i] for i in keep]
    kwargs["translate"] = [translate[i] for i in keep]
    kwargs["multiscale"] = len(levels) > 1
    return levels, kwargs


def read_ngff_image(path) -> tuple:
    """(full-resolution dask array, metadata as ``images.read_image`` gives it: spacing and
    origin from level 0's transform) of an OME-Zarr image; a time axis keeps its first point."""
    from .images import default_metadata

    levels, kwargs = read_ngff(path)
    metadata = default_metadata(len(kwargs["scale"]), source=str(path))
    metadata.update(spacing=tuple(kwargs["scale"]), origin=tuple(kwargs["translate"]))
    if "channel_axis" in kwargs:
        metadata["channel_axis"] = kwargs["channel_axis"]
    return levels[0], metadata


def write_ngff_labels(path, labels, name: str = "hrsam", scale=None) -> Path:
    """Write ``labels`` (2-D yx or 3-D zyx) as NGFF labels ``name``: into the OME-Zarr image at
    ``path`` (its scale kept; the labels must match its full-resolution spatial shape), else into
    a new store at ``path`` (with ``scale``, default 1 per axis). Returns the labels' group path."""
    import zarr
    from ome_zarr.writer import write_labels

    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"OME-Zarr labels are written for 2-D or 3-D label arrays, got {labels.ndim}-D")
    axes = "".join(SPATIAL[-labels.ndim:])
    path = Path(path)
    if is_ngff(path):
        levels, kwargs = read_ngff(path)
        spatial = tuple(n for i, n in enumerate(levels[0].shape) if i != kwargs.get("channel_axis"))
        if spatial != labels.shape:
            raise ValueError(f"the labels' shape {labels.shape} does not match the image's {spatial} in {path}")
        scale = kwargs["scale"]
        group = zarr.open_group(str(path), mode="r+")
    else:
        if path.exists():
            raise ValueError(f"{path} exists and is not an OME-Zarr image: choose a new path")
        group = zarr.open_group(str(path), mode="w")
    scale = [1.0] * labels.ndim if scale is None else [float(s) for s in scale][-labels.ndim:]
    write_labels(labels, group, name=name, axes=axes, scale=dict(zip(axes, scale)))
    return path / "labels" / name


def _level0_transform(metadata: dict, ndim: int) -> tuple[list[float], list[float]]:
    scale, translate = [1.0] * ndim, [0.0] * ndim
    transforms = metadata.get("coordinateTransformations") or []
    for transform in (transforms[0] if transforms else []):
        if transform.get("type") == "scale":
            scale = [float(v) for v in transform["scale"]]
        elif transform.get("type") == "translation":
            translate = [float(v) for v in transform["translation"]]
    return scale, translate
