"""Keyboard shortcuts of the widget: one table drives the bindings and the help text.

Keys are bound on the viewer, so they work whichever HRSAM layer is selected; a selected
layer's own napari shortcuts (for example C = auto-contrast on an image layer) win over
them, which is why the widget selects its prompts layer when it starts. The keys avoid
napari's viewer shortcuts (Ctrl+Y toggles 3-D, so redo is Ctrl+Shift+Z).
"""
from __future__ import annotations

from typing import Callable

# (key, action name on the widget, what it does)
KEY_BINDINGS = (
    ("C", "commit", "commit the object (next free label id)"),
    ("N", "next_object", "next object: commit it if it has a mask, else clear its prompts"),
    ("Ctrl+Z", "undo", "undo the last prompt, commit, reset or propagation"),
    ("Ctrl+Shift+Z", "redo", "redo"),
    ("Shift+R", "reset", "reset: drop the object's prompts and masks"),
    ("E", "edit_object_at_cursor", "edit the committed object under the cursor (commit replaces it)"),
    ("T", "toggle_polarity", "toggle whether a left click adds a positive or a negative point"),
    ("]", "propagate_forward", "propagate the mask to the following slices"),
    ("[", "propagate_backward", "propagate the mask to the preceding slices"),
)
MOUSE_BINDINGS = (
    ("Left click", "add a point (positive, or negative after T)"),
    ("Right click", "add a negative point"),
    ("Drag a rectangle", "box prompt (on the HRSAM box layer, rectangle tool)"),
    ("Draw a path", "scribble over what the mask misses (HRSAM box layer, path tool; negative after T)"),
    ("Draw a polygon", "lasso around the object (HRSAM box layer, polygon or lasso tool)"),
    ("Brush / eraser", "paint into or erase from the mask (HRSAM preview layer); the pixels stay"),
)


def help_html() -> str:
    """A compact two-column table of the mouse and key bindings for a QLabel."""
    rows = [(what, does) for what, does in MOUSE_BINDINGS]
    rows += [(key, does) for key, _, does in KEY_BINDINGS]
    body = "".join(f"<tr><td><b>{key}</b>&nbsp;&nbsp;</td><td>{does}</td></tr>" for key, does in rows)
    return f"<table>{body}</table>"


def install(viewer, widget) -> Callable[[], None]:
    """Bind every key to ``getattr(widget, action)()``; returns a function that unbinds them."""
    bound = []
    for key, action, _ in KEY_BINDINGS:
        method = getattr(widget, action)

        def callback(_viewer, method=method):
            method()

        viewer.bind_key(key, callback, overwrite=True)
        bound.append(key)

    def uninstall():
        while bound:
            viewer.bind_key(bound.pop(), None)

    return uninstall
