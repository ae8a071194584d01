"""The widget's "Segment all": every object of the current slice (inside the rectangle of the
*HRSAM box* layer, when one is drawn on this slice), or of every slice of a volume linked into 3-D
objects ("all slices"), into the labels layer, in the background, with progress and Cancel; one
undo step (``Session.segment_all``). ``HRSAMWidget``
inherits it. Clicking afterwards segments new objects as usual; Undo takes the whole run back."""
from __future__ import annotations

from napari.utils.notifications import show_error, show_info

from napari_hrsam.engine.automatic import AutoSettings

from . import prompt_layers as layers_io


class SegmentAllAction:
    """``segment_all`` for ``HRSAMWidget`` (which owns the session, runner, layers and controls)."""

    def segment_all(self):
        """Find every object on the current slice (density from the widget) in the worker."""
        if self.image_layer is None:
            show_error("HRSAM: no image layer; open an image first.")
            return
        if self._runner.busy or (self._session is not None and self._session.pending):
            show_info("HRSAM: busy; segment all when the segmentation has finished.")
            return
        try:
            session, _ = self._ensure_session()
        except ValueError as err:
            show_error(f"HRSAM: {err}")
            return
        if not self._labels_layer_ready():
            return
        _, _, box = layers_io.prompts_on(session.slice_key, self.points_layer, self.box_layer)
        volume = len(session.spatial_shape) > 2 and self.all_slices_check.isChecked()
        slices = None
        if volume:  # every slice along the last axis not shown, linked into 3-D objects
            axis = [a for a in range(len(session.spatial_shape)) if a not in session.slice_key.displayed_axes][-1]
            slices = range(session.spatial_shape[axis])
        try:
            settings = AutoSettings(points_per_side=self.density_spin.value(), seeds=self.seeds_combo.currentText(),
                                    split_depth=AutoSettings().split_depth if self.split_touching_check.isChecked()
                                    else 0.0)
            request = session.segment_all_request(settings, box, slices=slices, link=volume)
        except ValueError as err:
            show_error(f"HRSAM: {err}")
            return
        runner, self._running = self._runner, None
        self.status_label.setText("Segmenting every object on this slice…")
        runner.run(lambda: session.compute_segment_all(request, runner.report, runner.cancelled),
                   lambda result: self._on_all_segmented(session, result),
                   lambda err: self._on_task_error(session, request, err), interruptible=True)

    def _on_all_segmented(self, session, result):
        if session is not self._session or not session.apply(result):
            self.status_label.setText("Segment all found nothing new (or the labels changed meanwhile).")
            self._schedule()
            return
        self._labels_layer.refresh()
        self._after_change()
        self.status_label.setText(f"Segment all: {len(result.objects)} objects found in "
                                  f"{result.seconds:.1f} s (Undo takes the run back).")
