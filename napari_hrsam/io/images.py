"""Read medical and microscopy images, write label volumes, keep the physical geometry.

Everything here uses numpy axis order: a volume is ``(z, y, x)`` and ``spacing``, ``origin``
and ``direction`` are given in that same order, so ``scale=spacing`` and ``translate=origin``
place a napari layer in physical space. SimpleITK keeps ``(x, y, z)`` order; the two helpers
``_geometry_from_itk`` and ``_apply_geometry`` are the only places that reverse axes.

The geometry travels in a plain ``dict`` (the napari layer's ``metadata``)::

    {"spacing": (sz, sy, sx), "origin": (oz, oy, ox), "direction": ((..), (..), (..)),
     "modality": "CT" | "MR" | ... | None, "is_ct": bool, "rgb": bool, "source": str,
     "is_labels": bool}  # labels rather than an image: napari_hrsam.io.label_files says which

``direction`` maps array axes to physical axes: physical point = origin + direction @ (spacing * index).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .label_files import LABELS_NOTE, is_labels

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")
DICOM_SUFFIXES = (".dcm",)
PLANAR_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
LABEL_SUFFIXES = VOLUME_SUFFIXES
SOFT_TISSUE_WINDOW = (-160.0, 240.0)  # CT window level 40 HU, width 400 HU

_MODALITY_TAG = "0008|0060"
_DESCRIPTION_TAG = "0008|103e"


def path_suffix(path) -> str:
    """The lower-case suffix that names the format, ``.nii.gz`` counted as one."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def default_metadata(ndim: int, modality: str | None = None, rgb: bool = False, source: str = "") -> dict:
    """Unit spacing, zero origin, identity direction for ``ndim`` spatial axes."""
    return {
        "spacing": (1.0,) * ndim,
        "origin": (0.0,) * ndim,
        "direction": tuple(tuple(float(v) for v in row) for row in np.eye(ndim)),
        "modality": modality,
        "is_ct": modality == "CT",
        "rgb": rgb,
        "source": source,
        "is_labels": False,
    }


# ----------------------------------------------------------------------------------- reading


