"""The widget's "edit the object under the cursor" (key E): a committed object (clicked, found by
Segment all, or painted by hand) becomes the object in progress, its mask shown as it is; new
clicks refine it from that mask and Commit replaces it under the same id (``Session.edit_object``)."""
from __future__ import annotations

from napari.utils.notifications import show_error, show_info

from . import prompt_layers as layers_io


class EditObjectAction:
    """``edit_object_at_cursor`` for ``HRSAMWidget``."""

    def edit_object_at_cursor(self):
        self.edit_object_at(self.viewer.cursor.position)

    def edit_object_at(self, world_position) -> bool:
        """Edit the committed object at a viewer (world) position; False with a message if none."""
        labels = self._labels_layer if self._labels_layer is not None else self.labels_combo.currentData()
        if labels is None or self.image_layer is None:
            show_error("HRSAM: no labels layer to edit; commit an object first.")
            return False
        if self._runner.busy or (self._session is not None and self._session.pending):
            show_info("HRSAM: busy; edit when the segmentation has finished.")
            return False
        coords = labels.world_to_data(world_position)
        if not layers_io.inside(tuple(labels.data.shape), coords):
            show_error("HRSAM: the cursor is outside the labels layer; point at the object to edit.")
            return False
        label_id = int(labels.data[tuple(int(round(float(c))) for c in coords)])
        if label_id == 0:
            show_info("HRSAM: no object under the cursor (label 0); point at the object to edit.")
            return False
        try:
            session, _ = self._ensure_session()
            session.edit_object(label_id)
        except ValueError as err:
            show_error(f"HRSAM: {err}")
            return False
        self._show_session_prompts()
        self._after_change()
        self.status_label.setText(f"Editing object {label_id}: click to refine it, Commit replaces it "
                                  "under the same id (Undo takes the edit back).")
        return True

