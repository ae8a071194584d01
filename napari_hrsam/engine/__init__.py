"""The Qt-free interactive engine: session, state, history, label edits, slice layout, windows,
propagation, caches and the model choice. The widget, the ``hrsam`` command, ``hrsam eval`` and
notebooks all drive it; nothing here imports Qt or napari."""
