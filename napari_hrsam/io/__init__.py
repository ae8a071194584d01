"""Files in and out: medical and microscopy images read with their geometry, label volumes
written with it, napari's reader and writer, and the bundled samples.

``read_image`` and ``write_labels`` are the public entry points (``napari_hrsam.io.images``)."""
from .images import (
    DICOM_SUFFIXES,
    LABEL_SUFFIXES,
    PLANAR_SUFFIXES,
    SOFT_TISSUE_WINDOW,
    VOLUME_SUFFIXES,
    check_nifti_complete,
    check_writable,
    default_metadata,
    geometry_for,
    path_suffix,
    read_image,
    write_dicom_series,
    write_labels,
)

__all__ = [
    "DICOM_SUFFIXES", "LABEL_SUFFIXES", "PLANAR_SUFFIXES", "SOFT_TISSUE_WINDOW", "VOLUME_SUFFIXES",
    "check_nifti_complete", "check_writable", "default_metadata", "geometry_for", "path_suffix",
    "read_image", "write_dicom_series", "write_labels",
]