def read_image(path) -> tuple[np.ndarray, dict]:
    """Read an image file or a DICOM series folder into ``(array, metadata)``.

    Volumes (.nii, .nii.gz, .nrrd, .mha, .mhd), DICOM folders (the series with the most files
    is read; a single .dcm file reads the series it belongs to), planar images (.tif, .png,
    .jpg) and OME-Zarr images (full resolution, lazily: a dask array; ``io.ngff``). Intensities are returned as stored after the file's own rescale (so CT stays in HU).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: '{path}'")
    suffix = path_suffix(path)
    if path.is_dir():
        from .ngff import is_ngff, read_ngff_image

        return read_ngff_image(path) if is_ngff(path) else _read_dicom_folder(path)
    if suffix in DICOM_SUFFIXES:
        return _read_dicom_folder(path.parent, containing=path)
    if suffix in VOLUME_SUFFIXES:
        return _read_with_sitk(path)
    if suffix in PLANAR_SUFFIXES:
        return _read_planar(path)
    raise ValueError(
        f"Cannot read '{path.name}': unsupported format '{suffix}'. "
        f"Use one of {', '.join(VOLUME_SUFFIXES + PLANAR_SUFFIXES + DICOM_SUFFIXES)} or a DICOM folder."
    )


def _read_with_sitk(path: Path) -> tuple[np.ndarray, dict]:
    import SimpleITK as sitk

    if path_suffix(path) in (".nii", ".nii.gz"):
        check_nifti_complete(path)  # SimpleITK fills a short NIfTI with zeros and says nothing
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise ValueError(f"Could not read '{path}' as a medical image; is the file complete? ({_first_line(err)})") from None
    modality = image.GetMetaData(_MODALITY_TAG).strip() if image.HasMetaDataKey(_MODALITY_TAG) else None
    return _to_numpy(image, modality or None, str(path))


def check_nifti_complete(path) -> None:
    """Raise ``ValueError("'<path>' is truncated or corrupt: ...")`` when a .nii/.nii.gz file
    holds fewer bytes than its header promises, or its gzip stream is cut short or damaged.

    SimpleITK reads such files without a word and fills the missing voxels with zeros. Only
    single-file NIfTI-1/NIfTI-2 headers are sized; a file that is neither (or a .nii.gz that is
    not gzip at all) is left to SimpleITK. A .nii.gz is decompressed once more for this check
    (streamed, in 4 MiB pieces).
    """
    import gzip

    path = Path(path)
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        if gzipped:
            with gzip.open(path, "rb") as f:
                header = f.read(540)
                size = len(header)
                while chunk := f.read(1 << 22):
                    size += len(chunk)
        else:
            with open(path, "rb") as f:
                header = f.read(540)
            size = path.stat().st_size
    except (OSError, EOFError) as err:  # gzip cut short (EOFError) or damaged (BadGzipFile)
        raise ValueError(f"'{path}' is truncated or corrupt: {_first_line(err)}") from None
    expected = _nifti_bytes(header)
    if expected is not None and size < expected:
        raise ValueError(f"'{path}' is truncated or corrupt: its header promises {expected} bytes, "
                         f"the file holds {size}")


def _nifti_bytes(header: bytes) -> int | None:
    """Header plus voxel bytes a single-file NIfTI-1 or NIfTI-2 header promises; else None."""
    import struct

    for endian in "<>":
        if len(header) >= 352 and struct.unpack(endian + "i", header[:4])[0] == 348 and header[344:347] == b"n+1":
            dims = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = struct.unpack(endian + "f", header[108:112])[0]
        elif len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540 and header[4:7] == b"n+2":
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
        else:
            continue
        extent = dims[1:dims[0] + 1] if 1 <= dims[0] <= 7 else ()
        if not extent or min(extent) < 0 or bitpix <= 0:
            return None
        return int(offset) + int(np.prod(extent, dtype=np.int64)) * bitpix // 8
    return None


def _read_dicom_folder(folder: Path, containing: Path | None = None) -> tuple[np.ndarray, dict]:
    import SimpleITK as sitk

    series = _find_dicom_series(folder, recursive=containing is None)
    if containing is not None:
        series = [files for files in series if any(Path(f).samefile(containing) for f in files)]
    if not series:
        raise ValueError(
            f"No DICOM series found in '{folder}'. Pass a folder that holds the .dcm files of one series."
        )
    files = max(series, key=len)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise ValueError(f"Could not read the DICOM series in '{folder}' ({_first_line(err)})") from None
    modality, description = _dicom_tags(files[0])
    return _to_numpy(image, modality, str(folder), notes=(description,))


def _find_dicom_series(folder: Path, recursive: bool) -> list[list[str]]:
    """File lists of every DICOM series in ``folder`` (and its subfolders when ``recursive``)."""
    import SimpleITK as sitk

    folders = [str(folder)]
    if recursive:
        folders += [root for root, _, _ in os.walk(folder) if root != str(folder)]
    series = []
    for directory in folders:
        for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(directory):
            series.append(list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(directory, uid)))
    return series


def _dicom_tags(file_name: str) -> tuple[str | None, str]:
    """(modality or None, series description or "") of one DICOM file."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(file_name)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None, ""

    def tag(key):
        return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""

    return tag(_MODALITY_TAG) or None, tag(_DESCRIPTION_TAG)


def _read_planar(path: Path) -> tuple[np.ndarray, dict]:
    try:
        if path_suffix(path) in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(str(path))
        else:
            from skimage.io import imread

            array = imread(str(path))
    except Exception as err:  # each backend has its own error types
        raise ValueError(f"Could not read '{path}' as an image ({_first_line(err)})") from None
    array = np.asarray(array)
    rgb = array.ndim == 3 and array.shape[-1] in (3, 4) and path_suffix(path) not in (".tif", ".tiff")
    rgb = rgb or (array.ndim == 3 and array.shape[-1] in (3, 4) and array.shape[0] > 4)
    spatial = array.ndim - 1 if rgb else array.ndim
    return array, default_metadata(spatial, rgb=rgb, source=str(path))


