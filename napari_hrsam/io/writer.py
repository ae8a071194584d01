"""npe2 writer: a labels layer to NIfTI, NRRD or MetaImage, keeping spacing, origin and direction,
or to OME-Zarr labels keeping the scale."""
from __future__ import annotations

from . import images as io, ngff


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """Write one labels layer; geometry comes from its scale, translate and metadata['direction'].
    A path ending in .zarr gets NGFF labels (into that OME-Zarr image, or a new store)."""
    if str(path).endswith(ngff.SUFFIXES):
        return [str(ngff.write_ngff_labels(path, data, scale=attributes.get("scale")))]
    return io.write_labels(
        path,
        data,
        metadata=attributes.get("metadata"),
        scale=attributes.get("scale"),
        translate=attributes.get("translate"),
    )
