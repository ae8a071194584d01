"""napari_hrsam.io.images: reading volumes, DICOM series and planar images; writing labels with geometry."""
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile

from napari_hrsam.io import images as io

# An oblique-free but non-trivial orientation (a 90 degree turn in the x/y plane): a reader or
# writer that forgets to reverse ITK's (x, y, z) order into (z, y, x) gets it wrong.
DIRECTION = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
GEOMETRY = {"spacing": (2.5, 0.9, 0.8), "origin": (30.0, 5.0, -10.0), "direction": DIRECTION}


def random_labels(shape=(5, 12, 10), top=4, seed=0):
    return np.random.default_rng(seed).integers(0, top + 1, shape).astype(np.uint16)


def assert_geometry(metadata, geometry=GEOMETRY):
    np.testing.assert_allclose(metadata["spacing"], geometry["spacing"], rtol=1e-6)
    np.testing.assert_allclose(metadata["origin"], geometry["origin"], atol=1e-5)
    np.testing.assert_allclose(metadata["direction"], geometry["direction"], atol=1e-6)


def write_synthetic_dicom_series(folder, array, spacing, origin, modality="CT", series_uid="1.2.826.0.1.3680043.2.1125.1.2",
                                 rescale=None):
    """A DICOM series made with SimpleITK alone (no code under test), one file per slice."""
    folder.mkdir(parents=True, exist_ok=True)
    volume = sitk.GetImageFromArray(array)
    volume.SetSpacing(tuple(reversed(spacing)))
    volume.SetOrigin(tuple(reversed(origin)))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    tags = {
        "0008|0060": modality,
        "0008|0008": "ORIGINAL\\PRIMARY\\AXIAL",
        "0010|0010": "Test^Patient",
        "0020|000d": series_uid + ".0",
        "0020|000e": series_uid,
        "0020|0037": "1\\0\\0\\0\\1\\0",
        "0028|0030": f"{spacing[1]}\\{spacing[2]}",
    }
    if rescale is not None:
        tags.update({"0028|1052": str(rescale[0]), "0028|1053": str(rescale[1]), "0028|1054": "HU"})
    for k in range(array.shape[0]):
        image = volume[:, :, k]
        for tag, value in tags.items():
            image.SetMetaData(tag, value)
        image.SetMetaData("0020|0032", "\\".join(str(v) for v in volume.TransformIndexToPhysicalPoint((0, 0, k))))
        image.SetMetaData("0020|0013", str(k + 1))
        image.SetMetaData("0008|0018", f"{series_uid}.{k + 1}")
        writer.SetFileName(str(folder / f"{series_uid.split('.')[-1]}_{k:03d}.dcm"))
        writer.Execute(image)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"])
def test_labels_round_trip_keeps_array_and_geometry(tmp_path, suffix):
    labels = random_labels()
    written = io.write_labels(tmp_path / f"labels{suffix}", labels, GEOMETRY)
    array, metadata = io.read_image(written[0])
    np.testing.assert_array_equal(array, labels)
    assert_geometry(metadata)


