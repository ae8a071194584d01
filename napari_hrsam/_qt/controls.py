"""The widget's Qt controls: layout, labels and the layer choosers (no segmentation logic)."""
from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
)

from hrsam_model.configs import DEFAULT_MODEL, DEVICES, TARGET_SIZES

from ..engine.automatic import SEEDS
from . import keys as _keys

MODEL_NAMES = ("hrsam_tiny", "hrsam_vit_b", "hrsam_plusplus_vit_b")
NEW_LABELS = "New labels layer"


def build_controls(widget) -> None:
    """Create the controls as attributes of ``widget`` and connect them to its actions."""
    widget.image_combo = QComboBox()
    widget.labels_combo = QComboBox()
    widget.model_combo = QComboBox()
    widget.model_combo.addItems(MODEL_NAMES)
    widget.checkpoint_edit = QLineEdit()
    widget.checkpoint_edit.setPlaceholderText("bundled weights")
    browse = QToolButton()
    browse.setText("…")
    browse.clicked.connect(lambda: _choose_checkpoint(widget))
    checkpoint_row = QHBoxLayout()
    checkpoint_row.addWidget(widget.checkpoint_edit)
    checkpoint_row.addWidget(browse)
    widget.device_combo = QComboBox()
    widget.device_combo.addItems(DEVICES)
    widget.size_combo = QComboBox()
    widget.size_combo.addItems([str(s) for s in TARGET_SIZES])
    widget.negative_check = QCheckBox("left click adds negative points (T)")
    widget.pieces_check = QCheckBox("only the pieces you clicked (off: the whole mask)")
    widget.pieces_check.setChecked(True)
    widget.hold_check = QCheckBox("every click holds (off: the mask as the model drew it)")
    widget.hold_check.setChecked(True)
    widget.hold_check.setToolTip("A click the mask contradicts keeps its pixel and its 4 "
                                 "neighbours on its side (hold_clicks of the mask policy)")
    widget.zoom_check = QCheckBox("zoom in on the object")
    widget.zoom_check.setChecked(True)
    widget.zoom_check.setToolTip("The first click finds the object on the whole slice; then each click "
                                 "is decoded in a window around it (1.4x its extent, at least 200 px), "
                                 "enlarged to the model's input size")
    widget.autosave_check = QCheckBox("autosave to")
    widget.autosave_check.setChecked(True)
    widget.autosave_check.setToolTip("Every commit, removal, edit and Segment all is saved (crash-safe) "
                                     "before the next action; reopening the image resumes the work")
    widget.autosave_edit = QLineEdit()
    widget.autosave_edit.setPlaceholderText("a folder (default: next to the image's file)")
    autosave_row = QHBoxLayout()
    autosave_row.addWidget(widget.autosave_check)
    autosave_row.addWidget(widget.autosave_edit)
    widget.model_label = QLabel(f"{DEFAULT_MODEL}: loads on the first click")
    widget.model_label.setWordWrap(True)

    form = QFormLayout()
    form.addRow("Image", widget.image_combo)
    form.addRow("Labels", widget.labels_combo)
    form.addRow("Model", widget.model_combo)
    form.addRow("Checkpoint", checkpoint_row)
    form.addRow("Device", widget.device_combo)
    form.addRow("Target size", widget.size_combo)

    buttons = QGridLayout()
    widget.commit_button = _button("Commit (C)", widget.commit)
    widget.next_button = _button("Next object (N)", widget.next_object)
    widget.reset_button = _button("Reset (Shift+R)", widget.reset)
    widget.undo_button = _button("Undo (Ctrl+Z)", widget.undo)
    widget.redo_button = _button("Redo (Ctrl+Shift+Z)", widget.redo)
    for i, button in enumerate((widget.commit_button, widget.next_button, widget.reset_button,
                                widget.undo_button, widget.redo_button)):
        buttons.addWidget(button, i // 3, i % 3)

    widget.range_spin = QSpinBox()
    widget.range_spin.setRange(0, 100000)
    widget.range_spin.setSpecialValueText("until it stops")
    widget.range_spin.setSuffix(" slices")
    widget.backward_button = _button("◀ Backward ([)", widget.propagate_backward)
    widget.forward_button = _button("Forward (]) ▶", widget.propagate_forward)
    widget.both_button = _button("Both ways", lambda: widget.propagate("both"))
    widget.cancel_button = _button("Cancel", widget.cancel)
    propagate = QGridLayout()
    propagate.addWidget(QLabel("Propagate, at most"), 0, 0)
    propagate.addWidget(widget.range_spin, 0, 1, 1, 2)
    propagate.addWidget(widget.backward_button, 1, 0)
    propagate.addWidget(widget.both_button, 1, 1)
    propagate.addWidget(widget.forward_button, 1, 2)
    propagate.addWidget(widget.cancel_button, 2, 2)

    widget.segment_all_button = _button("Segment all", widget.segment_all)
    widget.segment_all_button.setToolTip("Find every object on this slice (inside the box, if one is "
                                         "drawn) and add each to the labels layer (existing labels "
                                         "stay); one undo step")
    widget.density_spin = QSpinBox()
    widget.density_spin.setRange(4, 64)
    widget.density_spin.setValue(32)
    widget.density_spin.setPrefix("density ")
    widget.density_spin.setToolTip("Grid: N x N clicks per tile. Blobs: at most N x N blob centres per tile")
    widget.seeds_combo = QComboBox()
    widget.seeds_combo.addItems(list(SEEDS))
    widget.seeds_combo.setToolTip("Where Segment all clicks: the centres of the blobs in each tile (crowded small "
                                  "objects: nuclei, cells), or a regular grid (large or textured objects)")
    widget.split_touching_check = QCheckBox("split touching")
    widget.split_touching_check.setChecked(True)
    widget.split_touching_check.setToolTip("Cut an object where its outline pinches: two touching nuclei "
                                           "taken as one come out as two (off: clumps stay whole)")
    widget.all_slices_check = QCheckBox("all slices (3-D)")
    widget.all_slices_check.setToolTip("On a volume: every slice along the axis you scroll, objects "
                                       "that overlap on neighbouring slices joined into one 3-D object")
    automatic = QHBoxLayout()
    automatic.addWidget(widget.segment_all_button)
    automatic.addWidget(widget.seeds_combo)
    automatic.addWidget(widget.density_spin)
    automatic.addWidget(widget.split_touching_check)
    automatic.addWidget(widget.all_slices_check)

    series = QHBoxLayout()
    widget.open_series_button = _button("Open series…", lambda: _choose_series(widget))
    widget.open_series_button.setToolTip("A folder of images to annotate one after another; each image's "
                                         "labels autosave in the folder's hrsam-project")
    widget.previous_image_button = _button("◀ Previous", widget.previous_image)
    widget.next_image_button = _button("Next ▶", widget.next_image)
    widget.next_image_button.setToolTip("Mark this image done and show the next one")
    widget.series_label = QLabel("")
    for item in (widget.open_series_button, widget.previous_image_button, widget.next_image_button):
        series.addWidget(item)

    widget.progress_bar = QProgressBar()
    widget.progress_bar.setVisible(False)
    widget.status_label = QLabel("Add an image, then click on an object.")
    widget.status_label.setWordWrap(True)
    help_label = QLabel(_keys.help_html())
    help_label.setTextFormat(Qt.RichText)
    help_label.setWordWrap(True)
    font = help_label.font()
    font.setPointSizeF(font.pointSizeF() * 0.85)
    help_label.setFont(font)

    layout = QVBoxLayout(widget)
    layout.addLayout(form)
    layout.addWidget(widget.negative_check)
    layout.addWidget(widget.pieces_check)
    layout.addWidget(widget.hold_check)
    layout.addWidget(widget.zoom_check)
    layout.addLayout(autosave_row)
    layout.addWidget(widget.model_label)
    layout.addLayout(buttons)
    layout.addLayout(propagate)
    layout.addLayout(automatic)
    layout.addLayout(series)
    layout.addWidget(widget.series_label)
    layout.addWidget(widget.progress_bar)
    layout.addWidget(widget.status_label)
    layout.addWidget(help_label)
    layout.addStretch(1)

    widget.image_combo.currentIndexChanged.connect(widget._on_image_chosen)
    widget.labels_combo.currentIndexChanged.connect(widget._on_labels_chosen)
    for combo in (widget.model_combo, widget.device_combo, widget.size_combo):
        combo.currentIndexChanged.connect(widget._on_model_changed)
    widget.checkpoint_edit.editingFinished.connect(widget._on_model_changed)
    widget.negative_check.toggled.connect(widget._on_polarity_changed)
    widget.autosave_check.toggled.connect(widget._on_autosave_changed)
    widget.autosave_edit.editingFinished.connect(widget._on_autosave_changed)
    for check in (widget.pieces_check, widget.hold_check, widget.zoom_check):
        check.toggled.connect(widget._on_option_changed)


def _choose_checkpoint(widget) -> None:
    path, _ = QFileDialog.getOpenFileName(widget, "HRSAM checkpoint", "", "Checkpoints (*.pth *.pt *.safetensors)")
    if path:
        widget.checkpoint_edit.setText(path)
        widget._on_model_changed()


def _choose_series(widget) -> None:
    folder = QFileDialog.getExistingDirectory(widget, "HRSAM: a folder of images to annotate")
    if folder:
        widget.open_series(folder)


def _button(text, slot) -> QPushButton:
    button = QPushButton(text)
    button.clicked.connect(lambda _checked=False: slot())
    return button


def fill_layer_combo(combo: QComboBox, layers, kind, exclude, extra: str | None = None) -> bool:
    """List the ``kind`` layers (minus ``exclude``) in ``combo``, keeping its choice if still
    there; returns whether it was kept. Emits no signals."""
    current = combo.currentData()
    combo.blockSignals(True)
    combo.clear()
    if extra:
        combo.addItem(extra, None)
    for layer in layers:
        if isinstance(layer, kind) and not any(layer is other for other in exclude):
            combo.addItem(layer.name, layer)
    combo.blockSignals(False)
    return select(combo, current)


def select(combo: QComboBox, layer) -> bool:
    """Select the item holding ``layer`` (by identity; None is the "new layer" item), else the
    first item; returns whether ``layer`` was found. Emits no signals."""
    index = next((i for i in range(combo.count()) if combo.itemData(i) is layer), -1)
    combo.blockSignals(True)
    combo.setCurrentIndex(index if index >= 0 else (0 if combo.count() else -1))
    combo.blockSignals(False)
    return index >= 0
