"""Tiny stand-ins for the evaluation datasets' files (nuclei, E. coli, brain), shared by the
evaluation and CLI tests."""
from pathlib import Path

import numpy as np
import tifffile


def write_fake_data(root: Path) -> None:
    """Tiny stand-ins for the real files; every pixel's value says which split it belongs to."""
    (root / "nuclei").mkdir(parents=True)
    columns = np.broadcast_to(np.arange(512, dtype=np.uint16), (512, 512))
    tifffile.imwrite(root / "nuclei" / "img2d.tif", np.ascontiguousarray(columns))
    labels = np.zeros((512, 512), np.uint16)
    labels[100:120, 100:120] = 1  # left
    labels[200:220, 300:330] = 2  # right
    labels[300:320, 240:280] = 3  # straddles; centroid at column 259.5 -> validation
    labels[400:420, 240:262] = 4  # straddles; centroid at column 250.5 -> train
    labels[5:8, 5:8] = 5  # too small: dropped
    tifffile.imwrite(root / "nuclei" / "mask2d.tif", labels)

    (root / "ecoli").mkdir()
    frames = np.repeat(np.arange(20, dtype=np.uint16)[:, None, None], 64, axis=1).repeat(64, axis=2)
    tifffile.imwrite(root / "ecoli" / "trpL_150310-11_img.tif", frames)
    masks = np.zeros((20, 64, 64), np.uint16)
    masks[:, 10:20, 10:30] = 1
    tifffile.imwrite(root / "ecoli" / "trpL_150310-11_mask.tif", masks)

    import SimpleITK as sitk

    (root / "mricron").mkdir()
    shape = (40, 40, 181)  # (z, y, x); the midline is x = 90
    x = np.arange(181)[None, None, :]
    t1 = np.broadcast_to(np.where(x < 90, 80, 180), shape).astype(np.uint8)
    brain = np.zeros(shape, np.uint8)
    brain[5:35, 5:35, 30:150] = 1
    atlas = np.zeros(shape, np.uint8)
    for value, x0 in ((71, 70), (72, 95)):  # caudate L / R
        atlas[10:30, 10:30, x0 : x0 + 15] = value
    names = ["37 Hippocampus_L", "38 Hippocampus_R", "71 Caudate_L", "72 Caudate_R", "73 Putamen_L",
             "74 Putamen_R", "75 Pallidum_L", "76 Pallidum_R", "77 Thalamus_L", "78 Thalamus_R"]
    (root / "mricron" / "aal.nii.txt").write_text("\n".join(f"{n} 0" for n in names) + "\n")
    for name, volume in (("ch2", t1 * (brain > 0)), ("ch2bet", t1 * brain), ("aal", atlas)):
        sitk.WriteImage(sitk.GetImageFromArray(volume), str(root / "mricron" / f"{name}.nii.gz"))
