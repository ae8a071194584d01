"""Editing a committed object: its prompts come back, clicks refine it, commit replaces it under the
same id, undoably."""
import numpy as np
import pytest

from _session_fakes import NO_HOLD, FakePredictor, disk
from napari_hrsam import Session


def two_disks():
    return disk((120, 160), (40, 50), 14) + disk((120, 160), (80, 115), 11, value=180)


def test_an_edited_object_is_replaced_under_its_id_and_undo_restores_it():
    image = two_disks()
    session = Session(image, FakePredictor(target_size=256), mask_policy=NO_HOLD)
    session.add_point((40, 50))
    first = session.commit()
    session.add_point((80, 115))
    second = session.commit()
    before = session.labels.copy()
    preview = session.edit_object(first)
    np.testing.assert_array_equal(preview, before == first)  # its own prompts, predicted again
    assert session.prompts.points == ((40.0, 50.0),) and session.object.label_id == first
    session.add_point((80, 115))  # now both disks make up object 1 ...
    assert session.commit() == first  # ... under the same id
    assert (session.labels[before == first] == first).all()
    assert (session.labels[before == second] == second).all()  # another label is never overwritten
    assert session.next_label_id == second + 1 and len(session.objects[first]["slices"]) == 1
    session.undo()  # the commit: the old object 1 and the edit in progress come back
    np.testing.assert_array_equal(session.labels, before)
    assert session.object.label_id == first
    session.undo()  # the click
    session.undo()  # the edit itself
    assert session.object.empty and np.array_equal(session.labels, before)


def test_an_edit_that_shrinks_the_object_clears_its_old_voxels():
    image = two_disks()
    session = Session(image, FakePredictor(target_size=256), mask_policy=NO_HOLD)
    session.set_prompts([(40, 50), (80, 115)], [1, 1])
    label = session.commit()
    session.edit_object(label)
    session.remove_point(1)  # only the first disk now
    session.commit()
    np.testing.assert_array_equal(session.labels == label, disk(image.shape, (40, 50), 14) > 0)


def test_editing_needs_a_free_hand_and_a_known_object():
    session = Session(two_disks(), FakePredictor())
    session.add_point((40, 50))
    with pytest.raises(ValueError, match="in progress"):
        session.edit_object(1)
    session.commit()
    with pytest.raises(ValueError, match="no committed object 7"):
        session.edit_object(7)
