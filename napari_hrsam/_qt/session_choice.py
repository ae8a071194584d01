"""The widget's session choice: which ``Session`` its clicks go to, and what happens to it
when the image, labels layer, model, checkpoint, device or target size changes.

A mixin of ``_widget.HRSAMWidget`` (it uses the widget's layers, combos, runner and
``_after_change``); split off to keep one idea per module. The rules:

- another image: the session and every kept one are dropped (labels stay in their layers);
- another model, checkpoint, device or target size: the session stays, with its prompts
  and whole undo history; its masks are drawn again by the new predictor
  (``Session.set_predictor``);
- another labels layer: each labels layer keeps its own session (object in progress and
  undo history, ``_session_shelf``); choosing a layer again takes its session back.
"""
from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_error, show_info

from napari_hrsam._qt.controls import NEW_LABELS, select as _select
from napari_hrsam.engine.session import Session

from . import prompt_layers as layers_io

GEOMETRY_KEYS = ("spacing", "origin", "direction")


class SessionChoice:
    """Session bookkeeping of the widget (see the module docstring)."""

    def _drop_session(self, *_):
        """Forget the session (another image, replaced data); committed labels stay in their layer."""
        self._runner.abort()
        self._session = None
        self._session_config = None
        self._queued = None
        if self._points is not None:
            with self._quiet():
                layers_io.show_points(self._points, np.empty((0, self._points.ndim)), [])
                layers_io.show_boxes(self._boxes, [])
        if self._painter is not None:
            self._painter.clear()
        self._update_buttons()

    def _current_slice(self, image) -> tuple[tuple[int, int], list[int]]:
        """(displayed image axes, index on every image axis) of what the viewer shows."""
        dims = self.viewer.dims
        if dims.ndisplay != 2:
            raise ValueError("Switch to the 2-D view (Ctrl+Y) to prompt on a slice.")
        offset = dims.ndim - image.ndim
        axes = tuple(int(a) - offset for a in dims.order[-2:])
        if min(axes) < 0:
            raise ValueError(f"The viewer shows axes that '{image.name}' does not have; reset the axis order.")
        position = [int(round(float(v))) for v in image.world_to_data(dims.point)]
        shape = layers_io.spatial_shape(image)
        if any(not 0 <= p < n for a, (p, n) in enumerate(zip(position, shape)) if a not in axes):
            raise ValueError(f"The current slice lies outside '{image.name}'; move the slider onto the image.")
        return axes, position

    def _ensure_session(self) -> tuple[Session, bool]:
        """The session for the current choices, made anew when they changed; (session, new)."""
        image = self.image_layer
        if image is None:
            raise ValueError("No image layer: open an image first (File > Open, or File > Open Sample > napari-hrsam).")
        axes, position = self._current_slice(image)
        chosen = self.labels_combo.currentData()
        labels = chosen if chosen in self.viewer.layers else None
        if labels is None and self._labels_layer is not None and self._labels_layer not in self.viewer.layers:
            labels = self._labels_layer  # the output layer was deleted: keep it, commit brings it back
        shape = layers_io.spatial_shape(image)
        if labels is not None and tuple(labels.data.shape) != shape:
            raise ValueError(
                f"The labels layer '{labels.name}' has shape {tuple(labels.data.shape)} but the image "
                f"'{image.name}' has shape {shape}; choose '{NEW_LABELS}' or a labels layer of that shape."
            )
        if labels is not None and labels.multiscale:
            raise ValueError(f"The labels layer '{labels.name}' is multiscale; choose '{NEW_LABELS}'.")
        autosave = self.autosave_folder()
        config = (id(image), id(image.data), None if labels is None else id(labels.data), autosave)
        if self._session is not None and config == self._session_config:
            self._use_chosen_model()
            self._session.set_slice(position, axes)
            return self._session, False
        predictor = self._new_predictor()
        data = list(image.data) if image.multiscale else image.data  # a pyramid: the model reads the level it needs
        labels_data = labels.data if labels is not None else np.zeros(shape, np.uint16)
        session = Session(data, predictor, labels=labels_data, rgb=image.rgb, displayed_axes=axes,
                          position=position, contrast_limits=self._contrast_of(image), cache=self._cache,
                          zoom_in=self.zoom_check.isChecked(), mask_policy=self.mask_policy,
                          autosave=autosave)
        self._warn_if_not_saved(session)
        if labels is None:  # only now, so a failed start adds nothing
            metadata = {k: image.metadata[k] for k in GEOMETRY_KEYS if k in image.metadata}
            with self._quiet():
                labels = self.viewer.add_labels(labels_data, name=f"{image.name} labels", metadata=metadata,
                                                **layers_io.placement(image))
            if self._preview is not None:  # below the preview and prompts, above the image
                self.viewer.layers.move(self.viewer.layers.index(labels), self.viewer.layers.index(self._preview))
            self._refresh_layer_choices()
            _select(self.labels_combo, labels)
            config = config[:2] + (id(labels.data), autosave)
            self._select_prompts()
        self._session, self._session_config, self._labels_layer = session, config, labels
        self._predictor_config = self.model_choice
        self._halted_generation = None
        return session, True

    def _new_predictor(self):
        predictor = self.predictor_factory(self.model_choice)
        if hasattr(predictor, "should_cancel"):  # Cancel stops its encoder (LazyPredictor)
            predictor.should_cancel = self._runner.interrupted
        return predictor

    def _use_chosen_model(self) -> bool:
        """Give the session a predictor for the chosen model and size if it has another one:
        prompts and undo history stay, masks are drawn again (``Session.set_predictor``)."""
        chosen = self.model_choice
        if self._session is None or self._predictor_config == chosen:
            return False
        self._session.set_predictor(self._new_predictor())
        self._predictor_config = chosen
        self._halted_generation = self._queued = None
        return True

    def _on_model_changed(self, *_):
        """Model, checkpoint, device or target size changed."""
        if self._session is not None and self._predictor_config != self.model_choice:
            self._runner.abort()  # the old model's answer is of no use: stop its encoder
            self._use_chosen_model()
            self._after_change()

    def _on_labels_chosen(self, _index=None):
        """Each labels layer has its own session (``_session_shelf``): put the current one
        aside, take the chosen layer's back (its undo history applies to its array only)."""
        old, chosen = self._session, self.labels_combo.currentData()
        if old is not None and chosen is not None and chosen.data is old.labels:
            return
        if old is not None:
            self._runner.cancel()
            self._shelf.put(old, self._predictor_config)
        self._session, self._labels_layer = None, chosen
        self._session_config = self._queued = self._halted_generation = None
        kept = self._shelf.take(chosen.data) if chosen is not None else None
        if kept is not None and self._image_layer is not None:
            self._session, self._predictor_config = kept
            self._session_config = (id(self._image_layer), id(self._image_layer.data), id(chosen.data))
            self._use_chosen_model()
            self._session.mask_policy = self.mask_policy
            self._session.zoom_in = self.zoom_check.isChecked()
            self._on_contrast_changed()  # settings changed while it was set aside hold for new clicks
        if old is not None and (old.can_undo or not old.object.empty):
            where = f"'{chosen.name}'" if chosen is not None else "a new labels layer"
            show_info(f"HRSAM: undo now works on {where}; the object in progress and undo history of "
                      f"'{self._layer_name(old.labels)}' are kept: choose it again to undo its commits.")
        self._show_session_prompts()
        if self._painter is not None:
            self._painter.clear()
        self._after_change()

    def _layer_name(self, data) -> str:
        return next((layer.name for layer in self.viewer.layers if getattr(layer, "data", None) is data), "the old labels")

    def _select_prompts(self):
        if self._points is not None and self._points in self.viewer.layers:
            self.viewer.layers.selection.active = self._points

    @staticmethod
    def _contrast_of(image):
        return None if image.rgb else tuple(float(v) for v in image.contrast_limits)

    def _on_contrast_changed(self, _event=None):
        if self._session is not None and self._image_layer is not None:
            self._session.set_contrast_limits(self._contrast_of(self._image_layer))

    def _on_slice_changed(self, _event=None):
        if self._session is None or self.image_layer is None:
            return
        try:
            axes, position = self._current_slice(self.image_layer)
            self._session.set_slice(position, axes)
        except ValueError:
            return  # 3-D view or a slider off the image: nothing to follow
        self._update_status()
        self._update_buttons()

    def _labels_layer_ready(self) -> bool:
        """The session's labels array must still be what the labels layer shows."""
        layer = self._labels_layer
        if layer is not None and layer not in self.viewer.layers:
            # The user deleted the layer: bring it back rather than paint into nothing.
            with self._quiet():
                self.viewer.add_layer(layer)
            _select(self.labels_combo, layer)
            self._select_prompts()  # napari selects the added layer; the next click must still count
            show_info(f"HRSAM: restored the labels layer '{layer.name}' (it holds the committed objects); "
                      "to start with empty labels choose another labels layer.")
        if layer is None or layer.data is not self._session.labels:
            show_error("HRSAM: the labels layer's data was replaced; prompt the object again.")
            self._drop_session()
            return False
        return True
