"""Randomised sequences of user actions through the real dock widget (issue 30, "Guard it").

Each sequence opens a small image (64x64) or volume (8x64x64) in a real napari viewer and
performs 10-20 random actions the way a user does: clicks through napari's mouse
callbacks (left, right, a drag that is a pan), a box, deleting a prompt point, the
widget's keys (C, N, Ctrl+Z, Ctrl+Shift+Z, Shift+R, T, ], [) and buttons, propagation,
cancel, the option checkboxes, slice changes and short waits. The predictor is
``FakePredictor`` with a few random milliseconds per call, and most actions do not wait
for the worker, so answers land between actions in every order.

Checked after every action, against ``ShadowHistory`` (tests/_shadow_history.py):
committed labels change only by commit, undo and redo (a commit adds one new id on
unlabelled voxels only; a commit made at once writes exactly the preview the user saw);
the session's undo and redo lists hold the steps the actions made, none lost; the prompt
layers show the session's prompts; Undo/Redo/Cancel buttons are enabled when they can
act; no exception reaches Qt, and no worker task fails. When the worker settles, the
preview is what the fake model gives for the prompts and options shown. At the end,
undoing everything gives empty labels and an empty object, and redoing it all gives
the final labels back.

The action sequence is fixed by the seed (printed with the actions on failure); the
worker's timing is not, so the checks hold for any interleaving of answers.
"""
import os
import random
import time

import numpy as np
import pytest
from _session_fakes import FakePredictor, disk
from _shadow_history import COMMIT, PROPAGATE, ShadowHistory, commit_of
from app_model.types import KeyBinding
from test_widget import PLUGIN, WIDGET, click

import napari_hrsam._widget as widget_module
from napari_hrsam import _prompt_layers as layers_io

# HRSAM_RANDOM_SEQUENCES / HRSAM_RANDOM_FIRST_SEED run more or other seeds (a soak test)
SEQUENCES = int(os.environ.get("HRSAM_RANDOM_SEQUENCES", 100))
FIRST_SEED = int(os.environ.get("HRSAM_RANDOM_FIRST_SEED", 0))
BLOCKS = 4  # one viewer per block
ACTIONS_PER_SEQUENCE = (10, 16)
WAIT_MS = 20_000

# Known bugs (issue 30) fixed in another branch: flip each to True after that merge.
# issue 30 bug 5: changing the target size or the model drops the session, its undo history
# included, so committed objects can no longer be undone.
SETTINGS_KEEP_HISTORY = False

SET_PROMPTS = "set prompts"
RESET = "reset"
USER_ERRORS = ("nothing to commit", "propagation needs a volume", "segment the current slice first",
               "segment an object on this slice first")


class JitteryPredictor(FakePredictor):
    """FakePredictor whose embed and predict take 0-4 ms (seeded), so answers race actions."""

    def __init__(self, target_size, seed):
        super().__init__(target_size=target_size)
        self._delays = random.Random(seed)

    def embed(self, image, contrast_limits=None):
        time.sleep(self._delays.uniform(0, 0.004))
        return super().embed(image, contrast_limits)

    def predict(self, *args, **kwargs):
        time.sleep(self._delays.uniform(0, 0.004))
        return super().predict(*args, **kwargs)


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


CENTRES = {2: [(20, 20), (44, 42), (14, 50)], 3: [(28, 28), (48, 48)]}  # the structures


