"""The widget's scheduler: after every change, repaint and start the next due prediction in the
background runner (one task at a time), then take its answer or its error back on the main thread.
``HRSAMWidget`` inherits it; the segmentation itself is the session's (``Session.pending_request``,
``compute``, ``apply``, ``discard``)."""
from __future__ import annotations

from napari.utils.notifications import show_error, show_warning

from napari_hrsam.engine.model_choice import EncodingCancelled
from napari_hrsam.engine.state import PropagationRequest

USER_ERRORS = (ValueError, FileNotFoundError)  # said in one line; anything else names its type


class PredictionScheduling:
    """Background predictions for ``HRSAMWidget`` (which owns the session, runner and layers)."""

    def _after_change(self):
        """Repaint, then start the next due prediction."""
        if self._painter is not None and self._session is not None:
            self._painter.update(self._session)
        self._update_status()
        self._update_buttons()
        self._schedule()

    def _schedule(self):
        session = self._session
        if self._runner.busy or session is None:
            return
        request = None
        if self._halted_generation != session.generation:
            request = session.pending_request()
        if request is None:
            queued, self._queued = self._queued, None
            if queued == "commit" and not session.pending:
                self.commit()
            return
        self.status_label.setText("Segmenting… (the first click on a slice computes its embedding)")
        self._running = (session, request)
        self._runner.run(lambda: session.compute(request),
                         lambda prediction: self._on_prediction(session, prediction),
                         lambda err: self._on_task_error(session, request, err), interruptible=True)

    def _on_prediction(self, session, prediction):
        # an aborted task's answer (Cancel, another model or session) is never shown
        if not self._runner.aborted() and session is self._session and session.apply(prediction):
            self._describe_model(session)
            if session.warning and not session.pending:  # no contrast: the mask is left empty
                show_warning(f"HRSAM: {session.warning}")
            self._after_change()
        else:
            self._schedule()

    def _on_task_error(self, session, request, err):
        if isinstance(err, EncodingCancelled) or self._runner.aborted():  # Cancel dealt with it
            self._schedule()
            return
        message = str(err) if isinstance(err, USER_ERRORS) else f"{type(err).__name__}: {err}"
        show_error(f"HRSAM: {message}")
        if session is self._session:
            # A failed prediction takes back the prompt that asked for it; a failed
            # propagation changed nothing (its request was made from the last prompt, which
            # must stay).
            if not isinstance(request, PropagationRequest) and not session.discard(request):
                self._halted_generation = session.generation  # retry only after the next change
            self._queued = None
            self._show_session_prompts()
            self._after_change()

    def _describe_model(self, session):
        predictor = session.predictor
        choice = getattr(predictor, "choice", None)
        if choice is None or not getattr(predictor, "built", False) or choice in self._described:
            return
        self._described.add(choice)
        text = choice.describe()
        self.model_label.setText(f"Model: {text}")
        if "RANDOM" in text:
            show_warning(f"HRSAM: {text}")

    def _on_busy_changed(self, busy: bool):
        self.progress_bar.setVisible(busy)
        if busy:
            self.progress_bar.setRange(0, 0)  # busy indicator until a task reports progress
        self._update_buttons()

    def _on_progress(self, done: int, total: int):
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
