"""Which image files a command line or a series names: files, folders of images, globs."""
from __future__ import annotations

import glob
from pathlib import Path

from .images import PLANAR_SUFFIXES, VOLUME_SUFFIXES, path_suffix

IMAGE_SUFFIXES = PLANAR_SUFFIXES + VOLUME_SUFFIXES
GLOB_CHARACTERS = "*?["


def is_glob(item) -> bool:
    return any(ch in str(item) for ch in GLOB_CHARACTERS)


def images_in(folder) -> list[Path]:
    """The image files of ``folder`` (by suffix; hidden files left out), sorted by name."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and path_suffix(p) in IMAGE_SUFFIXES)


def expand_inputs(items) -> list[Path]:
    """Files as given, folders as their images (a folder without any: itself, a DICOM folder),
    globs as the image files they match. FileNotFoundError for a missing path or an empty glob."""
    found = []
    for item in items:
        if is_glob(item):
            matches = sorted(Path(p) for p in glob.glob(str(item)) if path_suffix(p) in IMAGE_SUFFIXES)
            if not matches:
                raise FileNotFoundError(f"No image files match '{item}'")
            found += matches
            continue
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"No such file or folder: '{path}'")
        found += (images_in(path) or [path]) if path.is_dir() else [path]
    return found
