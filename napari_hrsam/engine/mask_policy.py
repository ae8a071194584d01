"""What the shown mask keeps of the decoder's: one frozen policy, applied once, by the engine.

A click on one nucleus often lights up its look-alike neighbours too: the decoder answers "things
like this" as well as "this thing". A user who clicks one object expects that object, so the shown
mask keeps the connected pieces that hold a positive click (8-connected, so a thin diagonal
structure stays in one piece) and drops the rest; a second piece of a split object is kept by
clicking it. A click is also a statement about its own pixel, which the small decoder does not
always honour (after 20 simulated clicks its mask contradicted 19-28% of them): with
``hold_clicks`` a disc of one pixel's radius around each contradicted click is set to the click's
side, as seed-based tools (GrabCut) treat their seeds. Pixels the user painted into or erased from
the shown mask with a brush (``Prompts.painted`` / ``erased``) are held the same way, under the same
``hold_clicks`` switch, after everything else: a brush stroke is the user's last word on its pixels.

``hrsam_model.Predictor`` returns the decoder's own mask, as segment-anything does; the engine
(``SliceEngine.predict``) applies a ``MaskPolicy`` to it at slice resolution. Only the shown mask
changes: the logits fed back with the next click stay the decoder's own. Zoom-in windows and
propagation follow the shown mask: it is the object the user accepted, and a dropped look-alike
must neither widen the next window nor be carried to the next slice.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .state import SparseMask

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
CLICK_RADIUS = 1  # px: the clicked pixel and its 4 neighbours (2 and 3 px held fewer clicks' worth on brain)


@dataclass(frozen=True)
class MaskPolicy:
    """keep_clicked_pieces: with clicks and no box, keep only the pieces that hold a positive
    click (a box already says where). hold_clicks: every user click the mask contradicts holds
    (clicks that propagation placed never do: the object must stay free to vanish under them).
    ``MaskPolicy(False, False)`` shows the decoder's mask as drawn (the official output)."""

    keep_clicked_pieces: bool = True
    hold_clicks: bool = True

    def apply(self, mask: SparseMask, points, labels, *, has_box: bool,
              user_clicks: bool, painted=(), erased=()) -> SparseMask:
        """``mask`` (slice pixels) as shown for clicks ``points`` ((row, col) slice pixels) with
        ``labels`` (1 inside, 0 outside): the clicks the model was shown; ``painted`` /
        ``erased``: brushed (row, col) pixels."""
        if len(points) and self.keep_clicked_pieces and not has_box:
            mask = keep_clicked_pieces_on_slice(mask, points, labels)
        if len(points) and self.hold_clicks and user_clicks:
            mask = hold_clicks_on_slice(mask, points, labels)
        if self.hold_clicks and user_clicks and (len(painted) or len(erased)):
            mask = hold_painted_on_slice(mask, painted, erased)
        return mask


def keep_clicked_pieces(mask, points, labels):
    """`mask` without the connected pieces that hold no positive click.

    mask: (H, W) bool; points: (N, 2) (x, y) pixels on that grid; labels: N values (1 = positive).
    The mask comes back unchanged when no positive click lies on it: with nothing to anchor to,
    dropping everything would only hide what the model saw.
    """
    mask = np.asarray(mask, dtype=bool)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    positive = points[np.asarray(labels).reshape(-1) == 1]
    if len(positive) == 0 or not mask.any():
        return mask
    cols = np.clip(np.rint(positive[:, 0]).astype(int), 0, mask.shape[1] - 1)
    rows = np.clip(np.rint(positive[:, 1]).astype(int), 0, mask.shape[0] - 1)
    # label only the mask's bounding box: a small object in a large image stays cheap
    (r0, r1), (c0, c1) = (np.flatnonzero(mask.any(axis=a))[[0, -1]] for a in (1, 0))
    pieces, count = ndi.label(mask[r0 : r1 + 1, c0 : c1 + 1], structure=_EIGHT_CONNECTED)
    if count == 1:
        return mask
    inside = (rows >= r0) & (rows <= r1) & (cols >= c0) & (cols <= c1)
    kept = np.unique(pieces[rows[inside] - r0, cols[inside] - c0])
    kept = kept[kept > 0]
    if len(kept) == 0:
        return mask
    out = np.zeros_like(mask)
    out[r0 : r1 + 1, c0 : c1 + 1] = pieces == kept[0] if len(kept) == 1 else np.isin(pieces, kept)
    return out


