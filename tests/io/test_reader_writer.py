"""npe2 contributions: the manifest, the reader, the labels writer and the sample data, in a real viewer."""
import napari
import numpy as np
import pytest
import SimpleITK as sitk

from napari_hrsam.io import images as io
from napari_hrsam.io.reader import napari_get_reader
from napari_hrsam.io.writer import write_labels

PLUGIN = "napari-hrsam"
DIRECTION = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def write_volume(path, data, spacing=(3.0, 0.7, 0.5), origin=(-20.0, 2.0, 1.0), direction=DIRECTION):
    image = sitk.GetImageFromArray(data)
    image.SetSpacing(tuple(reversed(spacing)))
    image.SetOrigin(tuple(reversed(origin)))
    image.SetDirection(tuple(np.asarray(direction)[::-1, ::-1].ravel()))
    sitk.WriteImage(image, str(path))
    return path


def test_manifest_is_valid():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    manifest.validate_imports()  # every python_name in napari.yaml resolves
    assert {w.display_name for w in manifest.contributions.widgets} == {"HRSAM segmentation"}
    assert {s.key for s in manifest.contributions.sample_data} == {"nuclei_2d", "brain_mr_3d"}


def test_reader_claims_volumes_and_dicom_folders_only(tmp_path):
    volume = write_volume(tmp_path / "v.nii.gz", np.zeros((3, 4, 5), np.int16))
    assert callable(napari_get_reader(str(volume)))
    assert napari_get_reader(str(tmp_path / "image.png")) is None
    (tmp_path / "not_dicom").mkdir()
    (tmp_path / "not_dicom" / "notes.txt").write_text("x")
    assert napari_get_reader(str(tmp_path / "not_dicom")) is None


def test_reader_layer_data_places_the_volume_in_physical_space(tmp_path):
    data = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    path = write_volume(tmp_path / "brain.nii.gz", data)
    [(array, kwargs, layer_type)] = napari_get_reader(str(path))(str(path))
    assert layer_type == "image" and kwargs["name"] == "brain"
    np.testing.assert_array_equal(array, data)
    np.testing.assert_allclose(kwargs["scale"], (3.0, 0.7, 0.5), rtol=1e-6)
    np.testing.assert_allclose(kwargs["translate"], (-20.0, 2.0, 1.0), atol=1e-5)
    np.testing.assert_allclose(kwargs["metadata"]["direction"], DIRECTION, atol=1e-6)
    assert "contrast_limits" not in kwargs  # not CT: napari picks the contrast


def test_reader_gives_ct_a_soft_tissue_window(tmp_path):
    ct = np.full((4, 6, 6), -1000, np.int16)
    ct[:, 2:4, 2:4] = 400  # bone
    path = write_volume(tmp_path / "ct.nii.gz", ct)
    [(_, kwargs, _)] = napari_get_reader(str(path))(str(path))
    assert kwargs["contrast_limits"] == io.SOFT_TISSUE_WINDOW


def test_reader_refuses_a_truncated_nifti_with_one_clear_line(tmp_path):
    whole = write_volume(tmp_path / "whole.nii.gz", np.random.default_rng(3).integers(0, 999, (20, 30, 40)).astype(np.int16))
    short = tmp_path / "short.nii.gz"
    short.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    reader = napari_get_reader(str(short))
    with pytest.raises(ValueError, match=r"short\.nii\.gz' is truncated or corrupt") as err:
        reader(str(short))
    assert len(str(err.value).splitlines()) == 1


def test_writer_keeps_the_layer_geometry(tmp_path):
    labels = np.random.default_rng(0).integers(0, 3, (3, 4, 5)).astype(np.uint8)
    attributes = {"scale": (3.0, 0.7, 0.5), "translate": (-20.0, 2.0, 1.0), "metadata": {"direction": DIRECTION}}
    [path] = write_labels(str(tmp_path / "labels.mha"), labels, attributes)
    image = sitk.ReadImage(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), labels)
    np.testing.assert_allclose(image.GetSpacing(), (0.5, 0.7, 3.0))
    np.testing.assert_allclose(image.GetOrigin(), (1.0, 2.0, -20.0))
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), DIRECTION[::-1, ::-1])