def test_nifti_written_by_simpleitk_reads_in_zyx_order(tmp_path):
    # A volume with a distinct size on every axis written by SimpleITK itself.
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    image = sitk.GetImageFromArray(data)
    image.SetSpacing((0.5, 0.7, 3.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    image.SetDirection(tuple(DIRECTION[::-1, ::-1].ravel()))
    sitk.WriteImage(image, str(tmp_path / "volume.nii.gz"))
    array, metadata = io.read_image(tmp_path / "volume.nii.gz")
    np.testing.assert_array_equal(array, data)
    assert_geometry(metadata, {"spacing": (3.0, 0.7, 0.5), "origin": (3.0, 2.0, 1.0), "direction": DIRECTION})
    assert metadata["is_ct"] is False and metadata["rgb"] is False


def test_write_labels_uses_layer_scale_and_translate_over_metadata(tmp_path):
    labels = random_labels()
    io.write_labels(tmp_path / "l.nrrd", labels, GEOMETRY, scale=(1.0, 2.0, 3.0), translate=(4.0, 5.0, 6.0))
    _, metadata = io.read_image(tmp_path / "l.nrrd")
    assert_geometry(metadata, {"spacing": (1.0, 2.0, 3.0), "origin": (4.0, 5.0, 6.0), "direction": DIRECTION})


def test_2d_labels_round_trip(tmp_path):
    labels = random_labels((12, 10))
    geometry = {"spacing": (0.25, 0.5), "origin": (-3.0, 7.0), "direction": np.eye(2)}
    io.write_labels(tmp_path / "l.nii.gz", labels, geometry)
    array, metadata = io.read_image(tmp_path / "l.nii.gz")
    np.testing.assert_array_equal(array, labels)
    assert_geometry(metadata, geometry)


def test_dicom_ct_series_keeps_hounsfield_units_and_geometry(tmp_path):
    hu = np.random.default_rng(1).integers(-1000, 1500, (6, 16, 12)).astype(np.int16)
    write_synthetic_dicom_series(tmp_path / "ct", hu, (2.5, 0.9, 0.8), (30.0, 5.0, -10.0), rescale=(-1024, 1))
    array, metadata = io.read_image(tmp_path / "ct")
    np.testing.assert_array_equal(array, hu)
    assert array.dtype == np.int16
    assert_geometry(metadata, {"spacing": (2.5, 0.9, 0.8), "origin": (30.0, 5.0, -10.0), "direction": np.eye(3)})
    assert metadata["modality"] == "CT" and metadata["is_ct"] is True


def test_dicom_folder_reads_the_largest_series_and_a_file_reads_its_own(tmp_path):
    big = np.full((7, 8, 8), 100, np.int16)
    small = np.full((3, 8, 8), 7, np.int16)
    write_synthetic_dicom_series(tmp_path / "study", big, (2.0, 1.0, 1.0), (0.0, 0.0, 0.0), series_uid="1.2.3.4.5.1001")
    write_synthetic_dicom_series(tmp_path / "study", small, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), modality="MR",
                                 series_uid="1.2.3.4.5.2002")
    array, metadata = io.read_image(tmp_path / "study")
    np.testing.assert_array_equal(array, big)
    assert metadata["modality"] == "CT"
    one_file = sorted((tmp_path / "study").glob("2002_*.dcm"))[0]
    array, metadata = io.read_image(one_file)
    np.testing.assert_array_equal(array, small)
    assert metadata["modality"] == "MR" and metadata["is_ct"] is False


def test_dicom_series_found_in_a_subfolder(tmp_path):
    data = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    write_synthetic_dicom_series(tmp_path / "patient" / "series", data, (3.0, 1.0, 1.0), (0.0, 0.0, 0.0), modality="MR")
    array, _ = io.read_image(tmp_path / "patient")
    np.testing.assert_array_equal(array, data)


def test_labels_as_dicom_series_round_trip(tmp_path):
    labels = random_labels(top=300)
    written = io.write_labels(tmp_path / "labels_dicom", labels, GEOMETRY)
    assert len(written) == labels.shape[0]
    array, metadata = io.read_image(tmp_path / "labels_dicom")
    np.testing.assert_array_equal(array, labels)
    assert_geometry(metadata)


def test_hounsfield_like_nifti_is_flagged_as_ct(tmp_path):
    ct = np.full((4, 6, 6), -1000, np.int16)
    ct[:, 2:4, 2:4] = 300
    sitk.WriteImage(sitk.GetImageFromArray(ct), str(tmp_path / "ct.nii.gz"))
    array, metadata = io.read_image(tmp_path / "ct.nii.gz")
    assert metadata["is_ct"] is True and metadata["modality"] is None
    assert array.min() == -1000  # values stay in HU, nothing rescaled


def test_labels_are_told_from_images_by_note_intent_name_or_flat_content(tmp_path):
    from napari_hrsam.io.samples import DATA

    rng = np.random.default_rng(6)
    noisy = rng.integers(0, 6, (5, 12, 10)).astype(np.uint16)
    written = io.write_labels(tmp_path / "out.nii.gz", noisy)  # the writer's note
    assert io.read_image(written[0])[1]["is_labels"] is True
    for name, array in (("plain.nrrd", noisy), ("liver_mask.nrrd", noisy),
                        ("flat.nrrd", np.kron(rng.integers(0, 9, (5, 3, 2)), np.ones((1, 4, 5))).astype(np.uint8))):
        sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / name))
    labels = {name: io.read_image(tmp_path / name)[1]["is_labels"] for name in ("plain.nrrd", "liver_mask.nrrd", "flat.nrrd")}
    assert labels == {"plain.nrrd": False, "liver_mask.nrrd": True, "flat.nrrd": True}
    assert io.read_image(DATA / "colin27_t1_2mm.nii.gz")[1]["is_labels"] is False  # uint8 MR: an image
    ct = rng.integers(-1000, 1500, (4, 8, 8)).astype(np.int16)
    sitk.WriteImage(sitk.GetImageFromArray(ct), str(tmp_path / "ct_seg.nii.gz"))
    assert io.read_image(tmp_path / "ct_seg.nii.gz")[1]["is_labels"] is False  # negative values


