"""Segment everything in a large input as several units of work: a volume in slabs of
consecutive slices, a huge 2-D image in runs of its tiles (``automatic.slice_windows``), then one
merge per input.

A part runs the engine on its slices or tiles and writes the objects it found, before
de-duplication, to ``OUT/.parts/<name>/<part>.npz`` (through a temporary file and a rename; the
weights' fingerprint and the settings inside). The merge reads every part of its input in order,
de-duplicates and links the objects exactly as one run over the whole input does
(``Session.merge_segment_all``), writes the label image and the marker (``batch.write_output``),
then removes the parts. Rerun, a part already written and a finished input are not computed again."""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_hrsam import io
from napari_hrsam.engine.autosave import replace_file

from .batch import AutoUnit, CountingPredictor, finished, label_image, output_unit, unit_request

SLICES_PER_TASK = 16
TILES_PER_TASK = 16


@dataclass(frozen=True)
class AutoPart:
    """``slices`` (first, stop) of a volume, or ``windows`` (first, stop) of a 2-D image's tiles."""

    unit: AutoUnit
    slices: tuple[int, int] | None = None
    windows: tuple[int, int] | None = None

    @property
    def path(self) -> Path:
        span = self.slices if self.slices is not None else self.windows
        kind = "slices" if self.slices is not None else "tiles"
        return Path(self.unit.out_dir) / ".parts" / self.unit.name / f"{kind}-{span[0]:06d}-{span[1]:06d}.npz"

    def stamp(self, fingerprint: str) -> str:
        return json.dumps({"fingerprint": fingerprint, "settings": self.unit.settings(),
                           "slices": self.slices, "windows": self.windows}, sort_keys=True)


@dataclass(frozen=True)
class AutoMerge:
    unit: AutoUnit
    parts: tuple[AutoPart, ...]


def plan(units: list[AutoUnit], target_size: int, slices_per_task: int = SLICES_PER_TASK,
         tiles_per_task: int = TILES_PER_TASK) -> tuple[list, list[AutoMerge], list[dict]]:
    """(units of the first stage: whole inputs and parts, merges, failures {"image", "error"}).
    An input is split when it has more than ``slices_per_task`` slices or (2-D) more than
    ``tiles_per_task`` tiles; reading it to learn its shape is the cost. An input finished with
    these settings (its marker) is left whole: its unit skips it."""
    from napari_hrsam.engine.automatic import slice_windows

    if slices_per_task < 1 or tiles_per_task < 1:
        raise ValueError("--slices-per-task and --tiles-per-task must be >= 1")
    first, merges, failures = [], [], []
    for unit in units:
        if finished(unit, None):
            first.append(unit)
            continue
        try:
            array, metadata = io.read_image(unit.image)
        except (ValueError, OSError) as err:
            failures.append({"image": unit.image, "error": f"{type(err).__name__}: {err}"})
            continue
        spatial = array.shape[:-1] if metadata.get("rgb") else array.shape
        if len(spatial) == 3:
            spans = [(s, min(s + slices_per_task, spatial[0])) for s in range(0, spatial[0], slices_per_task)]
            parts = tuple(AutoPart(unit, slices=span) for span in spans)
        else:
            count = len(slice_windows(spatial, target_size, unit.auto_settings()))
            spans = [(w, min(w + tiles_per_task, count)) for w in range(0, count, tiles_per_task)]
            parts = tuple(AutoPart(unit, windows=span) for span in spans)
        if len(parts) == 1:
            first.append(unit)
        else:
            first += parts
            merges.append(AutoMerge(unit, parts))
    return first, merges, failures


def part_unit(part: AutoPart, plugin=None) -> dict:
    """Find the objects of one part and write them (in a Dask worker, or here with ``plugin``)."""
    from .worker_model import worker_plugin

    plugin = plugin if plugin is not None else worker_plugin()
    summary = {"image": part.unit.image, "part": part.path.name, "objects": 0, "seconds": 0.0,
               "encoder_passes": 0, "skipped": False, "error": None, "pid": os.getpid()}
    stamp = part.stamp(plugin.fingerprint)
    if _stored_stamp(part.path) == stamp:
        summary["skipped"] = True
        return summary
    start = time.perf_counter()
    try:
        array, metadata = io.read_image(part.unit.image)
        counter = CountingPredictor(plugin.predictor)
        session, request = unit_request(part.unit, array, metadata, counter, part.slices, part.windows)
        result = session.compute_segment_all(request)
    except (ValueError, OSError) as err:
        summary["error"] = f"{type(err).__name__}: {err}"
        return summary
    offset = 0 if part.slices is None else part.slices[0]
    objects = [(offset + k, found) for k, (_, found_here) in enumerate(result.found) for found in found_here]
    replace_file(part.path, lambda tmp: _write_objects(tmp, objects, stamp))
    summary.update(objects=len(objects), seconds=time.perf_counter() - start, encoder_passes=counter.passes)
    return summary


