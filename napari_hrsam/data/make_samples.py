"""Rebuild the shipped sample images from their sources (run once; the outputs are committed).

    python napari_hrsam/data/make_samples.py

Needs /work/data/nuclei/img2d.tif (from the stardist 0.9.2 wheel) and the Debian package
mricron-data (/usr/share/mricron/templates/ch2.nii.gz, ch2bet.nii.gz). See README.md here.
"""
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import tifffile
from skimage.transform import downscale_local_mean

HERE = Path(__file__).resolve().parent
NUCLEI = Path("/work/data/nuclei/img2d.tif")
NUCLEI_MASK = Path("/work/data/nuclei/mask2d.tif")
COLIN = Path("/usr/share/mricron/templates/ch2.nii.gz")
COLIN_BRAIN = Path("/usr/share/mricron/templates/ch2bet.nii.gz")


def make_nuclei() -> None:
    # Only the left half (columns 0..255) of the DSB-2018 image: the right half is validation data.
    image = tifffile.imread(NUCLEI)[:, :256]
    tifffile.imwrite(HERE / "nuclei_2d.tif", image, compression="zlib")
    # Its instance labels (same columns) are the ground truth of `hrsam demo`.
    mask = tifffile.imread(NUCLEI_MASK)[:, :256]
    tifffile.imwrite(HERE / "nuclei_2d_mask.tif", mask, compression="zlib")


def make_brain(factor: int = 2, margin: int = 6) -> None:
    head = sitk.ReadImage(str(COLIN))
    brain = sitk.GetArrayFromImage(sitk.ReadImage(str(COLIN_BRAIN))) > 0
    # Crop to the brain plus a margin, so the sample stays small and the head stays whole-ish.
    box = [(max(int(i.min()) - margin, 0), int(i.max()) + 1 + margin) for i in np.nonzero(brain)]
    head = head[tuple(slice(lo, hi) for lo, hi in reversed(box))]  # SimpleITK slices in (x, y, z)
    array = sitk.GetArrayFromImage(head).astype(np.float32)
    small = downscale_local_mean(array, (factor,) * 3)
    small = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    # The mean of a factor^3 block sits at the block centre: shift the origin by half a block.
    out = sitk.GetImageFromArray(small)
    out.SetSpacing(tuple(s * factor for s in head.GetSpacing()))
    out.SetOrigin(head.TransformContinuousIndexToPhysicalPoint([(factor - 1) / 2] * 3))
    out.SetDirection(head.GetDirection())
    # Flip rows and slices so napari shows the front of the head at the top of an axial slice
    # and the top of the head at the top of coronal/sagittal views; sitk.Flip updates origin
    # and direction, so every voxel keeps its physical position.
    out = sitk.Flip(out, [False, True, True])
    sitk.WriteImage(out, str(HERE / "colin27_t1_2mm.nii.gz"), True)


if __name__ == "__main__":
    make_nuclei()
    make_brain()
    for path in sorted(HERE.glob("*.*")):
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
