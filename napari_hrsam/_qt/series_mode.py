"""The widget's image series (``napari_hrsam.io.series``): open a folder of images, go through
them with Previous / Next, see "12 of 40 done"; each image's labels autosave in the series'
project folder as it goes, and opening the folder again resumes where the user stopped.

Next marks the image being left as done (Previous does not). An image is shown as its own layer
(and its labels as another); leaving it removes both from the viewer: its work is on disk."""
from __future__ import annotations

from pathlib import Path

from napari.layers import Image
from napari.utils.notifications import show_error, show_info

from napari_hrsam.io.reader import layer_data
from napari_hrsam.io.series import Series

from .scheduling import USER_ERRORS


class SeriesMode:
    """Series navigation for ``HRSAMWidget``."""

    _series: Series | None = None
    _series_layer = None

    def open_series(self, source) -> bool:
        """Open a folder (or list) of images as a series and show its current image."""
        try:
            series = Series.open(source)
        except USER_ERRORS as err:
            show_error(f"HRSAM: {err}")
            return False
        self._series = series
        return self.show_series_image(series.current)

    def series_autosave_folder(self, image_layer) -> str | None:
        """The autosave folder of ``image_layer`` when it is the series' image shown, else None."""
        if self._series is None or image_layer is None or image_layer is not self._series_layer:
            return None
        return str(self._series.autosave_folder(self._series.current))

    def next_image(self) -> bool:
        if self._series is None:
            show_info("HRSAM: open a series first (Open series…).")
            return False
        if not self._can_leave_image():
            return False
        self._series.set_done(self._series.current)
        if self._series.current + 1 >= len(self._series.images):
            self._update_series_label()
            show_info(f"HRSAM: that was the last image; {self._series_progress_text()}.")
            return False
        return self.show_series_image(self._series.current + 1)

    def previous_image(self) -> bool:
        if self._series is None or self._series.current == 0 or not self._can_leave_image():
            return False
        return self.show_series_image(self._series.current - 1)

    def show_series_image(self, index: int) -> bool:
        """Replace the series' image (and its labels) in the viewer by image ``index``."""
        path = self._series.go(index)
        try:
            array, kwargs, _ = layer_data(path)
        except USER_ERRORS as err:
            show_error(f"HRSAM: cannot read {Path(path).name}: {err}")
            return False
        old, labels = self._series_layer, self._labels_layer
        self._series_layer = None
        for layer in (old, labels if old is not None else None):
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self._series_layer = Image(array, **kwargs)  # known before napari announces it, so
        self.viewer.add_layer(self._series_layer)  # its autosave folder is the series' (and resumes)
        if self.image_layer is not self._series_layer:
            from .controls import select

            select(self.image_combo, self._series_layer)
            self._on_image_chosen()
        self._update_series_label()
        return True

    def _can_leave_image(self) -> bool:
        session = self._session
        if session is not None and not session.object.empty:
            show_error("HRSAM: an object is in progress on this image: commit it (C) or reset it "
                       "(Shift+R) before changing images.")
            return False
        return True

    def _series_progress_text(self) -> str:
        done, total = self._series.progress
        return f"image {self._series.current + 1} of {total}, {done} of {total} done"

    def _update_series_label(self) -> None:
        if self._series is not None:
            self.series_label.setText(self._series_progress_text())
