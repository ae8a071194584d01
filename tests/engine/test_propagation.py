"""Propagation's stop rules and next-slice prompt (napari_hrsam.engine.propagation_rules), through the
Session with the deterministic fake model: a bright connected component under the click."""
import numpy as np
import pytest

from _session_fakes import FakePredictor, cylinder, disk
from napari_hrsam.engine.propagation_rules import (
    STOP_AREA,
    STOP_DRIFT,
    STOP_GROWTH,
    STOP_INTENSITY,
    PropagationRules,
    constrain,
    overlap_iou,
)
from napari_hrsam.engine.session import Session
from napari_hrsam.engine.state import SparseMask

PREVIOUS_RULES = PropagationRules(min_iou=0.5, max_growth=None, max_foreign=None,
                                  max_area_change=2.0, max_step=None, use_box=True)


def flooding_volume():
    """A bright disk on slices 5..14 (value 200); from slice 9 on a dimmer disk (value 160)
    beside it grows every slice and merges with it, and it lives on to the last slice: the
    fake model's mask grows 1.3-1.7x per slice, as a leak into neighbouring tissue does."""
    volume = cylinder(depth=24, first=5, last=14, shape=(96, 96), centre=(48, 30), radius=10)
    for z in range(9, 24):
        radius = min(6 + 3 * (z - 9), 40)
        neighbour = disk((96, 96), (48, 40 + radius), radius, value=160)
        volume[z] = np.maximum(volume[z], neighbour)
    return volume


def propagated_slices(volume, rules, start=7):
    session = Session(volume, FakePredictor())
    session.set_slice((start,))
    session.add_point((48, 30))
    result = session.propagate(rules=rules)
    return session, result


def dice(session, structure):
    painted = np.zeros(structure.shape, np.uint8)
    session.paint_object(painted)
    painted = painted.astype(bool)
    return 2 * np.count_nonzero(painted & structure) / (painted.sum() + structure.sum())


def test_a_leak_into_other_tissue_stops_near_the_structures_end():
    volume = flooding_volume()
    structure = volume == 200
    session, before = propagated_slices(volume, PREVIOUS_RULES)
    assert max(k.position[0] for k in before.slices) == 23  # the old rules ran to the volume's end
    assert dice(session, structure) < 0.6

    session, result = propagated_slices(volume, PropagationRules())
    assert result.stop_reasons[1] in (STOP_INTENSITY, STOP_GROWTH)
    assert max(k.position[0] for k in result.slices) <= 14
    assert min(k.position[0] for k in result.slices) == 5  # backwards it reached the start
    assert dice(session, structure) > 0.8


def test_growth_is_bounded_per_slice_and_against_the_seed():
    volume = np.zeros((12, 80, 80), np.uint8)
    for z in range(12):  # same intensity, the cross-section widens by 3 px a slice
        volume[z] = disk((80, 80), (40, 40), 6 + 3 * z)
    session = Session(volume, FakePredictor())
    session.set_slice((0,))
    session.add_point((40, 40))
    result = session.propagate("forward")
    areas = [session.object.slices[k].result.mask.area for k in sorted(result.slices, key=lambda k: k.position)]
    seed = session.object.slices[session.slice_key].result.mask.area
    assert areas and all(a <= 2.0 * seed for a in areas)
    assert result.stop_reasons == {1: STOP_GROWTH}
    # each slice's mask reaches at most the step radius (2 px here) past the previous one
    assert areas[0] <= np.pi * (6 + 2 + 1) ** 2


def test_the_previous_slice_rule_is_still_available():
    volume = cylinder()
    volume[12] = disk((64, 64), (30, 30), 22)  # area x4.8
    session = Session(volume, FakePredictor())
    session.set_slice((10,))
    session.add_point((30, 30))
    result = session.propagate("forward", rules=PropagationRules(max_area_change=2.0, max_step=None,
                                                                   max_growth=None))
    assert sorted(k.position[0] for k in result.slices) == [11]
    assert result.stop_reasons == {1: STOP_AREA}


def test_constrain_keeps_pieces_touching_the_previous_mask_within_the_step():
    previous = SparseMask.from_dense(disk((60, 60), (30, 30), 8) > 0)
    new = (disk((60, 60), (30, 30), 14) > 0) | (disk((60, 60), (8, 8), 4) > 0)
    kept = constrain(SparseMask.from_dense(new), previous, 3).dense()
    assert not kept[8, 8]  # the far piece is dropped
    assert kept[30, 30 + 11] and not kept[30, 30 + 12]  # 8 + 3 px reach
    assert constrain(SparseMask.from_dense(new), previous, None).dense()[8, 8]


def test_an_object_in_two_pieces_propagates_as_two_pieces():
    volume = cylinder(centre=(20, 16), radius=7)
    volume |= cylinder(centre=(44, 48), radius=7)
    session = Session(volume, FakePredictor())
    session.set_slice((10,))
    session.set_prompts([(20, 16), (44, 48)], [1, 1])
    session.propagate()
    session.commit()
    np.testing.assert_array_equal(session.labels > 0, volume > 0)


def test_a_mask_that_wanders_off_stops_with_the_agreement_rule():
    volume = np.zeros((12, 64, 96), np.uint8)
    for z in range(12):  # a disk sliding 4 px a slice: each slice overlaps the last by IoU ~0.5
        volume[z] = disk((64, 96), (32, 20 + 4 * z), 8)
    session = Session(volume, FakePredictor())
    session.set_slice((0,))
    session.add_point((32, 20))
    free = session.propagate("forward", rules=PropagationRules(max_step=None, use_box=False))
    assert len(free.slices) == 11
    session.undo()
    strict = session.propagate("forward", rules=PropagationRules(max_step=None, use_box=False,
                                                                 min_agreement=0.7))
    assert not strict.slices and strict.stop_reasons == {1: STOP_DRIFT}
    a = SparseMask.from_dense(volume[0] > 0)
    assert overlap_iou(a, a) == 1.0 and overlap_iou(a, SparseMask.from_dense(volume[11] > 0)) == 0.0


@pytest.mark.parametrize("bad, message", [
    (dict(min_iou=1.5), "min_iou"), (dict(max_growth=0.5), "max_growth"),
    (dict(max_foreign=0.0), "max_foreign"), (dict(max_area_change=1.0), "max_area_change"),
    (dict(max_step=-1), "max_step"), (dict(min_agreement=2), "min_agreement")])
def test_bad_rules_are_refused_in_one_line(bad, message):
    with pytest.raises(ValueError, match=message) as error:
        PropagationRules(**bad)
    assert "\n" not in str(error.value)


def test_propagation_request_refuses_something_that_is_not_rules():
    session = Session(cylinder(), FakePredictor())
    session.set_slice((10,))
    session.add_point((30, 30))
    with pytest.raises(ValueError, match="PropagationRules"):
        session.propagation_request(rules={"min_iou": 0.5})
