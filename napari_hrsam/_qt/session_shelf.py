"""Sessions of one image, one per labels layer (the widget's labels chooser).

A session's undo history is a list of edits of ITS labels array; it cannot apply to
another layer's array. So when the user chooses another labels layer the widget puts the
current session (object in progress and history) on this shelf, and choosing that layer
again takes it back down: its commits can be undone again. At most ``keep`` sessions are
kept (the oldest go first); choosing another image empties the shelf.
"""
from __future__ import annotations


class SessionShelf:
    def __init__(self, keep: int = 8):
        self.keep = int(keep)
        self._sessions: list = []

    def put(self, session, note=None) -> None:
        """Keep ``session`` with a ``note`` (replacing one for the same labels array)."""
        self._sessions = [kept for kept in self._sessions if kept[0].labels is not session.labels]
        self._sessions.append((session, note))
        del self._sessions[:-self.keep]

    def take(self, labels) -> tuple | None:
        """(session, note) kept for the labels array ``labels`` (off the shelf now), or None."""
        for kept in self._sessions:
            if kept[0].labels is labels:
                self._sessions.remove(kept)
                return kept
        return None

    def clear(self) -> None:
        self._sessions = []
