"""An image series: many images annotated one after another, each one's work saved as it goes.

``Series.open(folder_or_paths)`` lists the images (2-D images and volumes in any format
``io.images.read_image`` reads, sorted by name; mixed sizes are fine) and keeps a project folder,
by default ``<folder>/hrsam-project``, holding::

    series.json          the images (paths relative to the project when they lie under its
                         parent), which are done, and the current one
    <image name>.hrsam/  each image's autosave folder (``Session(..., autosave=...)``)

Reopening the same folder resumes: the done flags, the current image, and (through the autosave
folders) every image's labels and objects. Images added to the folder since join in name order.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from napari_hrsam.engine.autosave import FOLDER_SUFFIX, STATE_FILE, replace_file

from .inputs import IMAGE_SUFFIXES, images_in

MANIFEST = "series.json"
PROJECT_NAME = "hrsam-project"


@dataclass(frozen=True)
class SeriesEntry:
    path: Path
    done: bool
    objects: int  # committed objects in its autosave folder (0 before any)


class Series:
    """The images of a series, their progress and their autosave folders."""

    def __init__(self, project: Path, images: list[Path], done: set[int], current: int):
        self.project = project
        self.images = images
        self._done = set(done)
        self.current = current

    @classmethod
    def open(cls, source, project=None, create: bool = True) -> "Series":
        """A series of the images in folder ``source`` (or the list of paths ``source``), kept in
        ``project`` (default ``<folder>/hrsam-project``, for a list next to its first image;
        written only with ``create``). ValueError when there are no images or two share a name."""
        if isinstance(source, (str, os.PathLike)):
            folder = Path(source)
            if not folder.is_dir():
                raise ValueError(f"{folder} is not a folder of images")
            images = images_in(folder)
            if not images:
                raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        else:
            images = [Path(p) for p in source]
            if not images:
                raise ValueError("a series needs at least one image")
            missing = [str(p) for p in images if not p.is_file()]
            if missing:
                raise ValueError(f"no such image: {missing[0]}")
            folder = images[0].parent
        project = Path(project) if project is not None else folder / PROJECT_NAME
        names = [p.name for p in images]
        if len(set(names)) != len(names):
            raise ValueError("two images of the series share a file name; rename one")
        series = cls(project, [p.resolve() for p in images], set(), 0)
        manifest = project / MANIFEST
        if manifest.is_file():
            series._merge(json.loads(manifest.read_text()))
        if create:
            series.save()
        return series

    @property
    def progress(self) -> tuple[int, int]:
        """(images done, images in the series)."""
        return len(self._done), len(self.images)

    def autosave_folder(self, index: int) -> Path:
        return self.project / f"{self.images[index].name}{FOLDER_SUFFIX}"

    def is_done(self, index: int) -> bool:
        return index in self._done

    def set_done(self, index: int, done: bool = True) -> None:
        self._check(index)
        (self._done.add if done else self._done.discard)(index)
        self.save()

    def go(self, index: int) -> Path:
        """Make image ``index`` the current one; its path."""
        self._check(index)
        self.current = index
        self.save()
        return self.images[index]

    def entries(self) -> list[SeriesEntry]:
        out = []
        for index, path in enumerate(self.images):
            state = self.autosave_folder(index) / STATE_FILE
            objects = len(json.loads(state.read_text()).get("objects", {})) if state.is_file() else 0
            out.append(SeriesEntry(path, index in self._done, objects))
        return out

    def save(self) -> None:
        """Write series.json (through a temporary file and a rename: never half a manifest)."""
        self.project.mkdir(parents=True, exist_ok=True)
        data = {"format": 1, "images": [self._stored(p) for p in self.images],
                "done": sorted(self._done), "current": self.current}
        text = json.dumps(data, indent=1)
        replace_file(self.project / MANIFEST, lambda tmp: Path(tmp).write_text(text))

    def _stored(self, path: Path) -> str:
        try:
            return os.path.relpath(path, self.project)
        except ValueError:  # another drive
            return str(path)

    def _merge(self, data: dict) -> None:
        """Done flags and the current image from a saved manifest, by image path."""
        saved = [(self.project / p).resolve() for p in data.get("images", [])]
        position = {path: index for index, path in enumerate(self.images)}
        self._done = {position[saved[i]] for i in data.get("done", []) if i < len(saved) and saved[i] in position}
        current = data.get("current", 0)
        if 0 <= current < len(saved) and saved[current] in position:
            self.current = position[saved[current]]

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self.images):
            raise ValueError(f"no image {index}: the series has {len(self.images)}")
