"""What the widget's Cancel does to the click whose segmentation is running (main thread).

- The click's step is still the latest: it is retracted (``Session.discard``: as if never
  made, no redo entry), so the click and its pending mask are gone.
- The running work is zoom-in's closer look at a click whose whole-slice mask is shown
  already: that mask becomes the click's answer, unrefined (a closer look at target size
  4096 is one more long encoding).
- Otherwise (a later change exists) nothing is changed: the caller stops computing until
  the user's next change.
"""
from __future__ import annotations

from dataclasses import replace

from napari_hrsam.engine.state import Prediction, PredictRequest


def cancel_click(session, request: PredictRequest) -> str | None:
    """Settle ``request``'s click in ``session``; the status text to show, or None when the
    slice stays pending."""
    if session.discard(request):
        return "Cancelled: the click was taken back."
    state = session.object.slices.get(request.key)
    result = None if state is None else state.result
    if (result is not None and state.pending and state.prompts == request.prompts
            and result.look_closer is not None and result.look_closer == request.region):
        unrefined = Prediction(session.generation, request.key, request.prompts, replace(result, look_closer=None))
        if session.apply(unrefined):
            return "Cancelled: the whole-slice mask is kept, not refined."
    return None
