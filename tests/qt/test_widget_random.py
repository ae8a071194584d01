"""Randomised sequences of user actions through the real dock widget (issue 30, "Guard it").

Each sequence opens a small image (64x64) or volume (8x64x64) in a real napari viewer and
performs 10-16 random actions the way a user does: clicks through napari's mouse
callbacks (left, right, a drag that is a pan), a box, deleting a prompt point, the
widget's keys (C, N, Ctrl+Z, Ctrl+Shift+Z, Shift+R, T, ], [) and buttons, propagation,
cancel, the option checkboxes, slice changes and short waits. The predictor is
``FakePredictor`` with a few random milliseconds per call, and most actions do not wait
for the worker, so answers land between actions in every order.

Checked after every action by ``Driver.check`` (tests/_widget_driver.py) against a
``ShadowHistory`` (tests/_shadow_history.py):
committed labels change only by commit, undo and redo (a commit adds one new id on
unlabelled voxels only; a commit made at once writes exactly the preview the user saw);
the session's undo and redo lists hold the steps the actions made, none lost; the prompt
layers show the session's prompts; Undo/Redo/Cancel buttons are enabled when they can
act; no exception reaches Qt, and no worker task fails. When the worker settles, the
preview is what the fake model gives for the prompts and options shown. At the end,
undoing everything gives empty labels and an empty object, and (every third sequence)
redoing it all gives the final labels back.

The action sequence is fixed by the seed (printed with the actions on failure); the
worker's timing is not, so the checks hold for any interleaving of answers.
"""
import os

import numpy as np
import pytest

import napari_hrsam._qt.scheduling as scheduling_module
import napari_hrsam._qt.widget as widget_module
from _session_fakes import disk
from _widget_driver import WAIT_MS, Driver
from test_widget import PLUGIN, WIDGET, click

# HRSAM_RANDOM_SEQUENCES / HRSAM_RANDOM_FIRST_SEED run more or other seeds (a soak test)
SEQUENCES = int(os.environ.get("HRSAM_RANDOM_SEQUENCES", 100))
FIRST_SEED = int(os.environ.get("HRSAM_RANDOM_FIRST_SEED", 0))
BLOCKS = 4  # one viewer per block
ACTIONS_PER_SEQUENCE = (10, 16)

SET_PROMPTS = "set prompts"
RESET = "reset"


def small_image():
    shape = (64, 64)
    return disk(shape, (20, 20), 9) + disk(shape, (44, 42), 12, value=180) + disk(shape, (14, 50), 5)


def small_volume():
    volume = np.zeros((8, 64, 64), np.uint8)
    for z in range(1, 7):
        volume[z] |= disk((64, 64), (28, 28), 10 + z % 2)
    for z in range(8):
        volume[z] |= disk((64, 64), (48, 48), 6)
    return volume


# ---------------------------------------------------------------------- actions
# Each performs one user action and returns what check() gets: (steps, labels after).


def act_click(d: Driver, button=1, drag=0.0):
    r, c = d.random_pixel()
    if drag:
        click(d.widget.points_layer, d.world(r, c), button=button, drag=drag)
        return [], None
    click(d.widget.points_layer, d.world(r, c), button=button)
    positive = button == 1 and not d.negative
    assert d.widget.points_layer.features["label"].tolist()[-1] == int(positive), d.where()
    return [SET_PROMPTS], None


def act_box(d: Driver):
    r, c = d.random_pixel()
    h, w = d.rng.uniform(6, 20, size=2)
    r0, c0, r1, c1 = max(r - h, 0), max(c - w, 0), min(r + h, 63), min(c + w, 63)
    corners = [(r0, c0), (r0, c1), (r1, c1), (r1, c0)]
    session = d.session
    same = session is not None and session.prompts.box == (r0, c0, r1, c1)
    d.widget.box_layer.add_rectangles(np.array([d.image.world_to_data(d.world(*p)) for p in corners]))
    return ([] if same else [SET_PROMPTS]), None


