"""Plain-text result tables: one row per method, the protocol's columns.

"ignored" is the share of the clicks that the last mask contradicts (a positive click's pixel left
out, a negative click's pixel kept in), mean over instances: what a user sees as "it ignored my click".
"mIoU@1 touching" is mIoU@1 over the instances that touch another object, with their count in brackets
("- (0)" when none does): next to mIoU@1 over all, it shows whether a first click takes in neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .metrics import MIOU_CLICKS, Summary, one_pixel_off_ious

_HEADER = (["method", "n", "NoC@85", "NoC@90", "NoF@85"] + [f"mIoU@{k}" for k in MIOU_CLICKS]
           + ["mIoU@1 touching", "ignored", "s/click", "enc s"])


def format_table(rows: Sequence[tuple[str, Summary]], title: str | None = None, note: str | None = None) -> str:
    """A fixed-width table; `rows` are (method name, summary) pairs; `note` goes under it."""
    body = [
        [
            method,
            str(s.count),
            f"{s.noc85:.2f}",
            f"{s.noc90:.2f}",
            str(s.nof85),
            *(f"{s.miou[k]:.3f}" for k in MIOU_CLICKS),
            _touching(s),
            "-" if s.ignored != s.ignored else f"{s.ignored:.3f}",
            _seconds(s.seconds_per_click),
            _seconds(s.encode_seconds),
        ]
        for method, s in rows
    ]
    widths = [max(len(r[i]) for r in [_HEADER, *body]) for i in range(len(_HEADER))]

    def line(cells):
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))]).rstrip()

    lines = [title] if title else []
    lines += [line(_HEADER), line(["-" * w for w in widths])]
    lines += [line(r) for r in body]
    return "\n".join(lines + ([note] if note else []))


def one_pixel_note(masks) -> str:
    """How much IoU an outline one pixel off costs on these ground-truth masks (mean over them)."""
    return yardstick_note([one_pixel_off_ious(m) for m in masks])


def yardstick_note(pairs) -> str:
    """``one_pixel_note`` from the masks' (moved, shrunk) IoUs (``metrics.one_pixel_off_ious``)."""
    moved, shrunk = np.mean(pairs, axis=0)
    return (f"yardstick: the true masks moved by one pixel score mean IoU {moved:.3f}, "
            f"shrunk by one pixel {shrunk:.3f}")


def _touching(summary: Summary) -> str:
    value = "-" if summary.touching == 0 else f"{summary.touching_miou1:.3f}"
    return f"{value} ({summary.touching})"


def _seconds(value: float | None) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"
