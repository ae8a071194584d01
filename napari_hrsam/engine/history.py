"""Undo/redo: one linear stack of steps, label edits stored as sparse diffs.

A step keeps the object state before and after (immutable, so snapshots are shared,
not copied) and, for commits and removals, the exact label voxels it changed: their
positions inside a bounding box plus old and new values. Undo writes the old values
back, so the label array returns bit for bit, and memory follows the edited voxels,
not the volume.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Iterator, Mapping

import numpy as np

from .state import ObjectState

SCAN_VOXELS = 1 << 24  # voxels per slab when scanning a whole label array


@dataclass(frozen=True)
class LabelPatch:
    """Voxels changed inside ``labels[index]`` (a box): flat positions ``where`` in that
    box (C order), their ``old`` values and the ``new`` ones."""

    index: tuple
    where: np.ndarray
    old: np.ndarray
    new: np.ndarray

    def write(self, labels, forward: bool = True) -> None:
        values = self.new if forward else self.old
        if isinstance(labels, np.ndarray):
            view = labels[self.index]
            view[np.unravel_index(self.where, view.shape)] = values
            return
        box = np.array(labels[self.index])  # zarr & co: read, modify, write back
        box.reshape(-1)[self.where] = values
        labels[self.index] = box


@dataclass(frozen=True)
class LabelDiff:
    """Patches in the order they were written (undo replays them backwards)."""

    patches: tuple[LabelPatch, ...] = ()

    @property
    def voxels(self) -> int:
        return sum(p.where.size for p in self.patches)

    def redo(self, labels) -> None:
        for patch in self.patches:
            patch.write(labels, forward=True)

    def undo(self, labels) -> None:
        for patch in reversed(self.patches):
            patch.write(labels, forward=False)


def paint(labels, index: tuple, mask: np.ndarray, value: int,
          overwrite: bool) -> LabelPatch | None:
    """Set ``labels[index][mask] = value`` (only where 0 unless ``overwrite``); returns the
    patch of what changed, or None if nothing did. ``mask`` has the shape of
    ``labels[index]``."""
    box = np.asarray(labels[index])
    write = mask & (box != value)
    if not overwrite:
        write &= box == 0
    where = np.flatnonzero(write)
    if where.size == 0:
        return None
    patch = LabelPatch(index, where, box.reshape(-1)[where].copy(),
                       np.full(where.size, value, dtype=box.dtype))
    patch.write(labels)
    return patch


def slabs(shape: tuple[int, ...]) -> Iterator[tuple]:
    """Indices of consecutive slabs along axis 0 of about SCAN_VOXELS voxels each."""
    per_row = int(np.prod(shape[1:], dtype=np.int64)) or 1
    step = max(1, SCAN_VOXELS // per_row)
    for start in range(0, shape[0], step):
        yield (slice(start, min(start + step, shape[0])),)


def erase(labels, value: int) -> LabelDiff:
    """Set every voxel equal to ``value`` to 0, slab by slab; the diff of what changed."""
    patches = []
    for index in slabs(labels.shape):
        box = np.asarray(labels[index])
        where = np.flatnonzero(box == value)
        if where.size:
            patch = LabelPatch(index, where, np.full(where.size, value, dtype=box.dtype),
                               np.zeros(where.size, dtype=box.dtype))
            patch.write(labels)
            patches.append(patch)
    return LabelDiff(tuple(patches))


def max_label(labels) -> int:
    """Largest value in the label array (0 if empty), slab by slab for lazy arrays."""
    if isinstance(labels, np.ndarray):
        return int(labels.max()) if labels.size else 0
    return max((int(np.asarray(labels[i]).max()) for i in slabs(labels.shape)), default=0)


def checked_labels(labels, shape: tuple[int, ...]):
    """``labels`` checked against the spatial ``shape`` (None -> new int32 zeros)."""
    if labels is None:
        return np.zeros(shape, np.int32)
    for attribute in ("shape", "dtype", "__setitem__"):
        if not hasattr(labels, attribute):
            raise ValueError("labels must be a writable integer array (numpy or zarr)")
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(f"labels shape {tuple(labels.shape)} does not match the image's "
                         f"spatial shape {tuple(shape)}")
    dtype = np.dtype(labels.dtype)
    if dtype.kind not in "iu":
        raise ValueError(f"labels dtype {dtype} is not an integer type: use e.g. int32")
    if isinstance(labels, np.ndarray) and not labels.flags.writeable:
        raise ValueError("labels array is read-only: pass a writable copy")
    if type(labels).__module__.startswith("dask"):
        raise ValueError("labels must be writable in place: a dask array is not; pass numpy "
                         "or zarr")
    return labels


@dataclass(frozen=True)
class Step:
    """One undoable action."""

    name: str
    before: ObjectState
    after: ObjectState
    generation: int
    labels: LabelDiff | None = None
    objects_before: Mapping = field(default_factory=lambda: MappingProxyType({}))
    objects_after: Mapping = field(default_factory=lambda: MappingProxyType({}))


class History:
    """Linear undo/redo stack; a new step after undo drops the redo tail."""

    def __init__(self):
        self._done: list[Step] = []
        self._undone: list[Step] = []
        self._dropped: tuple[Step | None, list[Step]] = (None, [])

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def top(self) -> Step | None:
        return self._done[-1] if self._done else None

    def __len__(self) -> int:
        return len(self._done)

    def names(self) -> tuple[list[str], list[str]]:
        return [s.name for s in self._done], [s.name for s in self._undone]

    def push(self, step: Step) -> None:
        self._dropped = (step, self._undone)
        self._done.append(step)
        self._undone = []

    def undo(self) -> Step | None:
        if not self._done:
            return None
        step = self._done.pop()
        self._undone.append(step)
        return step

    def redo(self) -> Step | None:
        if not self._undone:
            return None
        step = self._undone.pop()
        self._done.append(step)
        return step

    def map_steps(self, change: Callable[[Step], Step]) -> None:
        """Replace every step (done, undone, and the tail ``retract`` would give back) by
        ``change(step)``, keeping their order."""
        new = {}

        def mapped(step: Step) -> Step:
            if id(step) not in new:
                new[id(step)] = change(step)
            return new[id(step)]

        self._done = [mapped(s) for s in self._done]
        self._undone = [mapped(s) for s in self._undone]
        step, tail = self._dropped
        self._dropped = (None if step is None else mapped(step), [mapped(s) for s in tail])

    def retract(self, step: Step) -> bool:
        """Remove ``step`` if it is the latest one and nothing was undone since, giving
        back the redo tail its push dropped (as if it never happened)."""
        if self.top is not step or self._undone:
            return False
        self._done.pop()
        if self._dropped[0] is step:
            self._undone = self._dropped[1]
        self._dropped = (None, [])
        return True