class Driver:
    """One sequence: the viewer, the widget, the shadow history and the checks."""

    def __init__(self, viewer, widget, image, qtbot, seed, errors, task_errors, exceptions):
        self.viewer, self.widget, self.image, self.qtbot, self.seed = viewer, widget, image, qtbot, seed
        self.rng = np.random.default_rng(seed)
        self.errors, self.task_errors, self.exceptions = errors, task_errors, exceptions
        self.log = []
        self.volume = image.ndim == 3
        for check, on in ((widget.negative_check, False), (widget.pieces_check, True),
                          (widget.zoom_check, True)):
            check.setChecked(on)
        for combo in (widget.size_combo, widget.model_combo):
            combo.setCurrentIndex(0)
        widget.range_spin.setValue(0)
        widget.predictor_factory = lambda spec, size: JitteryPredictor(size, seed)
        labels = widget.labels_layer
        if labels is not None:  # start on empty labels: a new array, chosen again (a new session)
            labels.data = np.zeros(image.data.shape, np.uint16)
            widget.labels_combo.setCurrentIndex(0)
            widget.labels_combo.setCurrentIndex(widget.labels_combo.findData(labels))
        assert widget.session is None
        if self.volume:
            viewer.dims.set_current_step(0, int(self.rng.integers(8)))
        self.shadow = ShadowHistory(image.data.shape)
        self.negative = False

    # ------------------------------------------------------------------ state
    @property
    def session(self):
        return self.widget.session

    @property
    def running(self) -> bool:
        return self.widget._runner.busy

    def where(self) -> str:
        return f"seed {self.seed}, actions {self.log}"

    def z(self) -> int:
        return int(round(float(self.image.world_to_data(self.viewer.dims.point)[0]))) if self.volume else 0

    def labels(self) -> np.ndarray:
        layer = self.widget.labels_layer
        return np.zeros(self.image.data.shape, np.int64) if layer is None else np.asarray(layer.data, np.int64)

    def world(self, row, col):
        coords = (self.z(), row, col) if self.volume else (row, col)
        return self.image.data_to_world(coords)

    def press(self, key):
        self.viewer.keymap[KeyBinding.from_str(key)](self.viewer)

    def random_pixel(self):
        if self.rng.random() < 0.7:
            centres = CENTRES[self.image.ndim]
            r, c = centres[self.rng.integers(len(centres))]
            return r + self.rng.uniform(-3, 3), c + self.rng.uniform(-3, 3)
        return self.rng.uniform(0, 63), self.rng.uniform(0, 63)

    # ------------------------------------------------------------------ expectations
    def expect_commit(self):
        """What C does now: (step names, exact labels after) for a commit made at once."""
        session = self.session
        if session is None or session.object.empty:
            return [], None
        if self.running or session.pending:
            self.shadow.queued_commit = True
            return [], None
        before = self.labels()
        after = np.where((before == 0) & (self.widget.preview_layer.data > 0), before.max() + 1, before)
        return ([COMMIT], after) if (after != before).any() else ([], None)

    def expect_history(self, which):
        session = self.session
        stack = self.shadow.done if which == "undo" else self.shadow.undone
        if session is None or not stack:
            return
        getattr(self.shadow, which)()
        self.shadow.queued_commit = False  # undo and redo drop a commit asked for meanwhile

    def expect_propagation(self):
        session = self.session
        if session is None or self.running or session.pending or not self.volume \
                or session.preview_sparse is None:
            return
        self.shadow.propagating = True

    # ------------------------------------------------------------------ checks
    def check(self, steps=(), labels_after=None, settled=False):
        where = self.where()
        assert not self.exceptions, f"{where}: exceptions in Qt: {self.exceptions}"
        assert not self.task_errors, f"{where}: a worker task failed: {self.task_errors}"
        unexpected = [m for m in self.errors if not any(e in m for e in USER_ERRORS)]
        assert not unexpected, f"{where}: unexpected error messages {unexpected}"
        shadow = self.shadow
        for name in steps:
            shadow.push(name, labels_after)
        session = self.session
        done, undone = session.history if session is not None else ([], [])
        labels = self.labels()
        if labels_after is not None:
            np.testing.assert_array_equal(labels, labels_after, err_msg=f"{where}: commit wrote not the preview")
        # asynchronous steps: a propagation's answer, then a queued commit
        extra = done[len(shadow.done):] if not shadow.lenient else []
        if extra and done[:len(shadow.done)] == shadow.done:
            allowed = [PROPAGATE] * shadow.propagating + [COMMIT] * shadow.queued_commit
            assert extra in [allowed, allowed[:1], allowed[1:]], f"{where}: unexpected steps {extra}"
            for name in extra:
                if name == COMMIT:
                    why = commit_of(shadow.labels, labels)
                    assert why is None, f"{where}: a queued commit changed the labels wrongly: {why}"
                shadow.push(name, labels)
        elif shadow.lenient and done.count(COMMIT) == len(shadow.snapshots) and shadow.queued_commit:
            why = commit_of(shadow.labels, labels)
            assert why is None, f"{where}: a queued commit changed the labels wrongly: {why}"
            shadow.snapshots.append(labels.copy())
        np.testing.assert_array_equal(labels, shadow.labels, err_msg=f"{where}: labels changed without a commit/undo/redo")
        assert (done.count(COMMIT), undone.count(COMMIT)) == shadow.commits(), \
            f"{where}: undoable commits {done}, redoable {undone}; expected {shadow.commits()} commits"
        if shadow.lenient:
            shadow.done, shadow.undone = list(done), list(undone)
        assert (done, undone) == (shadow.done, shadow.undone), \
            f"{where}: undo list {done}, redo list {undone}; expected {shadow.done}, {shadow.undone}"
        self.check_display(where)
        if not self.widget.busy:
            shadow.queued_commit = shadow.propagating = shadow.lenient = False
        if settled:
            self.check_preview(where)

    def check_display(self, where):
        widget, session = self.widget, self.session
        assert widget.cancel_button.isEnabled() == self.running, f"{where}: Cancel button state"
        if session is not None:
            assert widget.undo_button.isEnabled() == session.can_undo, f"{where}: Undo button state"
            assert widget.redo_button.isEnabled() == session.can_redo, f"{where}: Redo button state"
            coords, labels, _ = layers_io.user_prompts(session)
            points = widget.points_layer
            assert prompt_set(points.data, points.features["label"]) == prompt_set(coords, labels), \
                f"{where}: the prompts layer does not show the session's prompts"
        assert widget.negative_check.isChecked() == self.negative, f"{where}: polarity toggle"

    def check_preview(self, where):
        """Settled: the preview layer shows the object, and the current slice's mask is what
        the fake model gives for its prompts with the options now checked."""
        session = self.session
        if session is None:
            return
        shown = np.zeros(self.image.data.shape, bool)
        for key, mask in session.object_masks().items():
            shown[layers_io.slice_index(key, shown.ndim, mask.bbox)] |= mask.crop
        np.testing.assert_array_equal(self.widget.preview_layer.data > 0, shown, err_msg=f"{where}: preview layer")
        state = session.object.slices.get(session.slice_key)
        if state is None or state.source != "user" or state.pending:
            return
        fake = FakePredictor()
        fake.clicked_pieces_only = self.widget.pieces_check.isChecked()
        plane = self.image.data[self.z()] if self.volume else self.image.data
        fake.set_embedding(fake.embed(plane, tuple(self.image.contrast_limits)))
        prompts = state.prompts
        points = [(c, r) for r, c in prompts.points] or None
        box = None if prompts.box is None else (prompts.box[1], prompts.box[0], prompts.box[3], prompts.box[2])
        expected = fake.predict(points, list(prompts.labels) or None, box).mask
        np.testing.assert_array_equal(session.preview, expected, err_msg=f"{where}: preview of the prompts {prompts}")

    def settle(self):
        self.qtbot.waitUntil(lambda: not self.widget.busy, timeout=WAIT_MS)
        self.check(settled=True)


def prompt_set(coords, labels) -> list:
    """The prompts as a sorted list of (coordinates..., label), order aside."""
    return sorted(tuple(np.round(np.asarray(p, float), 6).tolist()) + (int(v),) for p, v in zip(coords, labels))


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
    if not SETTINGS_KEEP_HISTORY:
        return [], None  # issue 30 bug 5: changing target size or model drops undo history
    d.shadow.lenient = True  # the object's prompts may go; the committed history must stay
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
    monkeypatch.setattr(widget_module, "show_error", errors.append)
    for kind in ("info", "warning"):
        monkeypatch.setattr(widget_module, f"show_{kind}", lambda message: None)
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
