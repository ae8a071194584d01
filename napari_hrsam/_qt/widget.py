"""The dock widget: click on an image, see the mask, commit it into a labels layer.

All segmentation logic lives in ``napari_hrsam.engine.session.Session``; this module only links
napari layers, mouse clicks and keys to it, and runs the session's heavy methods in a
background worker (``_qt.worker.TaskRunner`` on napari's ``create_worker``) so napari stays responsive.

Flow of one click: the mouse callback adds a point to the prompts layer -> the layer's
data event hands every prompt of the current slice to ``Session.set_prompts`` -> the
session's pending request is computed in the worker -> ``Session.apply`` stores it (a
stale answer, made before a newer click, is dropped by the session's generation counter)
-> the preview layer is repainted.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QEvent
from qtpy.QtWidgets import QWidget

from napari_hrsam._qt.autosave_choice import AutosaveChoice
from napari_hrsam._qt.clicks import click_callback
from napari_hrsam._qt.controls import (
    NEW_LABELS,
    build_controls,
    fill_layer_combo,
    select as _select,
)
from napari_hrsam._qt.edit_object import EditObjectAction
from napari_hrsam._qt.scheduling import USER_ERRORS, PredictionScheduling
from napari_hrsam._qt.segment_all import SegmentAllAction
from napari_hrsam._qt.series_mode import SeriesMode
from napari_hrsam._qt.session_choice import SessionChoice
from napari_hrsam._qt.session_shelf import SessionShelf
from napari_hrsam._qt.strokes import StrokeActions
from napari_hrsam._qt.worker import TaskRunner
from napari_hrsam.engine.cancel import cancel_click
from napari_hrsam.engine.embedding_cache import EmbeddingCache
from napari_hrsam.engine.mask_policy import MaskPolicy
from napari_hrsam.engine.model_choice import ModelChoice, ModelStore
from napari_hrsam.engine.session import Session

from . import keys as _keys, prompt_layers as layers_io


class HRSAMWidget(SessionChoice, PredictionScheduling, SegmentAllAction, EditObjectAction, StrokeActions,
                  AutosaveChoice, SeriesMode, QWidget):
    """Click-to-segment with HRSAM. See ``_keys.KEY_BINDINGS`` for the shortcuts.

    ``predictor_factory(choice)`` (a ``ModelChoice``) makes the predictor for a new session; the
    default builds ``hrsam_model.Predictor`` lazily in the worker. Tests may replace it.
    """

    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        # napari hands plugins a PublicOnlyProxy that wraps every layer it returns in a new
        # proxy; the widget keeps layers and compares them by identity, so it uses the viewer
        # itself (public API only).
        self.viewer = getattr(napari_viewer, "__wrapped__", napari_viewer)
        self._store = ModelStore()
        self.predictor_factory = self._store.predictor
        self._cache = EmbeddingCache()
        self._session: Session | None = None
        self._session_config = None
        self._predictor_config = None  # (model spec, target size) of the session's predictor
        self._shelf = SessionShelf()  # the sessions of the other labels layers
        self._labels_layer: Labels | None = None
        self._image_layer: Image | None = None
        self._points = self._boxes = self._preview = self._painter = None
        self._syncing = False  # True while the widget itself rewrites the prompt layers
        self._queued: str | None = None  # "commit" waiting for a running prediction
        self._running = None  # (session, request) of the click computation in the worker
        self._halted_generation = None  # a failed request that could not be retracted
        self._described: set = set()
        self._runner = TaskRunner(self)
        build_controls(self)
        self._update_buttons()
        self._runner.busy_changed.connect(self._on_busy_changed)
        self._runner.progress.connect(self._on_progress)
        events, dims = self.viewer.layers.events, self.viewer.dims.events
        connections = [(events.inserted, self._on_layers_changed), (events.removed, self._on_layers_changed),
                       (dims.current_step, self._on_slice_changed), (dims.order, self._on_slice_changed)]
        for emitter, slot in connections:
            emitter.connect(slot)
        uninstall_keys = _keys.install(self.viewer, self)
        runner, drag_callbacks = self._runner, self.viewer.mouse_drag_callbacks
        elsewhere = click_callback(self._on_click_elsewhere, lambda _viewer: self._click_is_elsewhere())
        drag_callbacks.append(elsewhere)

        def shutdown(*_):
            runner.abort()
            uninstall_keys()
            if elsewhere in drag_callbacks:
                drag_callbacks.remove(elsewhere)
            for emitter, slot in connections:
                emitter.disconnect(slot)
            connections.clear()

        self.shutdown = shutdown  # a closure: safe to call after the Qt object is gone
        self.destroyed.connect(shutdown)
        self._refresh_layer_choices()

    # ------------------------------------------------------------------ choices
    @property
    def model_choice(self) -> ModelChoice:
        return ModelChoice(self.model_combo.currentText(), self.checkpoint_edit.text().strip(),
                           self.device_combo.currentText(), int(self.size_combo.currentText()))

    @property
    def mask_policy(self) -> MaskPolicy:
        return MaskPolicy(keep_clicked_pieces=self.pieces_check.isChecked(),
                          hold_clicks=self.hold_check.isChecked())

    @property
    def image_layer(self) -> Image | None:
        layer = self.image_combo.currentData()
        return layer if layer in self.viewer.layers else None

    @property
    def session(self) -> Session | None:
        return self._session

    @property
    def busy(self) -> bool:
        """True while the worker runs or a prediction is due (tests wait on this)."""
        return self._runner.busy or (self._session is not None and self._session.pending
                                     and self._halted_generation != self._session.generation)

    @property
    def labels_layer(self) -> Labels | None:
        """The layer that receives committed objects (None until the first session)."""
        return self._labels_layer

    @property
    def points_layer(self):
        return self._points

    @property
    def box_layer(self):
        return self._boxes

    @property
    def preview_layer(self):
        return self._preview

    def _helpers(self) -> tuple:
        return tuple(layer for layer in (self._points, self._boxes, self._preview) if layer is not None)

    def _refresh_layer_choices(self):
        """Fill the image and labels combos from the viewer, keeping the current choices."""
        helpers = self._helpers()
        fill_layer_combo(self.image_combo, self.viewer.layers, Image, helpers)
        if not fill_layer_combo(self.labels_combo, self.viewer.layers, Labels, helpers, extra=NEW_LABELS):
            _select(self.labels_combo, self._labels_layer)
        if self.image_layer is not self._image_layer:
            self._on_image_chosen()

    def _on_layers_changed(self, event=None):
        if event is not None and event.type == "removed":
            removed = event.value
            if removed is self._points:
                self._points = None
            elif removed is self._boxes:
                self._boxes = None
            elif removed is self._preview:
                self._preview = self._painter = None
        self._refresh_layer_choices()

    def _on_image_chosen(self, _index=None):
        image = self.image_layer
        if image is self._image_layer:
            return
        if self._image_layer is not None:
            self._image_layer.events.contrast_limits.disconnect(self._on_contrast_changed)
        self._image_layer = image
        self._drop_session()
        self._shelf.clear()
        self._remove_helpers()
        self._labels_layer = None  # another image gets its own labels
        chosen = self.labels_combo.currentData()
        if image is not None and chosen is not None and tuple(chosen.data.shape) != layers_io.spatial_shape(image):
            _select(self.labels_combo, None)  # "New labels layer" rather than a certain shape error
        if image is not None:
            image.events.contrast_limits.connect(self._on_contrast_changed)
            self._add_helpers(image)
            self.status_label.setText(f"Click on an object in '{image.name}'.")
        self._choose_autosave_default(image)

    # ------------------------------------------------------------------ helper layers
    def _add_helpers(self, image):
        with self._quiet():
            self._points, self._boxes, self._preview = layers_io.add_helper_layers(self.viewer, image)
        self._painter = layers_io.PreviewPainter(self._preview)
        self._points.mouse_drag_callbacks.append(click_callback(self._on_click, lambda layer: layer.mode == "pan_zoom"))
        self._points.events.data.connect(self._on_prompt_layer_changed)
        self._boxes.events.data.connect(self._on_prompt_layer_changed)
        self._preview.events.paint.connect(self._on_preview_painted)
        self._on_polarity_changed(self.negative_check.isChecked())
        self.viewer.layers.selection.active = self._points
        self._refresh_layer_choices()

    def _remove_helpers(self):
        for layer in self._helpers():
            if layer in self.viewer.layers:
                with self._quiet():
                    self.viewer.layers.remove(layer)
        self._points = self._boxes = self._preview = self._painter = None

    @contextmanager
    def _quiet(self):
        """Rewrite the prompt layers without their events reaching the session."""
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ prompts
    def _on_click(self, event):
        """A click on the prompts layer in pan/zoom mode adds a point; the right button, or
        the negative toggle, makes it negative. (In napari's own add mode the layer adds
        points itself, with the toggle's polarity.)"""
        negative = event.button == 2 or self.negative_check.isChecked()
        self.add_point_at(event.position, positive=not negative)

    def _click_is_elsewhere(self) -> bool:
        """A click napari gives to another layer than the prompts layer, which does nothing
        there (that layer is in pan/zoom mode, or none is selected)."""
        active = self.viewer.layers.selection.active
        return self._points is not None and active is not self._points and getattr(active, "mode", "pan_zoom") == "pan_zoom"

    def _on_click_elsewhere(self, _event):
        active = self.viewer.layers.selection.active
        selected = f"'{active.name}' is selected" if active is not None else "no layer is selected"
        text = f"To add a point, select the '{layers_io.POINTS_NAME}' layer ({selected})."
        show_info(f"HRSAM: {text}")
        self.status_label.setText(text)

    def add_point_at(self, world_position, positive: bool = True) -> bool:
        """Add a prompt point at a viewer (world) position; False with a message if unusable."""
        image = self.image_layer
        if image is None or self._points is None:
            show_error("HRSAM: no image layer; open an image first.")
            return False
        if self.viewer.dims.ndisplay != 2:
            show_error("HRSAM: switch to the 2-D view (Ctrl+Y) to click on a slice.")
            return False
        coords = self._points.world_to_data(world_position)
        shape = layers_io.spatial_shape(image)
        if not layers_io.inside(shape, coords):
            show_error(f"HRSAM: the click at {tuple(round(float(c), 1) for c in coords)} is outside "
                       f"'{image.name}' (shape {shape}); click on the image.")
            return False
        self._points.feature_defaults = {"label": layers_io.polarity_label(positive)}
        self._points.add(np.asarray(coords, dtype=float)[None])
        self._points.feature_defaults = {"label": layers_io.polarity_label(not self.negative_check.isChecked())}
        return True

    def _on_prompt_layer_changed(self, event=None):
        action = str(getattr(event, "action", "changed"))
        if self._syncing or action.endswith("ing"):  # "adding", "removing", "changing": not final
            return
        if self._points is not None:
            layers_io.color_points(self._points)
        if not self._take_strokes():  # paths and polygons on the box layer are scribbles and lassos
            self._send_prompts()

    def _send_prompts(self):
        """Hand every prompt on the current slice to the session (one undo step)."""
        if self._points is None or self._boxes is None:
            return
        try:
            session, new = self._ensure_session()
            points, labels, box = layers_io.prompts_on(session.slice_key, self._points, self._boxes)
            self._runner.cancel()  # a running propagation is stale now
            session.set_prompts(points, labels, box, predict=False)
        except USER_ERRORS as err:
            show_error(f"HRSAM: {err}")
            self._show_session_prompts()
            return
        if new or len(layers_io.rectangles_on(session.slice_key, self._boxes)) > 1:
            self._show_session_prompts()  # drop prompts of an old session, or a replaced box
        self._after_change()

    def _show_session_prompts(self):
        """Make the prompt layers show the session's user prompts (after undo, errors, ...)."""
        if self._points is None or self._boxes is None:
            return
        with self._quiet():
            if self._session is None:
                layers_io.show_points(self._points, np.empty((0, self._points.ndim)), [])
                layers_io.show_boxes(self._boxes, [])
                return
            coords, labels, boxes = layers_io.user_prompts(self._session)
            layers_io.show_points(self._points, coords, labels)
            layers_io.show_boxes(self._boxes, boxes)

    def toggle_polarity(self):
        self.negative_check.setChecked(not self.negative_check.isChecked())

    def _on_polarity_changed(self, negative: bool):
        # napari's own add mode (P) uses the defaults, so they follow the toggle too
        if self._points is not None:
            self._points.feature_defaults = {"label": layers_io.polarity_label(not negative)}

    def _on_option_changed(self, _checked=None):
        if self._session is not None:  # show the current object the new way at once
            self._session.mask_policy = self.mask_policy
            self._session.zoom_in = self.zoom_check.isChecked()
            self._session.predict_again()
            self._after_change()

    # ------------------------------------------------------------------ actions (buttons, keys)
    def commit(self):
        """Write the object into the labels layer with the next free id."""
        session = self._session
        if session is None or session.object.empty:
            show_info("HRSAM: nothing to commit; click on an object first.")
            return
        if session.pending and self._halted_generation == session.generation:
            show_info("HRSAM: the last segmentation was cancelled or failed; click again (or undo) first.")
            return
        if self._runner.busy or session.pending:
            self._queued = "commit"
            self.status_label.setText("Will commit when the segmentation finishes…")
            return
        if not self._labels_layer_ready():
            return
        try:
            label_id = session.commit()
        except USER_ERRORS as err:
            message = str(err)
            if "overwrite" in message:  # the Python API's way out; the widget never overwrites
                message = (f"nothing to commit: every pixel of the object already has a label in "
                           f"'{self._labels_layer.name}'. Erase those labels there first (eraser tool), "
                           "or choose another labels layer.")
            show_error(f"HRSAM: {message}")
            return
        self._labels_layer.refresh()
        self._show_session_prompts()
        self._after_change()
        saved = f" ({session.autosave_status})" if session.autosave_status else ""
        self.status_label.setText(f"Committed object {label_id} to '{self._labels_layer.name}'{saved}.")

    def next_object(self):
        """Commit the object if it has a mask, else forget its prompts; then start a new one."""
        session = self._session
        if session is not None and (session.object_masks() or session.pending):
            self.commit()
        elif session is not None and not session.object.empty:
            self.reset()

    def cancel(self):
        """The Cancel button. A propagation stops and keeps the slices it finished. A click's
        segmentation is dropped at once and the click taken back, or zoom-in's closer look
        dropped and the whole-slice mask kept (``_cancel``). The model's encoder stops at its
        next block; other work finishes unseen."""
        if not self._runner.busy:
            return
        self._runner.abort()
        session, request = self._running or (None, None)
        if request is None or session is not self._session:
            return
        text = cancel_click(session, request)
        if text is None:
            self._halted_generation = session.generation
            text = "Cancelled: the mask is not up to date with the clicks; click again (or undo)."
        self._queued = None
        self._show_session_prompts()
        self._after_change()
        self.status_label.setText(text)

    def undo(self):
        self._history("undo")

    def redo(self):
        self._history("redo")

    def reset(self):
        if self._session is None or self._session.object.empty:
            return
        self._runner.cancel()
        self._session.reset()
        self._show_session_prompts()
        self._after_change()

    def _history(self, which: str):
        session = self._session
        if session is None:
            show_info(f"HRSAM: nothing to {which}.")
            return
        self._runner.cancel()
        if not getattr(session, which)():
            show_info(f"HRSAM: nothing to {which}.")
            return
        self._queued = None
        self._halted_generation = None
        if self._labels_layer is not None:
            self._labels_layer.refresh()
        self._show_session_prompts()
        self._after_change()

    def propagate_forward(self):
        self.propagate("forward")

    def propagate_backward(self):
        self.propagate("backward")

    def propagate(self, direction: str = "both"):
        """Carry the current slice's mask to neighbouring slices (in the worker)."""
        session = self._session
        if session is None:
            show_error("HRSAM: segment an object on this slice first; propagation starts from its mask.")
            return
        if self._runner.busy or session.pending:
            show_info("HRSAM: busy; propagate when the segmentation has finished.")
            return
        try:
            request = session.propagation_request(direction, max_slices=self.range_spin.value() or None)
        except USER_ERRORS as err:
            show_error(f"HRSAM: {err}")
            return
        runner, self._running = self._runner, None
        self.status_label.setText(f"Propagating {direction}…")
        runner.run(lambda: session.compute_propagation(request, runner.report, runner.cancelled),
                   lambda result: self._on_propagated(session, result),
                   lambda err: self._on_task_error(session, request, err))

    def _on_propagated(self, session, result):
        reasons = ", ".join(f"{'forward' if d > 0 else 'backward'}: {why}" for d, why in result.stop_reasons.items())
        if session is not self._session or result.generation != session.generation:
            self.status_label.setText("Propagation dropped: the object changed meanwhile.")
        elif not result.slices:
            self.status_label.setText(f"Propagation found nothing to add: stopped {reasons}.")
        if session is not self._session or not session.apply(result):
            self._schedule()
            return
        note = " (cancelled)" if result.cancelled else ""
        self._after_change()
        self.status_label.setText(f"Propagated to {len(result.slices)} slices{note}. Stopped {reasons}.")

    # ------------------------------------------------------------------ state display
    def _update_status(self):
        session = self._session
        if session is None or self._runner.busy:
            return
        parts = [f"object {session.next_label_id}"]
        if session.iou is not None:
            parts.append(session.warning or f"predicted IoU {session.iou:.2f}")
        parts.append(f"{len(session.object_masks())} slice(s) segmented, {len(session.objects)} committed")
        self.status_label.setText(", ".join(parts) + (f"; {session.autosave_status}" if session.autosave_status else ""))

    def _update_buttons(self):
        session = self._session
        idle = not self._runner.busy
        has_object = session is not None and not session.object.empty
        self.commit_button.setEnabled(has_object)
        self.next_button.setEnabled(has_object)
        self.reset_button.setEnabled(has_object)
        self.undo_button.setEnabled(session is not None and session.can_undo)
        self.redo_button.setEnabled(session is not None and session.can_redo)
        volume = self._image_layer is not None and len(layers_io.spatial_shape(self._image_layer)) > 2
        for button in (self.backward_button, self.forward_button, self.both_button):
            button.setEnabled(idle and volume and session is not None and session.preview_sparse is not None)
        self.cancel_button.setEnabled(not idle)
        self.segment_all_button.setEnabled(idle and self._image_layer is not None)

    def closeEvent(self, event):
        self.shutdown()
        super().closeEvent(event)

    def event(self, event):
        # napari's remove_dock_widget un-parents the widget instead of closing it
        if event.type() == QEvent.Type.ParentChange and self.parent() is None:
            self.shutdown()
        return super().event(event)
