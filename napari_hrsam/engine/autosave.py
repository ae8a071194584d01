"""Autosave: a session's labels and objects on disk after every change to them, crash-safe.

A folder holds one image's work::

    DIR/labels.zarr      the label array (zarr, chunks of CHUNK_SIDE px per plane; only the chunks a
                         change touched are rewritten)
    DIR/session.json     format, the image's fingerprint, the committed objects with their prompts,
                         the session's settings, a save counter
    DIR/journal.npz      only while a save is being applied (see below)

Crash safety is a redo journal. A save first writes everything it will change (the touched
chunks' new contents and the new session.json) into ``journal.npz.tmp``, flushes it to disk and
renames it to ``journal.npz``: that rename is the moment the save happened. Then it writes the
chunks into the zarr array and session.json (itself via a temporary file and a rename), and removes
the journal. Opening the folder replays a journal it finds (the process died while applying it)
and drops a ``.tmp`` one (it died before the save happened). So a process killed at any moment
resumes with the state after its last completed save: never a torn chunk, never half an object.

A folder made for another image (another shape, dtype or pixel fingerprint) is refused, never
overwritten; files other than the three names above are never touched.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

FORMAT = 1
STATE_FILE = "session.json"
LABELS_DIR = "labels.zarr"
JOURNAL = "journal.npz"
FOLDER_SUFFIX = ".hrsam"  # <image file>.hrsam: the widget's default folder, a series' per-image folders
CHUNK_SIDE = 512
SAMPLE_PLANES = 16
SAMPLE_SIDE = 256


def image_fingerprint(image) -> dict:
    """Shape, dtype and a hash of an evenly strided sample of the pixels (up to SAMPLE_PLANES
    planes along the first axis, SAMPLE_SIDE^2 pixels each): cheap on a huge lazy volume, and a
    different image, or the same one edited, almost surely differs."""
    shape = tuple(int(n) for n in image.shape)
    index = []
    for axis, n in enumerate(shape):
        wanted = SAMPLE_PLANES if axis == 0 and len(shape) > 2 else SAMPLE_SIDE
        index.append(slice(None, None, max(1, n // wanted)))
    sample = np.ascontiguousarray(np.asarray(image[tuple(index)]))
    digest = hashlib.blake2b(sample.tobytes(), digest_size=16).hexdigest()
    return {"shape": list(shape), "dtype": str(np.dtype(image.dtype)), "sample": digest}


def chunk_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One plane deep on leading axes, CHUNK_SIDE px on the last two."""
    return tuple(1 for _ in shape[:-2]) + tuple(min(n, CHUNK_SIDE) for n in shape[-2:])