def act_delete_point(d: Driver):
    points = d.widget.points_layer
    here = [i for i, p in enumerate(points.data) if not d.volume or int(round(p[0])) == d.z()]
    if not here:
        return [], None
    points.selected_data = {here[d.rng.integers(len(here))]}
    points.remove_selected()
    return [SET_PROMPTS], None


def act_commit(d: Driver, how):
    steps, after = d.expect_commit()
    if how == "button":
        if not d.widget.commit_button.isEnabled():
            return [], None
        d.widget.commit_button.click()
    else:
        d.press("C")
    return steps, after


def act_next(d: Driver):
    session = d.session
    if session is not None and (session.object_masks() or session.pending):
        steps, after = d.expect_commit()
    elif session is not None and not session.object.empty:
        steps, after = [RESET], None
    else:
        steps, after = [], None
    d.press("N")
    return steps, after


def act_history(d: Driver, which, how):
    button = d.widget.undo_button if which == "undo" else d.widget.redo_button
    if how == "button" and not button.isEnabled():
        return [], None
    d.expect_history(which)
    if how == "button":
        button.click()
    else:
        d.press("Ctrl+Z" if which == "undo" else "Ctrl+Shift+Z")
    return [], None


def act_reset(d: Driver, how):
    session = d.session
    steps = [RESET] if session is not None and not session.object.empty else []
    if how == "button":
        if not d.widget.reset_button.isEnabled():
            return [], None
        d.widget.reset_button.click()
    else:
        d.press("Shift+R")
    return steps, None


def act_toggle_polarity(d: Driver):
    d.press("T")
    d.negative = not d.negative
    return [], None


def act_propagate(d: Driver):
    if d.rng.random() < 0.5:  # the user clicks the structure, waits for the mask, propagates, goes on
        d.settle()
        mask = d.session.preview_sparse if d.session is not None else None
        if d.volume and not d.negative and (mask is None or mask.empty):
            click(d.widget.points_layer, d.world(48 + d.rng.uniform(-2, 2), 48 + d.rng.uniform(-2, 2)))
            d.check([SET_PROMPTS])
            d.settle()
    d.widget.range_spin.setValue(int(d.rng.choice([0, 0, 1, 2])))
    how = d.rng.choice(["]", "[", "both"])
    if how == "both" and not d.widget.both_button.isEnabled():
        return [], None
    d.expect_propagation()
    if how == "both":
        d.widget.both_button.click()
    else:
        d.press(how)
    return [], None


def act_cancel(d: Driver):
    if d.widget.cancel_button.isEnabled():
        d.shadow.lenient = True  # what cancel does to a running click is another fix's to define
        d.widget.cancel_button.click()
    return [], None


def act_option(d: Driver, check):
    check.setChecked(not check.isChecked())
    return [], None


def act_setting(d: Driver, combo):
    # a model or target-size change must keep every undo step and the labels (issue 30 bug 5)
    combo.setCurrentIndex((combo.currentIndex() + 1) % combo.count())
    return [], None


def act_slice(d: Driver):
    if d.volume:
        d.viewer.dims.set_current_step(0, int(d.rng.integers(8)))
    return [], None


def act_wait(d: Driver):
    d.qtbot.wait(int(d.rng.integers(0, 12)))
    return [], None


ACTIONS = {
    "click": act_click,
    "right click": lambda d: act_click(d, button=2),
    "pan": lambda d: act_click(d, drag=20.0),
    "box": act_box,
    "delete point": act_delete_point,
    "C": lambda d: act_commit(d, "key"),
    "Commit button": lambda d: act_commit(d, "button"),
    "N": act_next,
    "Ctrl+Z": lambda d: act_history(d, "undo", "key"),
    "Undo button": lambda d: act_history(d, "undo", "button"),
    "Ctrl+Shift+Z": lambda d: act_history(d, "redo", "key"),
    "Redo button": lambda d: act_history(d, "redo", "button"),
    "Shift+R": lambda d: act_reset(d, "key"),
    "Reset button": lambda d: act_reset(d, "button"),
    "T": act_toggle_polarity,
    "propagate": act_propagate,
    "Cancel": act_cancel,
    "zoom-in": lambda d: act_option(d, d.widget.zoom_check),
    "pieces": lambda d: act_option(d, d.widget.pieces_check),
    "target size": lambda d: act_setting(d, d.widget.size_combo),
    "model": lambda d: act_setting(d, d.widget.model_combo),
    "slice": act_slice,
    "wait": act_wait,
}
WEIGHTS = {"click": 8, "right click": 2, "C": 2, "N": 2, "Ctrl+Z": 3, "Ctrl+Shift+Z": 2, "propagate": 3,
           "slice": 2, "wait": 6, "settle": 2}
