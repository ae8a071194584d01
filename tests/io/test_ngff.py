"""OME-Zarr: images read as multiscale layers with their scale, labels written as NGFF labels,
each checked by reading back with ome-zarr-py."""
import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.format import FormatV04
from ome_zarr.io import parse_url
from ome_zarr.reader import Label, Reader
from ome_zarr.writer import write_image

from _session_fakes import disk
from napari_hrsam.cli.main import main
from napari_hrsam.io import ngff, read_image
from napari_hrsam.io.reader import napari_get_reader
from napari_hrsam.io.writer import write_labels


def ome_image(path, image, scale, fmt=None):
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if fmt else 3)
    axes = "zyx"[-image.ndim:]
    write_image(image, group, axes=axes, scale=dict(zip(axes, scale)), scale_factors=(2,), fmt=fmt)
    return path


def read_labels_back(store):
    nodes = list(Reader(parse_url(str(store)))())
    label = next(n for n in nodes if any(isinstance(s, Label) for s in n.specs))
    return np.asarray(label.data[0]), label.metadata["coordinateTransformations"][0][0]["scale"]


@pytest.mark.parametrize("fmt", [None, FormatV04()], ids=["ngff-0.5", "ngff-0.4"])
def test_an_ome_zarr_image_opens_as_a_multiscale_layer_with_its_scale(tmp_path, fmt):
    image = (np.arange(40 * 64 * 80) % 251).astype(np.uint8).reshape(40, 64, 80)
    store = ome_image(tmp_path / "cells.ome.zarr", image, (2.0, 0.5, 0.25), fmt)
    reader = napari_get_reader(str(store))
    assert reader is not None
    [(levels, kwargs, kind)] = reader(str(store))
    assert kind == "image" and kwargs["multiscale"] and len(levels) == 2
    assert kwargs["scale"] == [2.0, 0.5, 0.25] and kwargs["name"] == "cells"
    np.testing.assert_array_equal(np.asarray(levels[0]), image)
    array, metadata = read_image(store)  # what the engine and the CLI read: level 0, lazily
    assert metadata["spacing"] == (2.0, 0.5, 0.25) and not isinstance(array, np.ndarray)
    np.testing.assert_array_equal(np.asarray(array[7]), image[7])


def test_labels_go_into_the_images_store_with_its_scale(tmp_path):
    image = np.zeros((60, 80), np.uint16)
    store = ome_image(tmp_path / "img.ome.zarr", image, (0.5, 0.25))
    labels = (disk((60, 80), (30, 40), 10) > 0).astype(np.uint16) * 3
    written = write_labels(str(store), labels, {"scale": (0.5, 0.25)})
    assert written == [str(store / "labels" / "hrsam")]
    back, scale = read_labels_back(store)
    np.testing.assert_array_equal(back, labels)
    assert scale == [0.5, 0.25]
    with pytest.raises(ValueError, match="does not match"):
        ngff.write_ngff_labels(store, labels[:10], name="other")


def test_labels_into_a_new_store_and_from_the_command_line(tmp_path):
    labels = np.zeros((30, 40), np.int32)
    labels[5:10, 5:20] = 2
    ngff.write_ngff_labels(tmp_path / "new.ome.zarr", labels, scale=(3.0, 3.0))
    back, scale = read_labels_back(tmp_path / "new.ome.zarr" / "labels" / "hrsam")
    np.testing.assert_array_equal(back, labels)
    assert scale == [3.0, 3.0]

    image = (disk((64, 64), (30, 30), 10) > 0).astype(np.uint8) * 200
    tifffile.imwrite(tmp_path / "cells.tif", image)
    out = tmp_path / "mask.ome.zarr"
    assert main(["segment", str(tmp_path / "cells.tif"), "--point", "30,30", "--out", str(out)]) == 0
    mask, _ = read_labels_back(out / "labels" / "hrsam")
    assert mask.shape == (64, 64) and mask[30, 30] == 1 and mask[0, 0] == 0


def test_damaged_or_foreign_stores_are_refused(tmp_path):
    store = ome_image(tmp_path / "img.ome.zarr", np.zeros((20, 20), np.uint8), (1.0, 1.0))
    (store / "zarr.json").write_text("{ half a file")
    assert napari_get_reader(str(store)) is None  # not recognised: napari says no reader
    with pytest.raises(ValueError, match="not an OME-Zarr image"):
        ngff.read_ngff(store)
    plain = tmp_path / "plain.zarr"
    zarr.open_array(str(plain), mode="w", shape=(4, 4), dtype="u1")
    with pytest.raises(ValueError, match="exists and is not an OME-Zarr image"):
        ngff.write_ngff_labels(plain, np.zeros((4, 4), np.uint8))
