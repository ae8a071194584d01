"""Session on big data: huge slices segmented in a window within bounded memory, lazy (dask,
zarr) arrays read one slice at a time, and the byte-bounded embedding cache (fake predictor)."""
import tracemalloc

import numpy as np
import pytest

from _session_fakes import CountingArray, FakePredictor, cylinder, disk
from napari_hrsam.engine.embedding_cache import EmbeddingCache
from napari_hrsam.engine.mask_policy import MaskPolicy
from napari_hrsam.engine.session import Session
from napari_hrsam.engine.state import SliceKey


# ------------------------------------------------------------------------ huge slices
def test_huge_slice_is_segmented_in_a_window_within_bounded_memory():
    shape = (8192, 8192)
    image = np.zeros(shape, np.uint8)
    image[4800:5200, 2800:3200] = disk((400, 400), (200, 200), 150)
    predictor = FakePredictor(target_size=1024)
    session = Session(image, predictor)
    tracemalloc.start()
    session.add_point((5000, 3000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert predictor.embed_calls[-1]["shape"] == (1024, 1024)  # a window, not the slice
    assert peak < 150 * 2 ** 20  # a float copy of the slice alone would be 256 MiB
    sparse = session.preview_sparse
    truth = image[4800:5200, 2800:3200] > 0
    r0, c0, r1, c1 = sparse.bbox
    assert (r0, c0, r1, c1) == (4850, 2850, 5151, 3151)
    np.testing.assert_array_equal(sparse.crop, truth[50:351, 50:351])
    session.add_point((5100, 3100), positive=True)  # inside the window: embedding reused
    assert len(predictor.embed_calls) == 1
    before = session.preview_sparse
    session.add_point((300, 7900), positive=False)  # far outside: cannot change the mask
    assert len(predictor.embed_calls) == 1 and session.preview_sparse.bbox == before.bbox
    np.testing.assert_array_equal(session.preview_sparse.crop, before.crop)
    assert session.commit() == 1
    np.testing.assert_array_equal(session.labels[4800:5200, 2800:3200], truth)
    assert int((session.labels == 1).sum()) == int(truth.sum())


@pytest.mark.parametrize("sam_layout", [False, True])
def test_huge_window_is_shrunk_and_pasted_back(sam_layout):
    image = disk((3000, 3000), (1200, 1300), 180, value=255)  # > 2 x 1024: windowed
    predictor = FakePredictor(target_size=1024, sam_layout=sam_layout)
    session = Session(image, predictor)
    session.set_box((900, 900, 2900, 2900))  # a 2000 px box: the window is shrunk ~2x
    shape = predictor.embed_calls[-1]["shape"]
    assert max(shape) == 1024 and shape[0] < 3000
    mask, truth = session.preview, image > 0
    assert (mask & truth).sum() / (mask | truth).sum() > 0.99
    centre = np.argwhere(mask).mean(axis=0)
    assert np.abs(centre - [1200, 1300]).max() < 1.0  # no shift from the resizing


def test_a_click_holds_on_the_slices_own_pixels_in_a_shrunk_window():
    image = disk((3000, 3000), (1200, 1300), 180, value=255)
    masks = []
    for hold in (True, False):
        session = Session(image, FakePredictor(target_size=1024, sam_layout=True),
                          mask_policy=MaskPolicy(hold_clicks=hold))
        session.set_box((900, 900, 2900, 2900))  # shrunk ~2x: the mask is drawn from the logits
        session.add_point((2500, 2500))  # on the background, inside the box
        session.add_point((1200, 1300), positive=False)  # in the disk's centre
        masks.append(session.preview)
    held, as_drawn = masks
    assert held[2500, 2500] and held[2499:2502, 2500].all() and held[2500, 2499:2502].all()
    assert not held[1200, 1300] and not held[1199:1202, 1300].any()
    assert as_drawn[1200, 1300] and not as_drawn[2500, 2500]
    assert (held ^ as_drawn).sum() == 10  # one slice pixel's discs, not coarse ones; nothing else changed


def test_huge_slice_contrast_from_a_strided_subsample():
    image = np.full((8192, 4096), 1000, np.uint16)
    image[3000:3300, 2000:2300] = 3000
    counting = CountingArray(image)
    predictor = FakePredictor(target_size=1024)
    session = Session(counting, predictor)
    session.add_point((3150, 2150))
    steps = sorted(index[0].step for index in counting.reads)
    assert len(steps) == 2 and steps[0] == 1 and steps[1] > 1  # strided look + window read
    window = [index for index in counting.reads if index[0].step == 1][0]
    assert window[0].stop - window[0].start == 1024 and window[1].stop - window[1].start == 1024
    # the object covers < 0.5 % of the slice: both percentiles are background
    assert predictor.embed_calls[-1]["contrast_limits"] == (1000.0, 1001.0)
    np.testing.assert_array_equal(session.preview, image > 2000)


# ------------------------------------------------------------------------ lazy data
def test_only_the_needed_slice_is_read():
    volume = CountingArray(cylinder(depth=30))
    session = Session(volume, FakePredictor())
    assert volume.reads == []  # construction reads nothing
    session.set_slice((10,))
    assert volume.reads == []
    session.add_point((30, 30))
    assert volume.reads and all(index[0] == 10 for index in volume.reads)
    reads = len(volume.reads)
    session.add_point((31, 30))
    assert len(volume.reads) == reads  # the embedding is cached: no new read


def test_dask_and_zarr_arrays():
    da = pytest.importorskip("dask.array")
    zarr = pytest.importorskip("zarr")
    volume = cylinder()
    lazy = da.from_array(volume, chunks=(1, 64, 64))
    labels = zarr.zeros(volume.shape, chunks=(1, 64, 64), dtype="uint32")
    session = Session(lazy, FakePredictor(), labels=labels)
    session.set_slice((10,))
    session.add_point((30, 30))
    session.propagate()
    assert session.commit() == 1
    np.testing.assert_array_equal(labels[:], (volume > 0).astype(np.uint32))
    session.undo()
    assert not np.asarray(labels[:]).any()
    stored = zarr.array(volume, chunks=(1, 64, 64))
    session = Session(stored, FakePredictor())
    session.set_slice((12,))
    np.testing.assert_array_equal(session.add_point((30, 30)), volume[12] > 0)
    with pytest.raises(ValueError, match="writable"):
        Session(volume, FakePredictor(), labels=da.zeros(volume.shape, dtype=np.int32))


# ------------------------------------------------------------------------ caching
def test_lru_eviction_by_bytes_and_shared_cache():
    volume = cylinder()
    nbytes = 64 * 64 * 4  # a fake embedding of one slice
    cache = EmbeddingCache(max_bytes=int(2.5 * nbytes))
    predictor = FakePredictor()
    session = Session(volume, predictor, cache=cache, data_key="cyl")
    for z in (6, 7, 8):
        session.set_slice((z,))
        session.add_point((30, 30))
    assert len(cache) == 2 and cache.nbytes == 2 * nbytes
    assert len(predictor.embed_calls) == 3
    session.set_slice((7,))
    session.add_point((31, 31))  # still cached
    assert len(predictor.embed_calls) == 3
    session.set_slice((6,))
    session.add_point((31, 31))  # evicted first: computed again
    assert len(predictor.embed_calls) == 4
    other = Session(volume, predictor, cache=cache, data_key="cyl")
    other.set_slice((6,))
    other.add_point((30, 30))  # same data key: shared embedding
    assert len(predictor.embed_calls) == 4
    assert session.prepare_slice(SliceKey((1, 2), (15,))) is True
    assert session.prepare_slice(SliceKey((1, 2), (15,))) is False


def test_the_mask_policy_not_the_predictor_decides_behind_a_wrapper():
    class Wrapper:  # like the embedding store's predictor
        def __init__(self, inner):
            self.inner, self.target_size = inner, inner.target_size

        def embed(self, image, contrast_limits=None):
            return self.inner.embed(image, contrast_limits)

        def set_embedding(self, embedding):
            self.inner.set_embedding(embedding)

        def predict(self, **prompts):
            return self.inner.predict(**prompts)

    image = disk((3000, 3000), (1200, 1300), 180, value=255)
    session = Session(image, Wrapper(FakePredictor(target_size=1024, sam_layout=True)),
                      mask_policy=MaskPolicy(keep_clicked_pieces=False, hold_clicks=False))
    session.set_box((900, 900, 2900, 2900))  # shrunk: the slice mask is drawn from the logits
    session.add_point((2500, 2500))
    assert not session.preview[2500, 2500]  # as drawn: --all-pieces --no-click-hold stays raw
    session.mask_policy = MaskPolicy()
    session.predict_again()
    assert session.predict()[2500, 2500]  # the default policy holds the click, wrapper or not