def _to_numpy(image, modality: str | None, source: str, notes: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(image)
    if array.dtype == np.float64:
        array = array.astype(np.float32)  # half the memory; HU and MR values need no more
    elif array.dtype in (np.int32, np.int64) and array.size and _fits(array, np.int16):
        array = array.astype(np.int16)  # GDCM widens rescaled CT to int32; HU fit in 16 bits
    rgb = image.GetNumberOfComponentsPerPixel() in (3, 4)
    if image.GetNumberOfComponentsPerPixel() > 1 and not rgb:
        raise ValueError(
            f"'{source}' has {image.GetNumberOfComponentsPerPixel()} components per voxel; "
            "only scalar and RGB(A) images are supported."
        )
    metadata = _geometry_from_itk(image)
    metadata.update(modality=modality, rgb=rgb, source=source)
    metadata["is_ct"] = modality == "CT" or (modality is None and not rgb and _looks_like_hounsfield(array))

    def header(key):
        return image.GetMetaData(key) if image.HasMetaDataKey(key) else ""

    notes = (*notes, header("ITK_FileNotes"), header("descrip"))
    metadata["is_labels"] = not rgb and is_labels(array, Path(source).name, notes, header("intent_code"))
    return array, metadata


def _fits(array: np.ndarray, dtype) -> bool:
    info = np.iinfo(dtype)
    return info.min <= array.min() and array.max() <= info.max


def _looks_like_hounsfield(array: np.ndarray) -> bool:
    """Air at about -1000 HU and tissue above 0: a CT volume saved without its modality tag."""
    if array.ndim < 3 or not (np.issubdtype(array.dtype, np.signedinteger) or np.issubdtype(array.dtype, np.floating)):
        return False
    low, high = float(array.min()), float(array.max())
    return low <= -900.0 and high >= 100.0


def _geometry_from_itk(image) -> dict:
    ndim = image.GetDimension()
    direction_xyz = np.asarray(image.GetDirection(), dtype=float).reshape(ndim, ndim)
    return {
        "spacing": tuple(float(v) for v in image.GetSpacing()[::-1]),
        "origin": tuple(float(v) for v in image.GetOrigin()[::-1]),
        "direction": tuple(tuple(float(v) for v in row) for row in direction_xyz[::-1, ::-1]),
    }


def _first_line(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


# ----------------------------------------------------------------------------------- writing


def geometry_for(ndim: int, metadata: dict | None = None, scale=None, translate=None) -> dict:
    """Spacing/origin/direction for ``ndim`` axes from a layer's metadata, scale and translate.

    The layer's ``scale`` and ``translate`` win over the metadata (the user may have changed
    them); the direction only lives in the metadata. A direction for the wrong number of axes
    is an error rather than a silent identity, so exported geometry is never made up.
    """
    metadata = metadata or {}
    spacing = scale if scale is not None else metadata.get("spacing", (1.0,) * ndim)
    origin = translate if translate is not None else metadata.get("origin", (0.0,) * ndim)
    direction = metadata.get("direction")
    direction = np.eye(ndim) if direction is None else np.asarray(direction, dtype=float)
    spacing, origin = tuple(float(v) for v in spacing), tuple(float(v) for v in origin)
    if len(spacing) != ndim or len(origin) != ndim or direction.shape != (ndim, ndim):
        raise ValueError(
            f"Geometry does not fit a {ndim}-D labels array: spacing {spacing}, origin {origin}, "
            f"direction of shape {direction.shape}. Give spacing/origin with {ndim} values."
        )
    if min(spacing) <= 0:
        raise ValueError(f"Spacing must be positive, got {spacing}.")
    return {"spacing": spacing, "origin": origin, "direction": direction}


def check_writable(path) -> None:
    """Raise a one-line error now when ``path`` cannot be written, so no work is done for nothing.

    NotADirectoryError: a folder on the way is a file. PermissionError: the file is read-only,
    or the nearest existing folder (where missing folders would be made) takes no new files.
    Creates nothing that stays: the folder is probed with a temporary file, removed at once.
    """
    import tempfile

    path = Path(path).absolute()
    folder = path if path.is_dir() else path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"Cannot write '{path}': '{folder}' is a file, not a folder.")
    if path.is_file() and not os.access(path, os.W_OK):
        raise PermissionError(f"Cannot write '{path}': the file is read-only.")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise PermissionError(f"Cannot write '{path}': no permission to write in '{folder}' "
                              f"({err.strerror or type(err).__name__}).") from None


def write_labels(path, labels, metadata: dict | None = None, scale=None, translate=None) -> list[str]:
    """Write a labels array as NIfTI, NRRD or MetaImage with its geometry; returns the paths written.

    A path without a file suffix (a folder) writes a DICOM series, one file per slice. A path
    that cannot be written is refused (``check_writable``) before anything else is done.
    """
    path = Path(path)
    check_writable(path)
    labels = _label_array(labels)
    geometry = geometry_for(labels.ndim, metadata, scale, translate)
    suffix = path_suffix(path)
    if suffix == "" or path.is_dir():
        return write_dicom_series(path, labels, geometry, modality="OT", description=LABELS_NOTE)
    if suffix not in LABEL_SUFFIXES:
        raise ValueError(f"Cannot write labels as '{suffix}'. Use one of {', '.join(LABEL_SUFFIXES)} or a folder (DICOM).")
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(labels)
    _apply_geometry(image, geometry)
    image.SetMetaData("ITK_FileNotes", LABELS_NOTE)  # opens as labels again (label_files)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)
    written = [str(path)]
    if suffix == ".mhd":
        written.append(str(path.with_suffix(".zraw")))
    return written


def _label_array(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3, 4):
        raise ValueError(f"Labels must be 2-D, 3-D or 4-D, got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise ValueError(f"Labels must hold integers, got dtype {labels.dtype}.")
    if labels.size and labels.min() < 0:
        raise ValueError("Labels must not be negative.")
    top = int(labels.max()) if labels.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return labels.astype(dtype, copy=False)
    raise ValueError(f"Label id {top} is too large to store; ids must be below 2**32.")


def _apply_geometry(image, geometry: dict) -> None:
    image.SetSpacing(tuple(reversed(geometry["spacing"])))
    image.SetOrigin(tuple(reversed(geometry["origin"])))
    image.SetDirection(tuple(np.asarray(geometry["direction"])[::-1, ::-1].ravel()))


def write_dicom_series(folder, array, metadata: dict | None = None, modality: str = "OT", description: str = "") -> list[str]:
    """Write a 2-D or 3-D integer array as a DICOM series (one file per z slice) with its geometry."""
    import time

    import SimpleITK as sitk

    folder = Path(folder)
    check_writable(folder)
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[None]
        metadata = _lift_to_3d(metadata)
    if array.ndim != 3:
        raise ValueError(f"A DICOM series needs a 2-D or 3-D array, got shape {array.shape}.")
    if array.dtype not in (np.uint8, np.uint16, np.int16):
        if array.min() < np.iinfo(np.int16).min or array.max() > np.iinfo(np.uint16).max:
            raise ValueError("Values must fit in 16 bits to be written as DICOM.")
        array = array.astype(np.uint16 if array.min() >= 0 else np.int16)
    geometry = geometry_for(3, metadata)
    volume = sitk.GetImageFromArray(array)
    _apply_geometry(volume, geometry)
    folder.mkdir(parents=True, exist_ok=True)

    uid_root = "1.2.826.0.1.3680043.2.1125." + time.strftime("%Y%m%d%H%M%S") + f".{os.getpid()}"
    direction_xyz = volume.GetDirection()
    orientation = "\\".join(f"{v:.10g}" for v in (*direction_xyz[0:7:3], *direction_xyz[1:8:3]))
    shared = {
        "0008|0008": "DERIVED\\SECONDARY",
        "0008|0060": modality,
        "0008|103e": description,
        "0010|0010": "anonymous",
        "0020|000d": uid_root + ".1",
        "0020|000e": uid_root + ".2",
        "0020|0037": orientation,
        "0028|0030": f"{geometry['spacing'][1]:.10g}\\{geometry['spacing'][2]:.10g}",
        "0018|0050": f"{geometry['spacing'][0]:.10g}",
    }
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()  # keep our series/study UIDs instead of fresh ones per file
    written = []
    for k in range(array.shape[0]):
        slice_image = volume[:, :, k]
        for tag, value in shared.items():
            slice_image.SetMetaData(tag, value)
        position = volume.TransformIndexToPhysicalPoint((0, 0, k))
        slice_image.SetMetaData("0020|0032", "\\".join(f"{v:.10g}" for v in position))
        slice_image.SetMetaData("0020|0013", str(k + 1))
        slice_image.SetMetaData("0008|0018", f"{uid_root}.3.{k + 1}")
        file_name = folder / f"slice_{k:04d}.dcm"
        writer.SetFileName(str(file_name))
        writer.Execute(slice_image)
        written.append(str(file_name))
    return written


def _lift_to_3d(metadata: dict | None) -> dict:
    """2-D geometry plus a unit z axis, so a single slice can be written as a series."""
    geometry = geometry_for(2, metadata)
    direction = np.eye(3)
    direction[1:, 1:] = geometry["direction"]
    return {
        "spacing": (1.0, *geometry["spacing"]),
        "origin": (0.0, *geometry["origin"]),
        "direction": direction,
    }
