"""Immutable data model of an interactive session.

Everything here is a frozen value: history snapshots share them instead of copying,
and a worker thread can hold one without locks. Coordinates are (row, col) pixels of
a 2-D slice; the predictor's (x, y) = (col, row) order appears only in inference.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

import numpy as np

if TYPE_CHECKING:  # propagation_rules imports this module
    from .propagation_rules import PropagationRules

POSITIVE = 1
NEGATIVE = 0


@dataclass(frozen=True)
class SliceKey:
    """Which 2-D slice of the spatial volume.

    ``displayed_axes``: (row axis, col axis), non-negative spatial axis indices (any order).
    ``position``: index along every other spatial axis, in increasing axis order;
    ``()`` for a 2-D image.
    """

    displayed_axes: tuple[int, int]
    position: tuple[int, ...]

    def moved(self, axis: int, index: int) -> "SliceKey":
        """The same orientation with spatial ``axis`` (not displayed) set to ``index``."""
        others = [a for a in range(len(self.position) + 2) if a not in self.displayed_axes]
        position = list(self.position)
        position[others.index(axis)] = index
        return SliceKey(self.displayed_axes, tuple(position))


@dataclass(frozen=True)
class Prompts:
    """The prompts of one object on one slice.

    ``points``: ((row, col), ...) floats in slice pixels; ``labels``: 1 = inside
    (positive), 0 = outside (negative), one per point; ``box``: (row0, col0, row1, col1)
    or None. ``painted`` / ``erased``: ((row, col), ...) int pixels the user painted into or
    erased from the shown mask with a brush (sorted, disjoint); the mask policy holds them on
    their side like clicks. They are not shown to the model except through the mask prompt.
    """

    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    painted: tuple[tuple[int, int], ...] = ()
    erased: tuple[tuple[int, int], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None

    @property
    def has_positive(self) -> bool:
        return POSITIVE in self.labels or self.box is not None

    def with_point(self, row: float, col: float, label: int) -> "Prompts":
        return replace(self, points=self.points + ((float(row), float(col)),),
                       labels=self.labels + (int(label),))

    def with_paint(self, pixels, inside: bool) -> "Prompts":
        """These prompts with ``pixels`` ((row, col) ints) painted in (``inside``) or erased:
        a later stroke wins over an earlier one on the same pixel."""
        new = {(int(r), int(c)) for r, c in pixels}
        painted, erased = set(self.painted), set(self.erased)
        if inside:
            painted, erased = painted | new, erased - new
        else:
            painted, erased = painted - new, erased | new
        return replace(self, painted=tuple(sorted(painted)), erased=tuple(sorted(erased)))

    def without_point(self, index: int) -> "Prompts":
        points, labels = list(self.points), list(self.labels)
        del points[index], labels[index]
        return replace(self, points=tuple(points), labels=tuple(labels))

    def extends(self, other: "Prompts") -> bool:
        """True when self is ``other`` plus more points (same box): then the previous
        logits are a good mask prompt, as in SAM's iterative clicking."""
        n = len(other.points)
        return (self.box == other.box and len(self.points) > n and self.painted == other.painted
                and self.erased == other.erased
                and self.points[:n] == other.points and self.labels[:n] == other.labels)

    def to_dict(self) -> dict:
        out = {"points": [list(p) for p in self.points], "labels": list(self.labels),
               "box": None if self.box is None else list(self.box)}
        if self.painted or self.erased:
            out.update(painted=[list(p) for p in self.painted], erased=[list(p) for p in self.erased])
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Prompts":
        """The inverse of ``to_dict`` (a committed object's record)."""
        box = data.get("box")
        return cls(tuple(tuple(float(v) for v in p) for p in data.get("points", ())),
                   tuple(int(v) for v in data.get("labels", ())),
                   None if box is None else tuple(float(v) for v in box),
                   tuple((int(r), int(c)) for r, c in data.get("painted", ())),
                   tuple((int(r), int(c)) for r, c in data.get("erased", ())))


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class SparseMask:
    """A boolean mask stored as its bounding box: memory follows the object, not the slice.

    ``offset``: (row, col) of the crop's top-left corner in the slice; ``crop``: bool array
    (may be 0 x 0 for an empty mask); ``shape``: the full slice shape.
    """

    offset: tuple[int, int]
    crop: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def from_dense(cls, mask: np.ndarray, offset=(0, 0), shape=None) -> "SparseMask":
        """Crop ``mask`` (placed at ``offset`` in a slice of ``shape``) to its bounding box."""
        mask = np.asarray(mask, dtype=bool)
        shape = tuple(shape) if shape is not None else mask.shape
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return cls((0, 0), np.zeros((0, 0), bool), shape)
        cols = np.flatnonzero(mask.any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        crop = np.ascontiguousarray(mask[r0:r1, c0:c1])
        crop.setflags(write=False)
        return cls((int(offset[0] + r0), int(offset[1] + c0)), crop, shape)

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.crop))

    @property
    def empty(self) -> bool:
        return self.crop.size == 0 or not self.crop.any()

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(row0, col0, row1, col1), end exclusive."""
        r, c = self.offset
        return r, c, r + self.crop.shape[0], c + self.crop.shape[1]

    @property
    def slices(self) -> tuple[slice, slice]:
        r0, c0, r1, c1 = self.bbox
        return slice(r0, r1), slice(c0, c1)

    def shared(self, other: "SparseMask") -> int:
        """How many pixels both masks (of one slice) hold; only their overlapping boxes are read."""
        r0, c0 = max(self.bbox[0], other.bbox[0]), max(self.bbox[1], other.bbox[1])
        r1, c1 = min(self.bbox[2], other.bbox[2]), min(self.bbox[3], other.bbox[3])
        if r0 >= r1 or c0 >= c1:
            return 0
        mine = self.crop[r0 - self.offset[0]:r1 - self.offset[0], c0 - self.offset[1]:c1 - self.offset[1]]
        theirs = other.crop[r0 - other.offset[0]:r1 - other.offset[0], c0 - other.offset[1]:c1 - other.offset[1]]
        return int(np.count_nonzero(mine & theirs))

    def dense(self) -> np.ndarray:
        out = np.zeros(self.shape, bool)
        out[self.slices] = self.crop
        return out


@dataclass(frozen=True)
class Region:
    """The window of a slice that the model saw, and the size it was resized to.

    ``box``: (row0, col0, row1, col1) in slice pixels, end exclusive; ``size``:
    (rows, cols) of the image handed to the predictor.
    """

    box: tuple[int, int, int, int]
    size: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        r0, c0, r1, c1 = self.box
        return r1 - r0, c1 - c0

    def contains(self, row: float, col: float) -> bool:
        r0, c0, r1, c1 = self.box
        return r0 <= row < r1 and c0 <= col < c1


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class SliceResult:
    """One prediction on one slice: the mask, the low-res logits to feed back as
    ``mask_input``, the predicted IoU, the region they refer to and the prompts that
    produced them.

    ``settings``: everything else the mask depends on (``slice_engine.EngineSettings``: contrast
    limits, channels, zoom-in, model, mask policy); a result made under other settings than
    the session's current ones is not shown as current. ``warning``: why the mask is not the
    model's answer (e.g. the slice has no contrast), or None. ``model_empty``: the decoder's
    own mask was empty (what is shown, if anything, are the held clicks)."""

    mask: SparseMask
    logits: np.ndarray
    iou: float
    region: Region
    prompts: Prompts
    look_closer: Region | None = None  # zoom-in: decode the same prompts in this window next
    settings: object = None
    warning: str | None = None
    model_empty: bool = False


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class SliceState:
    """An object on one slice.

    ``source``: "user" (clicked) or "propagated" (prompts derived by propagation).
    ``pending``: the prompts changed after ``result`` was computed; a prediction is due
    (``result``, if any, belongs to the previous prompts and stays visible until then).
    """

    prompts: Prompts
    result: SliceResult | None = None
    pending: bool = False
    source: str = "user"

    def record(self, key: SliceKey) -> dict:
        """JSON-friendly summary for the commit history (labels metadata)."""
        return {"displayed_axes": list(key.displayed_axes), "position": list(key.position),
                "source": self.source, "prompts": self.prompts.to_dict(),
                "iou": None if self.result is None else self.result.iou}


def _frozen(mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class ObjectState:
    """The object being segmented: its state on every slice it touches. ``label_id``: the
    committed object it replaces on commit (``Session.edit_object``), or None for a new one."""

    slices: Mapping[SliceKey, SliceState] = field(default_factory=lambda: _frozen({}))
    label_id: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "slices", _frozen(self.slices))

    @property
    def empty(self) -> bool:
        return not self.slices

    def with_slice(self, key: SliceKey, state: SliceState | None) -> "ObjectState":
        slices = dict(self.slices)
        if state is None:
            slices.pop(key, None)
        else:
            slices[key] = state
        return ObjectState(slices, self.label_id)

    def masks(self) -> dict[SliceKey, SparseMask]:
        """Non-empty masks by slice."""
        return {k: s.result.mask for k, s in self.slices.items()
                if s.result is not None and not s.result.mask.empty}


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class PredictRequest:
    """Everything a worker needs to predict one slice (made on the main thread)."""

    generation: int
    key: SliceKey
    prompts: Prompts
    region: Region
    mask_input: np.ndarray | None


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class Prediction:
    """A worker's answer to a PredictRequest; apply it with ``Session.apply``."""

    generation: int
    key: SliceKey
    prompts: Prompts
    result: SliceResult


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class PropagationRequest:
    """A propagation to run in a worker (made on the main thread).

    ``stop_at``: direction (+1 / -1) -> last index along ``axis`` to reach (inclusive);
    ``user_slices``: slices with user prompts, where propagation stops."""

    generation: int
    start: SliceKey
    start_result: SliceResult
    axis: int
    stop_at: Mapping[int, int]
    user_slices: frozenset
    rules: PropagationRules

    @property
    def directions(self) -> tuple[int, ...]:
        """+1 (forward) and/or -1 (backward)."""
        return tuple(self.stop_at)


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class PropagationResult:
    """The slices a propagation segmented, why each direction stopped, and whether it
    was cancelled (a cancelled run keeps the slices it finished)."""

    generation: int
    start: SliceKey
    axis: int
    slices: Mapping[SliceKey, SliceState]
    stop_reasons: Mapping[int, str]
    cancelled: bool = False