NAMES = list(ACTIONS) + ["settle"]
PROBABILITIES = np.array([WEIGHTS.get(n, 1) for n in NAMES], float) / sum(WEIGHTS.get(n, 1) for n in NAMES)


def run_sequence(d: Driver):
    for _ in range(int(d.rng.integers(*ACTIONS_PER_SEQUENCE, endpoint=True))):
        name = str(d.rng.choice(NAMES, p=PROBABILITIES))
        d.log.append(name)
        if name == "settle":
            d.settle()
            continue
        steps, after = ACTIONS[name](d)
        d.check(steps, after)
    d.log.append("settle")
    d.settle()
    final, redo_tail = d.labels(), len(d.shadow.undone)
    d.log.append("undo all")
    while d.shadow.done:
        d.expect_history("undo")
        d.press("Ctrl+Z")
        d.check()
    d.settle()
    assert not d.labels().any(), f"{d.where()}: undoing everything left labels"
    if d.session is not None:
        assert d.session.object.empty and not d.session.can_undo, f"{d.where()}: undoing everything left prompts"
        assert len(d.widget.points_layer.data) == 0, f"{d.where()}: undoing everything left points shown"
    if d.seed % 3:
        return  # redoing everything too, on every third sequence
    d.log.append("redo all")
    while len(d.shadow.undone) > redo_tail:  # back to where the sequence ended
        d.expect_history("redo")
        d.press("Ctrl+Shift+Z")
        d.check()
    d.settle()
    np.testing.assert_array_equal(d.labels(), final, err_msg=f"{d.where()}: redo all")


@pytest.mark.parametrize("block", range(BLOCKS))
def test_random_user_actions_keep_labels_and_history(block, make_napari_viewer, qtbot, monkeypatch):
    """Seeds s with s % BLOCKS == block; odd seeds on the volume, even ones on the 2-D image.
    One seed alone: HRSAM_RANDOM_FIRST_SEED=s HRSAM_RANDOM_SEQUENCES=1 (worker timing aside)."""
    seeds = [s for s in range(FIRST_SEED, FIRST_SEED + SEQUENCES) if s % BLOCKS == block]
    if not seeds:
        pytest.skip("no seed in this block")
    errors, task_errors = [], []
    for module in (widget_module, scheduling_module):
        for kind, shown in (("error", errors.append), ("info", lambda message: None),
                            ("warning", lambda message: None)):
            if hasattr(module, f"show_{kind}"):
                monkeypatch.setattr(module, f"show_{kind}", shown)
    viewer = make_napari_viewer()
    volume = seeds[0] % 2 == 1  # BLOCKS is even: one parity per block
    image = viewer.add_image(small_volume() if volume else small_image(), name="volume" if volume else "image",
                             scale=(2.0, 1, 1) if volume else (1, 1))
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    record = widget._on_task_error
    widget._on_task_error = lambda session, request, err: (task_errors.append(repr(err)),
                                                           record(session, request, err))
    for seed in seeds:
        errors.clear()
        with qtbot.capture_exceptions() as exceptions:
            driver = Driver(viewer, widget, image, qtbot, seed, errors, task_errors, exceptions)
            try:
                run_sequence(driver)
            except AssertionError:
                raise
            except Exception as err:
                raise AssertionError(f"{driver.where()}: {type(err).__name__}: {err}") from err
        assert not exceptions, f"{driver.where()}: exceptions in Qt: {exceptions}"
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
