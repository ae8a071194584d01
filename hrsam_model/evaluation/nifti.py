"""Read the voxels of a NIfTI-1 file (.nii or .nii.gz) with numpy alone.

The validation and training loaders read the brain atlas with SimpleITK. This reader is their
fallback where SimpleITK is not installed (the lent GPU machines have no package index to install
it from), so click training runs there on the same data. It returns what
`sitk.GetArrayFromImage(sitk.ReadImage(path))` returns: the (z, y, x) array on the file's voxel
grid, no reorientation, scaled by scl_slope/scl_inter when the header asks for it.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4",
           1024: "i8", 1280: "u8"}


def read_nifti_voxels(path: str | Path) -> np.ndarray:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: not a readable NIfTI file ({error})") from None
    if len(data) < 352:
        raise ValueError(f"{path}: too short for a NIfTI-1 header ({len(data)} bytes)")
    endian = next((e for e in "<>" if struct.unpack(e + "i", data[:4])[0] == 348), None)
    if endian is None or data[344:347] not in (b"n+1", b"ni1"):
        raise ValueError(f"{path}: not a NIfTI-1 file (no 348-byte header with magic n+1)")
    dims = struct.unpack(endian + "8h", data[40:56])
    code = struct.unpack(endian + "h", data[70:72])[0]
    offset, slope, inter = struct.unpack(endian + "3f", data[108:120])
    if code not in _DTYPES:
        raise ValueError(f"{path}: NIfTI datatype {code} is not supported")
    rank = dims[0]
    shape = tuple(int(n) for n in dims[1:rank + 1])
    while len(shape) > 3 and shape[-1] == 1:  # trailing singleton time/component axes
        shape = shape[:-1]
    dtype = np.dtype(endian + _DTYPES[code])
    count = int(np.prod(shape))
    start = int(offset)
    if start + count * dtype.itemsize > len(data):
        raise ValueError(f"{path}: the header promises {shape} voxels but the file is shorter")
    voxels = np.frombuffer(data, dtype, count, start).reshape(shape[::-1])  # x varies fastest on disk
    voxels = voxels.astype(dtype.newbyteorder("="))
    if slope not in (0.0, 1.0) or inter != 0.0:
        voxels = voxels * np.float32(slope if slope else 1.0) + np.float32(inter)
    return voxels
