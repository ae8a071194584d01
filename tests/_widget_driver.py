"""One randomised widget sequence's state and checks (tests/test_widget_random.py).

``Driver`` holds the viewer, the dock widget, the image layer, the sequence's random
generator and a ``ShadowHistory``; the test's actions change the widget and tell
``check`` which undo steps they made. ``check`` then asserts what a user would notice:
committed labels equal the shadow's (they change only by commit, undo and redo; a queued
commit adds one new id on unlabelled voxels), the session lists exactly the shadow's
undo and redo steps, the prompt layers show the session's prompts, the buttons' enabled
states, no Qt exception, no failed worker task, only user-error messages; settled, the
preview is what the fake model gives for the prompts shown.
"""
import random
import time

import numpy as np
from app_model.types import KeyBinding

from _session_fakes import FakePredictor
from _shadow_history import COMMIT, PROPAGATE, ShadowHistory, commit_of
from napari_hrsam._qt import prompt_layers as layers_io
from napari_hrsam.engine.state import SparseMask

WAIT_MS = 20_000
USER_ERRORS = ("nothing to commit", "propagation needs a volume", "segment the current slice first",
               "segment an object on this slice first")
CENTRES = {2: [(20, 20), (44, 42), (14, 50)], 3: [(28, 28), (48, 48)]}  # the structures to click


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
        widget.predictor_factory = lambda choice: JitteryPredictor(choice.target_size, seed)
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
        alone = f"HRSAM_RANDOM_FIRST_SEED={self.seed} HRSAM_RANDOM_SEQUENCES=1"
        return f"seed {self.seed} (alone: {alone}), actions {self.log}"

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
        plane = self.image.data[self.z()] if self.volume else self.image.data
        fake.set_embedding(fake.embed(plane, tuple(self.image.contrast_limits)))
        prompts = state.prompts
        points = [(c, r) for r, c in prompts.points] or None
        box = None if prompts.box is None else (prompts.box[1], prompts.box[0], prompts.box[3], prompts.box[2])
        raw = SparseMask.from_dense(fake.predict(points, list(prompts.labels) or None, box).mask)
        expected = self.widget.mask_policy.apply(raw, prompts.points, prompts.labels,
                                                 has_box=prompts.box is not None, user_clicks=True).dense()
        np.testing.assert_array_equal(session.preview, expected, err_msg=f"{where}: preview of the prompts {prompts}")

    def settle(self):
        self.qtbot.waitUntil(lambda: not self.widget.busy, timeout=WAIT_MS)
        self.check(settled=True)


def prompt_set(coords, labels) -> list:
    """The prompts as a sorted list of (coordinates..., label), order aside."""
    return sorted(tuple(np.round(np.asarray(p, float), 6).tolist()) + (int(v),) for p, v in zip(coords, labels))
