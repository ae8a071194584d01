"""npe2 writer: a labels layer to NIfTI, NRRD or MetaImage, keeping spacing, origin and direction."""
from __future__ import annotations

from . import images as io


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """Write one labels layer; geometry comes from its scale, translate and metadata['direction']."""
    return io.write_labels(
        path,
        data,
        metadata=attributes.get("metadata"),
        scale=attributes.get("scale"),
        translate=attributes.get("translate"),
    )
