"""Rebuild the shipped sample images from their sources (run once; the outputs are committed).

    python dev/make_samples.py [--nuclei DIR] [--templates DIR]

A developer script, not part of the installed package. Needs img2d.tif and mask2d.tif from the
stardist 0.9.2 wheel (`stardist/data/images/`; --nuclei, default /work/data/nuclei) and the Debian
package mricron-data (ch2.nii.gz, ch2bet.nii.gz; --templates, default
/usr/share/mricron/templates). See napari_hrsam/data/README.md.
"""
import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import tifffile
from skimage.transform import downscale_local_mean

HERE = Path(__file__).resolve().parents[1] / "napari_hrsam" / "data"  # where the samples live


def make_nuclei(folder: Path) -> None:
    # Only the left half (columns 0..255) of the DSB-2018 image: the right half is validation data.
    image = tifffile.imread(folder / "img2d.tif")[:, :256]
    tifffile.imwrite(HERE / "nuclei_2d.tif", image, compression="zlib")
    # Its instance labels (same columns) are the ground truth of `hrsam demo`.
    mask = tifffile.imread(folder / "mask2d.tif")[:, :256]
    tifffile.imwrite(HERE / "nuclei_2d_mask.tif", mask, compression="zlib")


def make_brain(templates: Path, factor: int = 2, margin: int = 6) -> None:
    head = sitk.ReadImage(str(templates / "ch2.nii.gz"))
    brain = sitk.GetArrayFromImage(sitk.ReadImage(str(templates / "ch2bet.nii.gz"))) > 0
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
    parser = argparse.ArgumentParser(description="Rebuild napari_hrsam/data's sample images.")
    parser.add_argument("--nuclei", type=Path, default=Path("/work/data/nuclei"),
                        help="folder with stardist's img2d.tif and mask2d.tif")
    parser.add_argument("--templates", type=Path, default=Path("/usr/share/mricron/templates"),
                        help="folder with mricron-data's ch2.nii.gz and ch2bet.nii.gz")
    args = parser.parse_args()
    make_nuclei(args.nuclei)
    make_brain(args.templates)
    for path in sorted(HERE.glob("*.*")):
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