def merge_unit(merge: AutoMerge, plugin=None) -> dict:
    """De-duplicate and link the parts' objects, write the input's labels and marker, remove the parts."""
    from .worker_model import worker_plugin

    plugin = plugin if plugin is not None else worker_plugin()
    summary = output_unit(merge.unit, plugin, lambda: (_merged_labels(merge, plugin), 0))
    if summary["error"] is None and not summary["skipped"]:
        folder = merge.parts[0].path.parent
        shutil.rmtree(folder, ignore_errors=True)
        try:
            folder.parent.rmdir()  # .parts, once no other input's parts are left in it
        except OSError:
            pass
    return summary


def _merged_labels(merge: AutoMerge, plugin) -> np.ndarray:
    missing = [p.path.name for p in merge.parts if _stored_stamp(p.path) != p.stamp(plugin.fingerprint)]
    if missing:
        raise ValueError(f"{len(missing)} part(s) missing or made otherwise: {missing[0]} ...")
    array, metadata = io.read_image(merge.unit.image)
    session, request = unit_request(merge.unit, array, metadata, plugin.predictor)
    per_slice = [[] for _ in request.keys]
    for part in merge.parts:
        for k, found in _read_objects(part.path):
            per_slice[k].append(found)
    session.apply(session.merge_segment_all(request, per_slice))
    return label_image(session)


def _write_objects(path, objects, stamp: str) -> None:
    """objects: (slice index, FoundObject) pairs, in the order found."""
    crops = [found.mask.crop for _, found in objects]
    bits = [np.packbits(crop.ravel()) for crop in crops]
    with open(path, "wb") as handle:
        np.savez(handle, stamp=np.array(stamp),
                 slice=np.array([k for k, _ in objects], np.int64).reshape(-1),
                 offset=np.array([f.mask.offset for _, f in objects], np.int64).reshape(-1, 2),
                 crop_shape=np.array([c.shape for c in crops], np.int64).reshape(-1, 2),
                 slice_shape=np.array([f.mask.shape for _, f in objects], np.int64).reshape(-1, 2),
                 bit_ends=np.cumsum([0] + [len(b) for b in bits]).astype(np.int64),
                 bits=np.concatenate(bits) if bits else np.zeros(0, np.uint8),
                 score=np.array([(f.iou, f.stability) for _, f in objects], np.float64).reshape(-1, 2),
                 point=np.array([f.point for _, f in objects], np.float64).reshape(-1, 2),
                 negative_ends=np.cumsum([0] + [len(f.negatives) for _, f in objects]).astype(np.int64),
                 negative=np.array([n for _, f in objects for n in f.negatives], np.float64).reshape(-1, 2))


def _read_objects(path):
    """(slice index, FoundObject) pairs as ``_write_objects`` wrote them."""
    from napari_hrsam.engine.automatic import FoundObject
    from napari_hrsam.engine.state import SparseMask

    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    out = []
    for i, k in enumerate(arrays["slice"]):
        rows, cols = (int(v) for v in arrays["crop_shape"][i])
        packed = arrays["bits"][arrays["bit_ends"][i]:arrays["bit_ends"][i + 1]]
        crop = np.unpackbits(packed, count=rows * cols).astype(bool).reshape(rows, cols)
        mask = SparseMask(tuple(int(v) for v in arrays["offset"][i]), crop,
                          tuple(int(v) for v in arrays["slice_shape"][i]))
        iou, stability = (float(v) for v in arrays["score"][i])
        ends = arrays.get("negative_ends", np.zeros(len(arrays["slice"]) + 1, np.int64))  # older parts: none
        negatives = arrays.get("negative", np.zeros((0, 2)))[ends[i]:ends[i + 1]]
        out.append((int(k), FoundObject(mask, iou, stability, tuple(float(v) for v in arrays["point"][i]),
                                        tuple((float(r), float(c)) for r, c in negatives))))
    return out


def _stored_stamp(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            return str(data["stamp"])
    except (OSError, ValueError, KeyError):
        return None

