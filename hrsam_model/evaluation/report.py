"""Plain-text result tables: one row per method, the protocol's columns."""

from __future__ import annotations

from collections.abc import Sequence

from .metrics import MIOU_CLICKS, Summary

_HEADER = ["method", "n", "NoC@85", "NoC@90", "NoF@85"] + [f"mIoU@{k}" for k in MIOU_CLICKS] + ["s/click", "enc s"]


def format_table(rows: Sequence[tuple[str, Summary]], title: str | None = None) -> str:
    """A fixed-width table; `rows` are (method name, summary) pairs."""
    body = [
        [
            method,
            str(s.count),
            f"{s.noc85:.2f}",
            f"{s.noc90:.2f}",
            str(s.nof85),
            *(f"{s.miou[k]:.3f}" for k in MIOU_CLICKS),
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
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"
