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
    np.testing.assert_array_equal(preview, before == first)  # its mask, shown as it is
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
    with pytest.raises(ValueError, match="no voxel of this slice has label 7"):
        session.edit_object(7)


def test_an_object_painted_by_hand_is_edited_from_its_mask():
    image = two_disks()
    labels = np.zeros(image.shape, np.int32)
    labels[30:52, 40:62] = 5  # painted by hand: a square over the first disk, no prompts
    session = Session(image, FakePredictor(target_size=256), labels=labels, mask_policy=NO_HOLD)
    shown = session.edit_object(5)
    np.testing.assert_array_equal(shown, labels == 5)  # the mask as painted, no model run yet
    assert session.prompts.points and session.prompts.labels == (1,)  # a click at its deepest point
    logits = session.object.slices[session.slice_key].result.logits
    assert logits.shape == (1, 64, 64) and (logits > 0).any()  # the mask is the next mask prompt
    session.add_point((80, 115))
    assert session.commit() == 5 and session.labels[80, 115] == 5
    session.undo()
    session.undo()
    session.undo()
    np.testing.assert_array_equal(session.labels, labels)


def test_mask_logits_read_back_as_the_same_mask():
    from hrsam_model.pixels import resized_shape
    from napari_hrsam.engine.resampling import logits_in_window, mask_logits
    from napari_hrsam.engine.state import Region, SparseMask

    dense = disk((300, 500), (120, 200), 40) > 0
    mask = SparseMask.from_dense(dense)
    for region in (Region((0, 0, 300, 500), (300, 500)), Region((50, 100, 250, 400), (200, 300))):
        logits = mask_logits(mask, region, 1024)
        back = logits_in_window(logits[0], region, (300, 500), 1024, resized_shape(*region.size, 1024)).dense()
        inside = np.zeros_like(dense)
        inside[region.box[0]:region.box[2], region.box[1]:region.box[3]] = True
        truth = dense & inside
        assert (back & truth).sum() / (back | truth).sum() > 0.95
