"""One background task at a time, with answers delivered on the main thread.

The session allows its heavy methods in ONE worker thread at a time, so the widget never
runs two tasks at once: it asks ``busy`` and starts the next task when the last one ends.
Exceptions never escape into napari's handler: they come back as an answer, so the widget
can turn them into a notification and restore the state.

Two ways to stop a task: ``cancel()`` asks a long task to stop at its next check and keep
what it finished (a propagation; also used when a task's answer became stale);
``abort()`` is the user's Cancel: it cancels too and marks the task aborted (``aborted()``
stays True while ``on_done``/``on_error`` run, so they can tell a Cancel from a stale
answer), and an ``interruptible`` task's encoder stops at its next block
(``napari_hrsam.engine.model_choice.LazyPredictor.should_cancel``).

The threads are napari's own (``napari.qt.threading.create_worker``); this class adds what a plain
function worker lacks: one task at a time, and thread-safe flags that the encoder polls between
blocks (a function worker's ``quit()`` only takes effect at a generator's ``yield``, which a
single encoder call never reaches).
"""
from __future__ import annotations

import threading
from typing import Callable

from qtpy.QtCore import QObject, Signal


class TaskRunner(QObject):
    """Runs callables in a napari thread worker and calls back on the main thread."""

    busy_changed = Signal(bool)
    progress = Signal(int, int)  # (done, total) from a long task, e.g. propagation

    def __init__(self, parent=None):
        super().__init__(parent)
        self._worker = None
        self.cancel_event = threading.Event()
        self.abort_event = threading.Event()
        self._interruptible = False

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def run(self, task: Callable[[], object], on_done: Callable[[object], None],
            on_error: Callable[[BaseException], None], interruptible: bool = False) -> None:
        """Start ``task()`` in a worker thread; then ``on_done(result)`` or ``on_error(exc)``.
        ``interruptible``: ``abort()`` may break the task off midway (see ``interrupted``)."""
        from napari.qt.threading import create_worker

        if self._worker is not None:
            raise RuntimeError("a task is already running")
        self.cancel_event.clear()
        self.abort_event.clear()
        self._interruptible = bool(interruptible)

        def guarded():
            try:
                return True, task()
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                return False, exc

        def finished(answer):
            ok, value = answer
            self._worker = None
            try:
                (on_done if ok else on_error)(value)
            finally:
                if self._worker is None:
                    self.busy_changed.emit(False)

        worker = create_worker(guarded, _start_thread=False)
        worker.returned.connect(finished)
        self._worker = worker
        self.busy_changed.emit(True)
        worker.start()

    def report(self, done: int, total: int) -> None:
        """Thread-safe progress report (Qt queues the signal to the main thread)."""
        self.progress.emit(int(done), int(total))

    def cancel(self) -> None:
        self.cancel_event.set()

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def abort(self) -> None:
        self.abort_event.set()
        self.cancel_event.set()

    def aborted(self) -> bool:
        return self.abort_event.is_set()

    def interrupted(self) -> bool:
        """Thread-safe: True once an interruptible task is aborted (its work may stop anywhere,
        so a task that keeps partial results, like a propagation, is not interruptible)."""
        return self._interruptible and self.abort_event.is_set()