def test_writer_refuses_an_unwritable_folder_in_one_line(unwritable_folder):
    with pytest.raises(PermissionError, match="Cannot write .*labels.nii.gz': no permission") as err:
        write_labels(str(unwritable_folder / "labels.nii.gz"), np.ones((3, 4, 5), np.uint8), {})
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_viewer_round_trip_keeps_spacing_origin_direction(make_napari_viewer, tmp_path, suffix):
    viewer = make_napari_viewer()
    data = np.random.default_rng(1).integers(0, 1000, (6, 8, 10)).astype(np.int16)
    path = write_volume(tmp_path / f"volume{suffix}", data)
    [image] = viewer.open(str(path), plugin=PLUGIN)
    np.testing.assert_allclose(image.scale, (3.0, 0.7, 0.5), rtol=1e-6)
    np.testing.assert_allclose(image.translate, (-20.0, 2.0, 1.0), atol=1e-5)

    labels = np.zeros(data.shape, np.uint8)
    labels[2:4, 3:6, 4:8] = 1
    layer = viewer.add_labels(labels, scale=image.scale, translate=image.translate, metadata=dict(image.metadata))
    out = tmp_path / f"labels{suffix}"
    written = layer.save(str(out), plugin=PLUGIN)
    assert written == [str(out)]

    [reloaded] = viewer.open(str(out), plugin=PLUGIN)
    assert isinstance(reloaded, napari.layers.Labels)
    np.testing.assert_array_equal(reloaded.data, labels)
    np.testing.assert_allclose(reloaded.scale, image.scale, rtol=1e-6)
    np.testing.assert_allclose(reloaded.translate, image.translate, atol=1e-5)
    np.testing.assert_allclose(reloaded.metadata["direction"], DIRECTION, atol=1e-6)


def test_saved_labels_reopen_as_labels_and_images_as_images(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    noisy = np.random.default_rng(4).integers(0, 6, (5, 8, 10)).astype(np.uint8)  # not flat: only the file's note says labels
    layer = viewer.add_labels(noisy, scale=(3.0, 0.7, 0.5), translate=(-20.0, 2.0, 1.0))
    io.write_labels(tmp_path / "result_dicom", noisy, scale=layer.scale, translate=layer.translate)  # a DICOM series
    for name in ("result.nii.gz", "result.mha", "result_dicom"):
        if name != "result_dicom":
            layer.save(str(tmp_path / name), plugin=PLUGIN)
        [reloaded] = viewer.open(str(tmp_path / name), plugin=PLUGIN)
        assert isinstance(reloaded, napari.layers.Labels), name
        np.testing.assert_array_equal(reloaded.data, noisy)
        np.testing.assert_allclose(reloaded.scale, (3.0, 0.7, 0.5), rtol=1e-6)
        np.testing.assert_allclose(reloaded.translate, (-20.0, 2.0, 1.0), atol=1e-5)

    ct = np.full((6, 20, 20), -1000, np.int16)
    ct[:, 5:15, 5:15] = np.random.default_rng(5).integers(20, 60, (6, 10, 10))
    [image] = viewer.open(str(write_volume(tmp_path / "ct_segment_me.nii.gz", ct)), plugin=PLUGIN)
    assert isinstance(image, napari.layers.Image)  # negative: never labels, whatever its name


def test_viewer_opens_a_dicom_folder(make_napari_viewer, tmp_path):
    from test_io import write_synthetic_dicom_series

    data = np.random.default_rng(2).integers(-1000, 1000, (4, 8, 6)).astype(np.int16)
    write_synthetic_dicom_series(tmp_path / "series", data, (2.5, 0.9, 0.8), (30.0, 5.0, -10.0))
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(tmp_path / "series"), plugin=PLUGIN)
    np.testing.assert_array_equal(layer.data, data)
    np.testing.assert_allclose(layer.scale, (2.5, 0.9, 0.8), rtol=1e-6)
    np.testing.assert_allclose(layer.translate, (30.0, 5.0, -10.0), atol=1e-5)
    assert layer.metadata["modality"] == "CT"


def test_sample_data_opens_in_the_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    [nuclei] = viewer.open_sample(PLUGIN, "nuclei_2d")
    assert nuclei.data.shape == (512, 256)
    [brain] = viewer.open_sample(PLUGIN, "brain_mr_3d")
    assert brain.data.ndim == 3
    np.testing.assert_allclose(brain.scale, (2.0, 2.0, 2.0))
