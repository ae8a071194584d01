"""The widget's autosave: the folder a session saves to (``Session(..., autosave=DIR)``).

For an image opened from a file the folder defaults to ``<file>.hrsam`` next to it, and autosave is
on; an image of a series (``series_mode``) saves in the series' project folder; an image without a
file (a sample, an array from a notebook) has no default: type a folder to autosave it. Choosing an image whose folder holds saved work resumes it at once (its labels appear
in a new labels layer). The status line says where the labels go, or that saving failed."""
from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_info, show_warning

from napari_hrsam.engine.autosave import FOLDER_SUFFIX, STATE_FILE


def default_folder(image_layer) -> str:
    """``<file>.hrsam`` next to the file the layer was read from, else ""."""
    path = getattr(getattr(image_layer, "source", None), "path", None)
    return str(Path(path).with_name(Path(path).name + FOLDER_SUFFIX)) if path else ""


class AutosaveChoice:
    """Autosave folder handling for ``HRSAMWidget``."""

    def autosave_folder(self) -> str | None:
        """The folder new sessions save to, or None (autosave off or no folder given)."""
        folder = self.autosave_edit.text().strip()
        return folder if self.autosave_check.isChecked() and folder else None

    def _choose_autosave_default(self, image) -> None:
        """Point the folder at the image's default and resume saved work found there."""
        folder = self.series_autosave_folder(image) or (default_folder(image) if image is not None else "")
        self.autosave_edit.setText(folder)
        folder = self.autosave_folder()
        if folder is None or not (Path(folder) / STATE_FILE).is_file():
            return
        try:
            session, _ = self._ensure_session()
        except (ValueError, OSError) as err:
            show_warning(f"HRSAM: cannot resume from {folder}: {err}")
            return
        if self._labels_layer is not None:
            self._labels_layer.refresh()
        show_info(f"HRSAM: resumed {len(session.objects)} object(s) from {folder}")

    def _on_autosave_changed(self, _value=None) -> None:
        """Another folder (or autosave switched): the next prompt starts a session saving there
        (the folder is part of the session's configuration, ``_ensure_session``); the same folder
        again (an edit box that only lost focus) changes nothing."""
        self._update_status()

    def _warn_if_not_saved(self, session) -> None:
        status = session.autosave_status
        if status is not None and status.startswith("NOT SAVED"):
            show_warning(f"HRSAM: {status}")
