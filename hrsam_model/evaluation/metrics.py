"""Click-protocol metrics: IoU, NoC@t, NoF@t, mIoU@k, seconds per click; mIoU@1 on the instances
that touch another object (`datasets.Instance.touches`), where a first click most often takes in a
neighbour."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

MIOU_CLICKS = (1, 3, 5, 10)


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two boolean masks; 1.0 when both are empty."""
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"pred shape {pred.shape} does not match gt shape {gt.shape}")
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def one_pixel_off_ious(gt: np.ndarray) -> tuple[float, float]:
    """(moved, shrunk): IoU with `gt` of `gt` moved by one pixel (mean over up, down, left, right) and
    of `gt` shrunk by one pixel (4-connected erosion).

    A yardstick for small objects: an outline that is one pixel off everywhere already costs this
    much IoU (a 10 x 10 square: 0.818 moved, 0.64 shrunk), so IoU 0.85 on a 150-pixel structure asks
    for sub-pixel agreement with how its outline was drawn."""
    gt = np.asarray(gt, dtype=bool)
    if gt.ndim != 2 or not gt.any():
        raise ValueError(f"need a non-empty 2-D mask, got shape {gt.shape} with {int(gt.sum())} pixels")
    padded = np.pad(gt, 1)
    h, w = gt.shape
    moved = [padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    shrunk = ndi.binary_erosion(padded)[1:-1, 1:-1]
    return float(np.mean([iou(m, gt) for m in moved])), iou(shrunk, gt)


def clicks_to_reach(ious: Sequence[float], threshold: float, max_clicks: int = 20) -> int:
    """1-based index of the first click whose IoU >= threshold, `max_clicks` if none does."""
    for index, value in enumerate(ious[:max_clicks], start=1):
        if value >= threshold:
            return index
    return max_clicks


def noc(curves: Sequence[Sequence[float]], threshold: float, max_clicks: int = 20) -> float:
    """Mean number of clicks to reach `threshold` (failures count as `max_clicks`)."""
    _require_curves(curves)
    return float(np.mean([clicks_to_reach(c, threshold, max_clicks) for c in curves]))


def nof(curves: Sequence[Sequence[float]], threshold: float, max_clicks: int = 20) -> int:
    """Number of instances that never reach `threshold` within `max_clicks` clicks."""
    _require_curves(curves)
    return sum(not any(v >= threshold for v in c[:max_clicks]) for c in curves)


def miou_at(curves: Sequence[Sequence[float]], k: int) -> float:
    """Mean IoU after click k. A curve that stopped early (no error left) keeps its last IoU."""
    _require_curves(curves)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return float(np.mean([c[min(k, len(c)) - 1] for c in curves]))


def _require_curves(curves) -> None:
    if len(curves) == 0 or any(len(c) == 0 for c in curves):
        raise ValueError("need at least one instance with at least one click")


@dataclass
class InstanceResult:
    """One instance run through the protocol: IoU and decoder seconds after each click."""

    name: str
    dataset: str
    ious: list[float] = field(default_factory=list)
    click_seconds: list[float] = field(default_factory=list)
    encode_seconds: float | None = None  # None when the image's embedding was already computed
    ignored: list[int] = field(default_factory=list)  # clicks the mask contradicts, after each click
    touches: bool = False  # the target touches another labelled object (`datasets.Instance.touches`)


@dataclass(frozen=True)
class Summary:
    count: int
    noc85: float
    noc90: float
    nof85: int
    miou: dict  # k -> mean IoU after k clicks
    seconds_per_click: float  # median over all clicks
    encode_seconds: float | None  # median over distinct images
    ignored: float = float("nan")  # share of the clicks the last mask contradicts (mean over instances)
    touching: int = 0  # how many instances touch another object
    touching_miou1: float = float("nan")  # their mean IoU after the first click (NaN when there are none)


def summarize(results: Sequence[InstanceResult], max_clicks: int = 20) -> Summary:
    curves = [r.ious for r in results]
    clicks = [s for r in results for s in r.click_seconds]
    encodes = [r.encode_seconds for r in results if r.encode_seconds is not None]
    touching = [r.ious for r in results if r.touches]
    return Summary(
        count=len(results),
        noc85=noc(curves, 0.85, max_clicks),
        noc90=noc(curves, 0.90, max_clicks),
        nof85=nof(curves, 0.85, max_clicks),
        miou={k: miou_at(curves, k) for k in MIOU_CLICKS},
        seconds_per_click=float(np.median(clicks)) if clicks else float("nan"),
        encode_seconds=float(np.median(encodes)) if encodes else None,
        ignored=ignored_share(results),
        touching=len(touching),
        touching_miou1=miou_at(touching, 1) if touching else float("nan"),
    )


def contradicted_clicks(mask: np.ndarray, points, labels) -> int:
    """How many clicks the mask contradicts: a positive click's pixel outside it, a negative's inside."""
    mask = np.asarray(mask, dtype=bool)
    return sum(bool(mask[int(y), int(x)]) != bool(label) for (x, y), label in zip(points, labels))


def ignored_share(results: Sequence[InstanceResult]) -> float:
    """Mean over instances of (clicks contradicted by the last mask) / (clicks given); NaN if unknown."""
    shares = [r.ignored[-1] / len(r.ignored) for r in results if r.ignored]
    return float(np.mean(shares)) if shares else float("nan")
