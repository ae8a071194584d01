"""Autosave and resume: labels, objects and prompts survive a new session and a killed process."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _session_fakes import FakePredictor, disk
from napari_hrsam import Session
from napari_hrsam.engine import autosave as autosave_module
from napari_hrsam.engine.session_autosave import AutosaveWarning

TESTS = Path(__file__).resolve().parents[1]


def disks_image(shape=(200, 300), count=6):
    image = np.zeros(shape, np.uint8)
    for k in range(count):
        image |= disk(shape, (40 + 60 * (k % 3), 40 + 90 * (k // 3)), 15)
    return image


def centre(k):
    return 40 + 60 * (k % 3), 40 + 90 * (k // 3)


def commit_disk(session, k):
    session.add_point(centre(k))
    return session.commit()


def test_a_new_session_on_the_same_image_resumes_exactly(tmp_path):
    image = disks_image()
    session = Session(image, FakePredictor(target_size=256), autosave=tmp_path / "work")
    assert session.autosave_status == f"autosaving to {tmp_path / 'work'}"
    for k in range(3):
        commit_disk(session, k)
    session.remove_object(2)
    session.add_point(centre(3), positive=True)  # in progress, not committed: not saved
    labels, objects = session.labels.copy(), session.objects

    resumed = Session(image, FakePredictor(target_size=256), autosave=tmp_path / "work")
    np.testing.assert_array_equal(resumed.labels, labels)
    assert resumed.objects == {int(k): v for k, v in json.loads(json.dumps(objects)).items()}  # with prompts
    assert resumed.objects[1]["slices"][0]["prompts"]["points"] == [list(map(float, centre(0)))]
    assert resumed.next_label_id == 4 and commit_disk(resumed, 4) == 4


def test_a_volume_resumes_and_undo_is_saved_too(tmp_path):
    volume = np.stack([disks_image((200, 300), 2)] * 5)
    session = Session(volume, FakePredictor(target_size=256), position=(1,), autosave=tmp_path)
    commit_disk(session, 0)
    session.set_slice((3,))
    commit_disk(session, 1)
    session.undo()  # the second commit goes, on disk too
    resumed = Session(volume, FakePredictor(target_size=256), position=(0,), autosave=tmp_path)
    np.testing.assert_array_equal(resumed.labels, session.labels)
    assert set(resumed.objects) == {1} and resumed.labels[3].max() == 0 and resumed.labels[1].max() == 1


def test_only_the_chunks_a_change_touched_are_rewritten(tmp_path):
    image = np.zeros((1100, 1100), np.uint8)
    image |= disk(image.shape, (100, 100), 20)
    session = Session(image, FakePredictor(target_size=1024), autosave=tmp_path)
    chunk_files = sorted(p for p in (tmp_path / "labels.zarr").rglob("*") if p.is_file() and p.name != "zarr.json")
    before = {p: p.stat().st_mtime_ns for p in chunk_files}
    time.sleep(0.05)
    commit_disk_at = session.add_point((100, 100))
    assert commit_disk_at is not None
    session.commit()
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "labels.zarr").rglob("*") if p.is_file()
             and p.name != "zarr.json"}
    changed = [p for p in after if before.get(p) != after[p]]
    assert len(changed) == 1 and changed[0].parts[-2:] == ("0", "0")  # the top-left 512 x 512 chunk


def test_a_folder_of_another_image_is_refused_and_left_alone(tmp_path):
    session = Session(disks_image(), FakePredictor(target_size=256), autosave=tmp_path)
    commit_disk(session, 0)
    saved = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    other = disks_image()
    other[0, 0] = 255  # same shape, other pixels (the strided sample sees (0, 0))
    with pytest.raises(ValueError, match="another image"):
        Session(other, FakePredictor(target_size=256), autosave=tmp_path)
    with pytest.raises(ValueError, match=r"another image \(shape 200x300\)"):
        Session(disks_image((100, 300)), FakePredictor(target_size=256), autosave=tmp_path)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == saved


def test_labels_given_that_contradict_the_autosave_are_refused(tmp_path):
    image = disks_image()
    session = Session(image, FakePredictor(target_size=256), autosave=tmp_path)
    commit_disk(session, 0)
    mine = np.zeros(image.shape, np.int32)
    mine[5, 5] = 7
    with pytest.raises(ValueError, match="differ from those autosaved"):
        Session(image, FakePredictor(target_size=256), labels=mine, autosave=tmp_path)
    empty = np.zeros(image.shape, np.int32)  # a new, empty labels layer: filled from the folder
    Session(image, FakePredictor(target_size=256), labels=empty, autosave=tmp_path)
    np.testing.assert_array_equal(empty, session.labels)


def test_a_failing_folder_keeps_the_work_in_memory_and_says_so(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with pytest.warns(AutosaveWarning, match="NOT SAVED"):
        session = Session(disks_image(), FakePredictor(target_size=256), autosave=blocker / "work")
    assert commit_disk(session, 0) == 1 and session.autosave_status.startswith("NOT SAVED")

    session = Session(disks_image(), FakePredictor(target_size=256), autosave=tmp_path / "work")

    def read_only(*args):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(autosave_module.os, "replace", read_only)
    with pytest.warns(AutosaveWarning, match="Read-only file system"):
        commit_disk(session, 0)
    assert session.labels.max() == 1 and "memory only" in session.autosave_status
    monkeypatch.undo()
    commit_disk(session, 1)  # the folder works again: everything is saved
    assert session.autosave_status.startswith("autosaving")
    resumed = Session(disks_image(), FakePredictor(target_size=256), autosave=tmp_path / "work")
    np.testing.assert_array_equal(resumed.labels, session.labels)


def test_a_save_interrupted_after_its_journal_is_completed_on_resume(tmp_path, monkeypatch):
    image = disks_image()
    session = Session(image, FakePredictor(target_size=256), autosave=tmp_path)
    commit_disk(session, 0)

    def killed(self):
        raise KeyboardInterrupt  # the process dies after the journal's rename, before applying it

    monkeypatch.setattr(autosave_module.Autosave, "_apply_journal", killed)
    with pytest.raises(KeyboardInterrupt):
        commit_disk(session, 1)
    monkeypatch.undo()
    (tmp_path / "journal.npz.tmp").write_bytes(b"half a journal")  # and a torn one is dropped
    resumed = Session(image, FakePredictor(target_size=256), autosave=tmp_path)
    np.testing.assert_array_equal(resumed.labels, session.labels)
    assert set(resumed.objects) == {1, 2} and not (tmp_path / "journal.npz").exists()
    assert not (tmp_path / "journal.npz.tmp").exists()


CHILD = """
import sys
sys.path[:0] = [{tests!r}, {engine!r}]
import numpy as np
from test_autosave import commit_disk, disks_image, COUNT
from _session_fakes import FakePredictor
from napari_hrsam import Session
session = Session(disks_image((1024, 1536), COUNT), FakePredictor(target_size=1024), autosave={folder!r})
print("ready", flush=True)
while True:
    done = len(session.objects)
    if done == COUNT:
        for label in sorted(session.objects, reverse=True):
            session.remove_object(label)
        continue
    commit_disk(session, done)
    session.undo()
    session.redo()
