"""A one-line text progress bar on stderr (no dependency)."""
from __future__ import annotations

import sys
import time

WIDTH = 30


class TextProgress:
    """``with TextProgress(total, "embed x") as bar: ... bar.update(done, total)``.

    On a terminal the line is redrawn in place; elsewhere (logs, CI) it is printed at
    every tenth so the log stays short."""

    def __init__(self, total: int, label: str, stream=None):
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start = time.perf_counter()
        self._shown_tenth = -1

    def __enter__(self):
        self.update(0, self.total)
        return self

    def __exit__(self, *exc):
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
        return False

    def update(self, done: int, total: int | None = None) -> None:
        self.total = max(int(total or self.total), 1)
        tenth = done * 10 // self.total
        if not self.interactive and tenth == self._shown_tenth:
            return
        self._shown_tenth = tenth
        filled = done * WIDTH // self.total
        elapsed = time.perf_counter() - self._start
        eta = f", {elapsed / done * (self.total - done):.0f} s left" if 0 < done < self.total else ""
        line = (f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{self.total}"
                f" {elapsed:.0f} s{eta}")
        self.stream.write(("\r" + line) if self.interactive else (line + "\n"))
        self.stream.flush()
