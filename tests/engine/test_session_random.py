"""Randomised sequences of user actions on a small volume (fake predictor).

Checked after every action against a shadow history of label snapshots:
(clicks, boxes, scribbles, lassos, brush strokes, editing a committed object, propagation, ...):
committed labels change only on commit, remove-object, and undo/redo of those; undo
returns exactly the labels from before the step, redo exactly those after; undoing
everything gives back the initial labels and an empty object.
"""
import numpy as np
import pytest

from _session_fakes import FakePredictor, disk
from napari_hrsam.engine.session import Session

SEQUENCES = 300
ACTIONS_PER_SEQUENCE = 30
SHAPE = (6, 24, 24)
INITIAL_ID = 3


def small_volume():
    volume = np.zeros(SHAPE, np.uint8)
    for z in range(1, 5):
        volume[z] |= disk(SHAPE[1:], (8, 8), 3 + z % 2)
    for z in range(0, 6):
        volume[z] |= disk(SHAPE[1:], (16, 15), 4)
    volume[2:4, 2:6, 17:22] = 200
    return volume


def initial_labels():
    labels = np.zeros(SHAPE, np.int32)
    labels[:, 20:, 20:] = INITIAL_ID  # an object the user had before
    return labels


def random_point(rng):
    if rng.random() < 0.6:  # mostly on structures, sometimes on background
        centre = [(8, 8), (16, 15), (4, 19)][rng.integers(3)]
        return centre[0] + rng.integers(-2, 3), centre[1] + rng.integers(-2, 3)
    return rng.integers(0, SHAPE[1]), rng.integers(0, SHAPE[2])


def act(session, rng, name):
    """Run one action; returns what undo/redo returned, else None."""
    if name == "point":
        session.add_point(random_point(rng), positive=rng.random() < 0.75,
                          predict=rng.random() < 0.7)
    elif name == "remove point":
        session.remove_point(int(rng.integers(-2, 3)))
    elif name == "box":
        r, c = random_point(rng)
        session.set_box((r - 5, c - 5, r + 5, c + 5) if rng.random() < 0.8 else None)
    elif name == "resolve":  # a worker answering, sometimes too late
        request = session.pending_request()
        if request is not None:
            prediction = session.compute(request)
            if rng.random() < 0.2:
                session.add_point(random_point(rng), predict=False)
            session.apply(prediction)
    elif name == "scribble":
        session.add_scribble([random_point(rng), random_point(rng)], positive=rng.random() < 0.75,
                             predict=rng.random() < 0.7)
    elif name == "lasso":
        (r, c), half = random_point(rng), int(rng.integers(2, 7))
        session.set_lasso([(r - half, c - half), (r - half, c + half), (r + half, c + half), (r + half, c - half)],
                          predict=rng.random() < 0.7)
    elif name == "edit":
        ids = [int(v) for v in np.unique(session.labels) if v] + [99]
        session.edit_object(ids[rng.integers(len(ids))])
    elif name == "paint":
        r, c = random_point(rng)
        session.paint([(r + dr, c + dc) for dr in range(2) for dc in range(3)], inside=rng.random() < 0.6)
    elif name == "reset":
        session.reset()
    elif name == "commit":
        session.commit(overwrite=rng.random() < 0.3)
    elif name == "remove object":
        ids = [int(v) for v in np.unique(session.labels) if v] + [99]
        session.remove_object(ids[rng.integers(len(ids))])
    elif name == "propagate":
        session.propagate(["forward", "backward", "both"][rng.integers(3)],
                          max_slices=[None, 1, 2][rng.integers(3)])
    elif name == "slice":
        session.set_slice((int(rng.integers(SHAPE[0])),))
    elif name == "undo":
        return session.undo()
    elif name == "redo":
        return session.redo()


ACTIONS = ["point"] * 6 + ["remove point", "box", "resolve", "resolve", "reset", "commit",
                           "commit", "remove object", "propagate", "propagate", "slice",
                           "slice", "undo", "undo", "undo", "redo", "redo", "scribble", "lasso",
                           "edit", "paint", "paint"]


def run_sequence(seed):
    rng = np.random.default_rng(seed)
    session = Session(small_volume(), FakePredictor(), labels=initial_labels(),
                      position=(int(rng.integers(SHAPE[0])),))
    done, undone = [], []  # shadow history: (labels before, labels after) per step
    log = []
    for _ in range(ACTIONS_PER_SEQUENCE):
        name = ACTIONS[rng.integers(len(ACTIONS))]
        log.append(name)
        before = session.labels.copy()
        depth = len(session.history[0])
        try:
            outcome = act(session, rng, name)
        except ValueError:
            outcome = "refused"
        where = f"seed {seed}, actions {log}"
        after = session.labels
        if name == "undo" and outcome is True:
            step = done.pop()
            undone.append(step)
            assert np.array_equal(after, step[0]), where
        elif name == "redo" and outcome is True:
            step = undone.pop()
            done.append(step)
            assert np.array_equal(after, step[1]), where
        elif len(session.history[0]) > depth:  # new step(s): resolve may add a click
            changes_labels = name in ("commit", "remove object") and outcome != "refused"
            if not changes_labels:
                assert np.array_equal(after, before), where
            done.append((before, after.copy()))
            undone.clear()
            assert session.history[1] == [], where
        else:
            assert np.array_equal(after, before), where
        assert len(done) == len(session.history[0]), where
        assert len(undone) == len(session.history[1]), where
        present = set(np.unique(after).tolist()) - {0, INITIAL_ID}
        assert present <= set(session.objects), where

    final = session.labels.copy()
    steps = 0
    while session.undo():
        steps += 1
    assert np.array_equal(session.labels, initial_labels()), f"seed {seed}, actions {log}"
    assert session.object.empty and session.objects == {}
    for _ in range(steps):
        assert session.redo()
    assert np.array_equal(session.labels, final), f"seed {seed}, actions {log}"


@pytest.mark.parametrize("block", range(3))
def test_random_action_sequences(block):
    per_block = SEQUENCES // 3
    for seed in range(block * per_block, (block + 1) * per_block):
        run_sequence(seed)