"""
COUNT = 6


def expected_labels(count):
    """The labels after the first ``count`` disks were committed (ids 1..count)."""
    image = disks_image((1024, 1536), COUNT)
    labels = np.zeros(image.shape, np.int32)
    for k in range(count):
        rows, cols = np.nonzero(disk(image.shape, centre(k), 15))
        labels[rows, cols] = k + 1
    return labels


def test_sigkill_at_random_moments_always_resumes_a_completed_state(tmp_path):
    folder = tmp_path / "work"
    script = CHILD.format(tests=str(TESTS), engine=str(TESTS / "engine"), folder=str(folder))
    rng = np.random.default_rng(0)
    image = disks_image((1024, 1536), COUNT)
    seen = set()
    for attempt in range(12):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert child.stdout.readline().strip() == "ready", f"attempt {attempt}: the child did not start"
        time.sleep(float(rng.uniform(0.05, 0.6)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        resumed = Session(image, FakePredictor(target_size=1024), autosave=folder)
        count = len(resumed.objects)
        assert set(resumed.objects) == set(range(1, count + 1)), f"attempt {attempt}"
        np.testing.assert_array_equal(resumed.labels, expected_labels(count), err_msg=f"attempt {attempt}")
        seen.add(count)
    assert len(seen) >= 2  # the kills landed at different points of the work


def test_a_damaged_autosave_folder_is_refused_with_a_clear_message(tmp_path):
    import shutil

    image = disks_image()
    session = Session(image, FakePredictor(target_size=256), autosave=tmp_path)
    commit_disk(session, 0)
    shutil.rmtree(tmp_path / "labels.zarr")
    with pytest.raises(ValueError, match="not a readable label array"):
        Session(image, FakePredictor(target_size=256), autosave=tmp_path)
    (tmp_path / "session.json").write_text("{ torn")
    with pytest.raises(ValueError, match="damaged"):
        Session(image, FakePredictor(target_size=256), autosave=tmp_path)