class Autosave:
    """The autosave folder of one session. ``open`` it, then ``save`` after each change."""

    def __init__(self, folder: Path, array, fingerprint: dict, saves: int):
        self.folder = folder
        self._array = array
        self._fingerprint = fingerprint
        self._saves = saves

    @classmethod
    def open(cls, folder, fingerprint: dict, labels) -> tuple["Autosave", dict | None]:
        """(autosave, the saved state or None). A folder with a saved session for this image
        resumes it: the state is {"labels": array, "objects": {id: record}, "settings": {...}}
        after replaying an interrupted save. A new folder (or one whose first save never
        finished) is set up with ``labels`` as they are. ValueError for another image's folder;
        OSError when the folder cannot be written."""
        folder = Path(folder)
        state_file = folder / STATE_FILE
        (folder / (JOURNAL + ".tmp")).unlink(missing_ok=True)  # a save that never happened
        if state_file.is_file() or (folder / JOURNAL).is_file():
            journal = folder / JOURNAL
            try:
                state = _read_journal_state(journal) if journal.is_file() else json.loads(state_file.read_text())
            except (ValueError, KeyError, OSError) as err:
                raise ValueError(f"{folder}: the autosave is damaged ({type(err).__name__}: {err}); "
                                 "move the folder away or choose another") from None
            _check_same_image(folder, state, fingerprint)
            autosave = cls(folder, _open_zarr(folder / LABELS_DIR, "r+"), fingerprint, int(state.get("saves", 0)))
            if journal.is_file():
                autosave._apply_journal()
            state = json.loads(state_file.read_text())
            objects = {int(k): v for k, v in state["objects"].items()}
            return autosave, {"labels": np.asarray(autosave._array[...]), "objects": objects,
                              "settings": state.get("settings", {})}
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / (LABELS_DIR + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(folder / LABELS_DIR, ignore_errors=True)  # a first save that never finished
        _create_zarr(staging, np.asarray(labels[...]))
        os.replace(staging, folder / LABELS_DIR)
        autosave = cls(folder, _open_zarr(folder / LABELS_DIR, "r+"), fingerprint, 0)
        state = autosave._state_bytes({}, {})
        replace_file(state_file, lambda tmp: Path(tmp).write_bytes(state))
        return autosave, None

    def save(self, labels, regions, objects: dict, settings: dict) -> None:
        """Write the chunks of ``labels`` that ``regions`` (index tuples into labels) touch, the
        objects and the settings; returns when the save is on disk (see the module's journal)."""
        chunks = self._chunks_of(regions)
        self._saves += 1
        arrays = {f"chunk{i}": np.asarray(labels[index]) for i, index in enumerate(chunks)}
        header = {"chunks": [[[s.start, s.stop] for s in index] for index in chunks],
                  "state": json.loads(self._state_bytes(objects, settings))}
        tmp = self.folder / (JOURNAL + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / JOURNAL)  # the save happened
        _fsync_folder(self.folder)
        self._apply_journal()

    def _apply_journal(self) -> None:
        journal = self.folder / JOURNAL
        with np.load(journal) as data:
            header = json.loads(bytes(data["header"]).decode())
            for i, bounds in enumerate(header["chunks"]):
                self._array[tuple(slice(a, b) for a, b in bounds)] = data[f"chunk{i}"]
        state = json.dumps(header["state"]).encode()
        replace_file(self.folder / STATE_FILE, lambda tmp: Path(tmp).write_bytes(state))
        journal.unlink()

    def _chunks_of(self, regions) -> list[tuple[slice, ...]]:
        shape, size = self._array.shape, chunk_shape(self._array.shape)
        found = set()
        for index in regions:
            ranges = []
            for axis, item in enumerate(index):
                if isinstance(item, slice):
                    start, stop, _ = item.indices(shape[axis])
                else:
                    start = stop = int(item)
                    stop += 1
                ranges.append(range(start // size[axis], max(stop - 1, start) // size[axis] + 1))
            ranges += [range(shape[axis] // size[axis] + 1) for axis in range(len(index), len(shape))]
            for picks in np.ndindex(*[len(r) for r in ranges]):
                found.add(tuple(r[i] for r, i in zip(ranges, picks)))
        return [tuple(slice(c * s, min((c + 1) * s, n)) for c, s, n in zip(chunk, size, shape))
                for chunk in sorted(found)]

    def _state_bytes(self, objects: dict, settings: dict) -> bytes:
        return json.dumps({"format": FORMAT, "image": self._fingerprint, "saves": self._saves,
                           "objects": {str(k): v for k, v in objects.items()},
                           "settings": settings}).encode()


def _check_same_image(folder: Path, state: dict, fingerprint: dict) -> None:
    if state.get("format") != FORMAT:
        raise ValueError(f"{folder} holds an autosave of format {state.get('format')!r}, not {FORMAT}: "
                         "choose another folder")
    saved = state.get("image", {})
    if saved != fingerprint:
        what = ("shape " + "x".join(map(str, saved.get("shape", []))) if saved.get("shape") != fingerprint["shape"]
                else "other pixels")
        raise ValueError(f"{folder} holds the autosave of another image ({what}); choose another folder "
                         "(nothing was overwritten)")


def _read_journal_state(journal: Path) -> dict:
    with np.load(journal) as data:
        return json.loads(bytes(data["header"]).decode())["state"]


def _zarr():
    import zarr

    return zarr


def _create_zarr(path: Path, labels: np.ndarray) -> None:
    array = _zarr().open_array(str(path), mode="w", shape=labels.shape, chunks=chunk_shape(labels.shape),
                               dtype=labels.dtype, fill_value=0)
    array[...] = labels


def _open_zarr(path: Path, mode: str):
    try:
        return _zarr().open_array(str(path), mode=mode)
    except Exception as err:  # zarr raises several types for a missing or damaged array
        raise ValueError(f"{path} is not a readable label array ({type(err).__name__}: {err}); "
                         "choose another autosave folder") from None


def replace_file(path, write) -> None:
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary file of this process
    beside it (so concurrent writers never share one), which is flushed to disk and renamed over
    ``path``; the temporary file never stays behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
