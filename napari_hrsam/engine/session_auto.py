"""Segment everything, as a session step: every object ``automatic.find_objects`` finds on the
current slice becomes a committed object with the next free id, in one undo step (``Session``
inherits this). Voxels already labelled keep their label; the object in progress is untouched.

As with clicks, the heavy part runs in a worker and the answer is applied on the main thread::

    request = session.segment_all_request(AutoSettings(), box=None)   # main thread
    found = session.compute_segment_all(request, progress, should_cancel)   # worker
    session.apply(found)                                               # main thread: one undo step
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Sequence

import numpy as np

from .automatic import AutoSettings, FoundObject, NoContrastError, find_objects, suppress_duplicates
from .history import LabelDiff, Step, paint
from .prompt_checks import checked_box
from .propagation_rules import overlap_iou
from .state import SliceKey

LINK_IOU = 0.3  # an object overlapping one of the previous slice this much continues it in 3-D


@dataclass(frozen=True)
class AutoRequest:
    generation: int
    keys: tuple[SliceKey, ...]  # the current slice, or a range of slices of a volume
    settings: AutoSettings
    box: tuple | None
    link: bool = False
    windows: tuple[int, int] | None = None  # a part: these windows of each slice (``find_objects``)


@dataclass(frozen=True, eq=False)
class AutoResult:
    """What ``compute_segment_all`` found, per slice (best first); apply it with ``Session.apply``.
    A ``part`` (a request for some windows) holds objects not yet de-duplicated: it cannot be
    applied, only merged (``merge_segment_all``)."""

    generation: int
    found: tuple[tuple[SliceKey, tuple[FoundObject, ...]], ...]
    link: bool = False
    seconds: float = 0.0
    part: bool = False

    @property
    def objects(self) -> tuple[FoundObject, ...]:
        return tuple(o for _, objects in self.found for o in objects)


class SessionAuto:
    """``segment_all`` for ``Session`` (which owns the labels, history and engine)."""

    def segment_all(self, settings: AutoSettings | None = None, box=None, *, slices=None,
                    axis: int | None = None, link: bool = False,
                    progress: Callable[[int, int], None] | None = None,
                    should_cancel: Callable[[], bool] | None = None) -> list[int]:
        """Find every object on the current slice (inside ``box``, (row0, col0, row1, col1),
        if given) and commit each with the next free id, in one undo step. Returns the new ids.
        Volumes: ``slices`` (indices along spatial ``axis``, default the last non-displayed
        one) runs every slice of a range; with ``link`` an object that overlaps one of the
        previous slice by IoU >= ``LINK_IOU`` gets its id (a 3-D object). ValueError where a
        slice has no contrast; ``automatic.AutoCancelled`` when ``should_cancel()`` says so
        (nothing is written)."""
        request = self.segment_all_request(settings, box, slices=slices, axis=axis, link=link)
        return self._apply_auto(self.compute_segment_all(request, progress, should_cancel))

    def segment_all_request(self, settings: AutoSettings | None = None, box=None, *, slices=None,
                            axis: int | None = None, link: bool = False,
                            windows: tuple[int, int] | None = None) -> AutoRequest:
        """Main thread: check and freeze a segment-all run (``windows``: only a part of it, see
        ``automatic.find_objects``)."""
        key = self._require_slice()
        checked = None if box is None else checked_box(box, self.slice_shape)
        keys = (key,)
        if slices is not None:
            shape = self.spatial_shape
            others = [a for a in range(len(shape)) if a not in key.displayed_axes]
            if not others:
                raise ValueError("slices= needs a volume: a 2-D image has one slice")
            axis = others[-1] if axis is None else axis % len(shape)
            if axis not in others:
                raise ValueError(f"axis {axis} is displayed; choose one of {others}")
            indices = [int(i) for i in slices]
            if not indices or min(indices) < 0 or max(indices) >= shape[axis]:
                raise ValueError(f"slices must be indices 0..{shape[axis] - 1} along axis {axis}")
            keys = tuple(key.moved(axis, i) for i in sorted(set(indices)))
        if windows is not None and not 0 <= windows[0] < windows[1]:
            raise ValueError(f"windows must be a range (first, stop) with 0 <= first < stop, got {windows}")
        return AutoRequest(self._generation, keys, settings or AutoSettings(), checked, bool(link),
                           None if windows is None else (int(windows[0]), int(windows[1])))

    def compute_segment_all(self, request: AutoRequest,
                            progress: Callable[[int, int], None] | None = None,
                            should_cancel: Callable[[], bool] | None = None) -> AutoResult:
        """Worker-safe: find the objects (reads the image and the model only)."""
        start, found, blank = time.perf_counter(), [], 0
        for number, key in enumerate(request.keys):
            def report(done, total, number=number):  # slices in order, each its share
                if progress is not None:
                    progress(number * total + done, len(request.keys) * total)

            try:
                objects = find_objects(self._engine, key, request.settings, request.box, should_cancel, report,
                                       request.windows)
            except NoContrastError:
                blank += 1
                if blank == len(request.keys):  # one slice, or every slice of the range (a part never raises)
                    raise
                objects = []  # a blank slice of a range (a volume's empty end) holds no object
            found.append((key, tuple(objects)))
        return AutoResult(request.generation, tuple(found), request.link, time.perf_counter() - start,
                          part=request.windows is not None)

    def merge_segment_all(self, request: AutoRequest, objects: Sequence[Sequence[FoundObject]]) -> AutoResult:
        """The result of the whole ``request`` from the objects its parts found: ``objects[k]``
        holds those of every part on ``request.keys[k]``, parts in window order (as
        ``find_objects`` visits them). Equals ``compute_segment_all(request)`` when the parts
        cover every window of every slice (parts found by another model instance may differ by a
        boundary pixel where batches decode in bf16)."""
        if len(objects) != len(request.keys):
            raise ValueError(f"give the objects of each of the request's {len(request.keys)} slices")
        overlap = request.settings.nms_overlap
        found = tuple((key, tuple(suppress_duplicates(list(objects[k]), overlap)))
                      for k, key in enumerate(request.keys))
        return AutoResult(request.generation, found, request.link)

    def _apply_auto(self, result: AutoResult) -> list[int]:
        """Main thread: write the objects (skipped when the labels changed meanwhile)."""
        if result.part:
            raise ValueError("a part of a segment-all run is merged (merge_segment_all), not applied")
        if result.generation != self._generation:
            return []
        label_id = self.next_label_id
        dtype = np.dtype(self._labels.dtype)
        if result.objects and label_id + len(result.objects) - 1 > np.iinfo(dtype).max:
            raise ValueError(f"labels dtype {dtype} cannot hold {len(result.objects)} more ids: "
                             "use a wider integer type")
        patches, records, ids, previous = [], {}, [], []
        try:
            for key, objects in result.found:
                written = []
                for found in objects:
                    value = _continued(found.mask, previous, written) if result.link else None
                    value = label_id if value is None else value
                    index, crop = self._label_window(key, found.mask)
                    patch = paint(self._labels, index, crop, value, overwrite=False)
                    if patch is None:  # every pixel already labelled
                        continue
                    patches.append(patch)
                    written.append((found.mask, value))
                    slice_record = {
                        "displayed_axes": list(key.displayed_axes), "position": list(key.position),
                        "source": "auto", "prompts": _found_prompts(found),
                        "iou": found.iou, "stability": found.stability}
                    if value in records:
                        records[value]["slices"].append(slice_record)
                        records[value]["voxels"] += int(patch.where.size)
                        continue
                    records[value] = {"slices": [slice_record], "voxels": int(patch.where.size), "overwrite": False}
                    ids.append(value)
                    label_id += 1
                previous = written
        except BaseException:
            LabelDiff(tuple(patches)).undo(self._labels)
            raise
        if not patches:
            return []
        objects = MappingProxyType({**self._objects, **records})
        self._push(Step("segment all", self._object, self._object, self._generation + 1,
                        LabelDiff(tuple(patches)), self._objects, objects))
        return ids


def _continued(mask, previous, taken) -> int | None:
    """The id of the previous slice's object that ``mask`` overlaps by IoU >= LINK_IOU (the best
    one not already continued on this slice), or None."""
    used = {value for _, value in taken}
    best, best_iou = None, LINK_IOU
    for other, value in previous:
        if value not in used and (iou := overlap_iou(mask, other)) >= best_iou:
            best, best_iou = value, iou
    return best


def _found_prompts(found) -> dict:
    """The prompts an automatic object keeps for later clicks: its point, and for a part cut from
    a larger mask the other parts' points as negatives."""
    return {"points": [list(found.point)] + [list(p) for p in found.negatives],
            "labels": [1] + [0] * len(found.negatives), "box": None}
