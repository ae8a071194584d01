"""Segment everything, as a session step: every object ``automatic.find_objects`` finds on the
current slice becomes a committed object with the next free id, in one undo step (``Session``
inherits this). Voxels already labelled keep their label; the object in progress is untouched.

As with clicks, the heavy part runs in a worker and the answer is applied on the main thread::

    request = session.segment_all_request(AutoSettings(), box=None)   # main thread
    found = session.compute_segment_all(request, progress, should_cancel)   # worker
    session.apply(found)                                               # main thread: one undo step
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable

import numpy as np

from .automatic import AutoSettings, FoundObject, find_objects
from .history import LabelDiff, Step, paint
from .prompt_checks import checked_box
from .state import SliceKey


@dataclass(frozen=True)
class AutoRequest:
    generation: int
    key: SliceKey
    settings: AutoSettings
    box: tuple | None


@dataclass(frozen=True, eq=False)
class AutoResult:
    """What ``compute_segment_all`` found (best first); apply it with ``Session.apply``."""

    generation: int
    key: SliceKey
    objects: tuple[FoundObject, ...]
    seconds: float = 0.0


class SessionAuto:
    """``segment_all`` for ``Session`` (which owns the labels, history and engine)."""

    def segment_all(self, settings: AutoSettings | None = None, box=None,
                    progress: Callable[[int, int], None] | None = None,
                    should_cancel: Callable[[], bool] | None = None) -> list[int]:
        """Find every object on the current slice (inside ``box``, (row0, col0, row1, col1),
        if given) and commit each with the next free id, in one undo step. Returns the new ids.
        ValueError where the slice has no contrast; ``automatic.AutoCancelled`` when
        ``should_cancel()`` says so (nothing is written)."""
        result = self.compute_segment_all(self.segment_all_request(settings, box), progress, should_cancel)
        return self._apply_auto(result)

    def segment_all_request(self, settings: AutoSettings | None = None, box=None) -> AutoRequest:
        """Main thread: check and freeze a segment-all run on the current slice."""
        key = self._require_slice()
        checked = None if box is None else checked_box(box, self.slice_shape)
        return AutoRequest(self._generation, key, settings or AutoSettings(), checked)

    def compute_segment_all(self, request: AutoRequest,
                            progress: Callable[[int, int], None] | None = None,
                            should_cancel: Callable[[], bool] | None = None) -> AutoResult:
        """Worker-safe: find the objects (reads the image and the model only)."""
        import time

        start = time.perf_counter()
        found = find_objects(self._engine, request.key, request.settings, request.box,
                             should_cancel, progress)
        return AutoResult(request.generation, request.key, tuple(found), time.perf_counter() - start)

    def _apply_auto(self, result: AutoResult) -> list[int]:
        """Main thread: write the objects (skipped when the labels changed meanwhile)."""
        if result.generation != self._generation:
            return []
        label_id = self.next_label_id
        dtype = np.dtype(self._labels.dtype)
        if result.objects and label_id + len(result.objects) - 1 > np.iinfo(dtype).max:
            raise ValueError(f"labels dtype {dtype} cannot hold {len(result.objects)} more ids: "
                             "use a wider integer type")
        patches, records, ids = [], {}, []
        try:
            for found in result.objects:
                index, crop = self._label_window(result.key, found.mask)
                patch = paint(self._labels, index, crop, label_id, overwrite=False)
                if patch is None:  # every pixel already labelled
                    continue
                patches.append(patch)
                records[label_id] = {"slices": [{
                    "displayed_axes": list(result.key.displayed_axes), "position": list(result.key.position),
                    "source": "auto", "prompts": {"points": [list(found.point)], "labels": [1], "box": None},
                    "iou": found.iou, "stability": found.stability}],
                    "voxels": int(patch.where.size), "overwrite": False}
                ids.append(label_id)
                label_id += 1
        except BaseException:
            LabelDiff(tuple(patches)).undo(self._labels)
            raise
        if not patches:
            return []
        objects = MappingProxyType({**self._objects, **records})
        self._push(Step("segment all", self._object, self._object, self._generation + 1,
                        LabelDiff(tuple(patches)), self._objects, objects))
        return ids
