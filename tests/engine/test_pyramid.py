"""Multiscale images: the model's input comes from the coarsest level that holds enough pixels;
masks, labels and prompts stay at full resolution."""
import numpy as np
import pytest

from _session_fakes import FakePredictor, disk
from napari_hrsam import Session
from napari_hrsam.engine.pyramid import checked_levels, pick_level


class RecordedReads:
    """An array that records the indices it was read with."""

    def __init__(self, data):
        self.data, self.reads = data, []
        self.shape, self.dtype = data.shape, data.dtype

    def __getitem__(self, index):
        self.reads.append(index)
        return self.data[index]


def test_a_whole_slice_is_read_from_the_level_near_the_model_input_and_the_mask_is_full_size():
    truth = disk((2048, 2048), (700, 900), 120) > 0
    full = RecordedReads(truth.astype(np.uint8) * 200)
    levels = [full, full.data[::2, ::2], full.data[::4, ::4]]
    predictor = FakePredictor(target_size=1024)
    session = Session(levels, predictor)
    mask = session.add_point((700, 900))
    assert full.reads == []  # neither the model's input nor anything else read full resolution
    assert predictor.embed_calls and mask.shape == (2048, 2048)
    assert (mask & truth).sum() / (mask | truth).sum() >= 0.97
    session.commit()
    assert session.labels.shape == (2048, 2048) and session.labels[700, 900] == 1


def test_a_small_window_of_a_huge_slice_is_read_at_full_resolution():
    truth = disk((2048, 2048), (300, 300), 40) > 0
    full = RecordedReads(truth.astype(np.uint8) * 200)
    half = RecordedReads(full.data[::2, ::2])
    session = Session([full, half], FakePredictor(target_size=256), zoom_in=True)
    mask = session.add_point((300, 300))  # a 256 px window: no coarser level holds 256 px of it
    assert full.reads and not half.reads
    assert (mask & truth).sum() / (mask | truth).sum() >= 0.97


def test_levels_that_thin_other_axes_or_do_not_shrink_are_not_used():
    shapes = [(10, 1000, 1000), (5, 500, 500), (10, 500, 500), (10, 333, 250)]
    assert pick_level(shapes, (1, 2), (0, 0, 1000, 1000), (400, 400)) == (2, (2, 2))
    assert pick_level(shapes, (1, 2), (0, 0, 1000, 1000), (600, 600)) == (0, (1, 1))
    assert pick_level([(4097, 4097), (2048, 2048)], (0, 1), (0, 0, 4097, 4097), (1024, 1024)) == (1, (2, 2))
    with pytest.raises(ValueError, match="not a downsampling"):
        checked_levels([np.zeros((10, 10)), np.zeros((20, 5))])