@pytest.mark.skipif(not Path("/usr/share/mricron/templates/aal.nii.gz").is_file(), reason="no mricron atlases")
def test_atlases_with_the_nifti_label_intent_are_labels():
    assert io.read_image("/usr/share/mricron/templates/aal.nii.gz")[1]["is_labels"] is True
    assert io.read_image("/usr/share/mricron/templates/ch2.nii.gz")[1]["is_labels"] is False


def test_planar_images(tmp_path):
    grey = np.random.default_rng(2).integers(0, 4000, (20, 30)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "grey.tif", grey)
    array, metadata = io.read_image(tmp_path / "grey.tif")
    np.testing.assert_array_equal(array, grey)
    assert metadata["spacing"] == (1.0, 1.0) and metadata["rgb"] is False

    from skimage.io import imsave

    rgb = np.random.default_rng(3).integers(0, 255, (20, 30, 3)).astype(np.uint8)
    imsave(tmp_path / "rgb.png", rgb, check_contrast=False)
    array, metadata = io.read_image(tmp_path / "rgb.png")
    np.testing.assert_array_equal(array, rgb)
    assert metadata["rgb"] is True and len(metadata["spacing"]) == 2


def test_shipped_samples_are_readable():
    from napari_hrsam.io.samples import DATA

    brain, metadata = io.read_image(DATA / "colin27_t1_2mm.nii.gz")
    assert brain.ndim == 3 and metadata["spacing"] == (2.0, 2.0, 2.0)
    nuclei, _ = io.read_image(DATA / "nuclei_2d.tif")
    assert nuclei.shape == (512, 256)


def test_reading_bad_inputs_gives_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file"):
        io.read_image(tmp_path / "missing.nii.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No DICOM series"):
        io.read_image(tmp_path / "empty")
    (tmp_path / "broken.nii.gz").write_bytes(b"this is not a NIfTI file")
    with pytest.raises(ValueError, match="Could not read"):
        io.read_image(tmp_path / "broken.nii.gz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="unsupported format"):
        io.read_image(tmp_path / "notes.txt")


def truncated_copy(source, target, fraction=0.5):
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def test_truncated_nifti_is_an_error_not_a_volume_padded_with_zeros(tmp_path):
    from napari_hrsam.io.samples import DATA

    short = truncated_copy(DATA / "colin27_t1_2mm.nii.gz", tmp_path / "head.nii.gz")
    with pytest.raises(ValueError, match=r"head\.nii\.gz' is truncated or corrupt") as err:
        io.read_image(short)
    assert len(str(err.value).splitlines()) == 1
    plain = tmp_path / "whole.nii"
    sitk.WriteImage(sitk.ReadImage(str(DATA / "colin27_t1_2mm.nii.gz")), str(plain))
    with pytest.raises(ValueError, match=r"short\.nii' is truncated or corrupt: its header promises"):
        io.read_image(truncated_copy(plain, tmp_path / "short.nii", 0.9))
    assert io.read_image(plain)[0].shape == (81, 96, 78)  # the whole file still reads


def test_unwritable_label_paths_are_refused_in_one_line_before_writing(tmp_path, unwritable_folder):
    with pytest.raises(PermissionError, match="no permission to write in") as err:
        io.write_labels(unwritable_folder / "labels.nii.gz", random_labels())
    assert "labels.nii.gz" in str(err.value) and len(str(err.value).splitlines()) == 1
    (tmp_path / "file.tif").write_bytes(b"x")
    for path in (tmp_path / "file.tif" / "labels.nii.gz", tmp_path / "file.tif" / "sub" / "labels.nii.gz"):
        with pytest.raises(NotADirectoryError, match="file.tif' is a file, not a folder"):
            io.write_labels(path, random_labels())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.tif", "read-only"]


def test_writing_bad_labels_raises_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="integers"):
        io.write_labels(tmp_path / "a.nii.gz", np.zeros((3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="negative"):
        io.write_labels(tmp_path / "b.nii.gz", -np.ones((3, 4, 5), np.int16))
    with pytest.raises(ValueError, match="Geometry does not fit"):
        io.write_labels(tmp_path / "c.nii.gz", random_labels(), {"spacing": (1.0, 1.0)})
    with pytest.raises(ValueError, match="Cannot write labels"):
        io.write_labels(tmp_path / "d.png", random_labels())
    assert list(tmp_path.iterdir()) == []