def hold_clicks(mask, points, labels, radius: int = CLICK_RADIUS):
    """`mask` with a disc of `radius` px around each click it contradicts set to the click's side.

    mask: (H, W) bool; points: (N, 2) (x, y) pixels on that grid (clipped to it); labels: N values
    (1 = inside). Where two discs overlap the later click wins, but never on another click's own
    pixel: two clicks side by side (common once the error is a thin rim) both hold.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    mask = np.array(mask, dtype=bool)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    height, width = mask.shape
    offsets = [(dr, dc) for dr in range(-radius, radius + 1) for dc in range(-radius, radius + 1)
               if dr * dr + dc * dc <= radius * radius]
    cols = np.clip(np.rint(points[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.rint(points[:, 1]).astype(int), 0, height - 1)
    sides = np.asarray(labels).reshape(-1) == 1
    wrong = mask[rows, cols] != sides
    for row, col, inside in zip(rows[wrong], cols[wrong], sides[wrong]):
        for dr, dc in offsets:
            if 0 <= row + dr < height and 0 <= col + dc < width:
                mask[row + dr, col + dc] = inside
    mask[rows, cols] = sides  # every click's own pixel last (the later of two on one pixel wins)
    return mask


def keep_clicked_pieces_on_slice(mask: SparseMask, points, labels) -> SparseMask:
    """``keep_clicked_pieces`` for clicks ((row, col) slice pixels) on a sparse mask: only its
    bounding box is ever dense."""
    if mask.empty:
        return mask
    r0, c0, r1, c1 = mask.bbox
    inside = [((c - c0, r - r0), v) for (r, c), v in zip(points, labels)
              if r0 - 0.5 <= r < r1 - 0.5 and c0 - 0.5 <= c < c1 - 0.5]  # rounds into the crop
    if not any(v == 1 for _, v in inside):
        return mask
    kept = keep_clicked_pieces(mask.crop, np.reshape([xy for xy, _ in inside], (-1, 2)),
                               [v for _, v in inside])
    return mask if kept is mask.crop else SparseMask.from_dense(kept, offset=(r0, c0), shape=mask.shape)


def hold_clicks_on_slice(mask: SparseMask, points, labels) -> SparseMask:
    """``hold_clicks`` for clicks ((row, col) slice pixels) on a sparse mask: only its bounding
    box and the held clicks' discs are ever dense."""
    height, width = mask.shape
    r0, c0, r1, c1 = mask.bbox
    clicks = [(min(max(int(round(r)), 0), height - 1), min(max(int(round(c)), 0), width - 1), int(v))
              for (r, c), v in zip(points, labels)]
    wrong = [(r, c) for r, c, v in clicks
             if (r0 <= r < r1 and c0 <= c < c1 and bool(mask.crop[r - r0, c - c0])) != (v == 1)]
    if not wrong:
        return mask
    rows = [r for r, _ in wrong] + ([r0, r1 - 1] if not mask.empty else [])
    cols = [c for _, c in wrong] + ([c0, c1 - 1] if not mask.empty else [])
    top, left = max(min(rows) - CLICK_RADIUS, 0), max(min(cols) - CLICK_RADIUS, 0)
    bottom, right = min(max(rows) + CLICK_RADIUS + 1, height), min(max(cols) + CLICK_RADIUS + 1, width)
    dense = np.zeros((bottom - top, right - left), bool)
    if not mask.empty:
        dense[r0 - top:r1 - top, c0 - left:c1 - left] = mask.crop
    near = [(r, c, v) for r, c, v in clicks if top <= r < bottom and left <= c < right]
    held = hold_clicks(dense, [(c - left, r - top) for r, c, _ in near], [v for _, _, v in near])
    return SparseMask.from_dense(held, offset=(top, left), shape=mask.shape)


def hold_painted_on_slice(mask: SparseMask, painted, erased) -> SparseMask:
    """``mask`` with the ``painted`` (row, col) pixels set and the ``erased`` ones cleared; only
    the bounding box of the mask and the strokes is ever dense. Pixels off the slice are ignored."""
    height, width = mask.shape
    strokes = [np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in (painted, erased)]
    strokes = [s[(s[:, 0] >= 0) & (s[:, 0] < height) & (s[:, 1] >= 0) & (s[:, 1] < width)] for s in strokes]
    every = np.concatenate(strokes)
    if not len(every):
        return mask
    top, left = every.min(axis=0)
    bottom, right = every.max(axis=0) + 1
    if not mask.empty:
        r0, c0, r1, c1 = mask.bbox
        top, left, bottom, right = min(top, r0), min(left, c0), max(bottom, r1), max(right, c1)
    dense = np.zeros((bottom - top, right - left), bool)
    if not mask.empty:
        dense[r0 - top:r1 - top, c0 - left:c1 - left] = mask.crop
    dense[strokes[0][:, 0] - top, strokes[0][:, 1] - left] = True
    dense[strokes[1][:, 0] - top, strokes[1][:, 1] - left] = False
    return SparseMask.from_dense(dense, offset=(top, left), shape=mask.shape)
