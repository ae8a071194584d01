"""npe2 sample data: a 2-D nuclei image and a 3-D brain MRI, both shipped in napari_hrsam/data."""
from __future__ import annotations

from pathlib import Path

from napari_hrsam.io.reader import layer_data

DATA = Path(__file__).resolve().parent.parent / "data"


def nuclei_2d() -> list[tuple]:
    """Fluorescence nuclei (DSB-2018, CC0), 512 x 256."""
    array, kwargs, layer_type = layer_data(DATA / "nuclei_2d.tif")
    kwargs["name"] = "nuclei"
    return [(array, kwargs, layer_type)]


def brain_mr_3d() -> list[tuple]:
    """Colin27 T1 brain MRI at 2 mm (BSD-3-Clause), with its physical geometry."""
    array, kwargs, layer_type = layer_data(DATA / "colin27_t1_2mm.nii.gz")
    kwargs["name"] = "brain T1"
    return [(array, kwargs, layer_type)]
