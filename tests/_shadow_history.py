"""The undo history a user should see, kept by a randomised test beside the real widget.

``ShadowHistory`` holds the names of the undoable and redoable steps and one labels
snapshot per committed step. A test updates it from what each action should do and
checks the widget against it: committed labels equal ``labels`` at all times (they change
only by commit, undo and redo), and the widget's session lists the same steps.
Asynchronous steps (a queued commit, a propagation's answer) are accepted only while
the shadow says one may still arrive (``queued_commit``, ``propagating``).
"""
from __future__ import annotations

import numpy as np

COMMIT = "commit"
PROPAGATE = "propagate"


class ShadowHistory:
    def __init__(self, shape):
        self.done: list[str] = []  # undoable step names, oldest first
        self.undone: list[str] = []  # redoable step names, next redo last
        self.snapshots = [np.zeros(shape, np.int64)]  # labels after each done commit
        self.redo_snapshots: list[np.ndarray] = []  # labels after each undone commit
        self.queued_commit = False  # C was pressed while the worker ran: a commit may come
        self.propagating = False  # a propagation runs: its step may come
        self.lenient = False  # the prompt steps may change in ways the test leaves open

    @property
    def labels(self) -> np.ndarray:
        return self.snapshots[-1]

    def push(self, name: str, labels=None) -> None:
        self.done.append(name)
        self.undone.clear()
        self.redo_snapshots.clear()
        if name == COMMIT:
            self.snapshots.append(np.asarray(labels).astype(np.int64))

    def undo(self) -> str:
        name = self.done.pop()
        self.undone.append(name)
        if name == COMMIT:
            self.redo_snapshots.append(self.snapshots.pop())
        return name

    def redo(self) -> str:
        name = self.undone.pop()
        self.done.append(name)
        if name == COMMIT:
            self.snapshots.append(self.redo_snapshots.pop())
        return name

    def commits(self) -> tuple[int, int]:
        """(undoable commits, redoable commits)."""
        return len(self.snapshots) - 1, len(self.redo_snapshots)


def commit_of(before: np.ndarray, after: np.ndarray) -> str | None:
    """Why ``after`` is not ``before`` plus one new object, or None when it is: one id
    (max + 1) painted only on unlabelled voxels, at least one of them, nothing else changed."""
    changed = before != after
    if not changed.any():
        return "no voxel changed"
    if before[changed].any():
        return f"{int(before[changed].astype(bool).sum())} labelled voxels were overwritten"
    new_ids = np.unique(after[changed])
    expected = int(before.max()) + 1
    if new_ids.tolist() != [expected]:
        return f"the new voxels have ids {new_ids.tolist()}, expected only {expected}"
    return None
