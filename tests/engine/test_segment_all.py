"""Segment everything: every object of a slice as new labels in one undo step, with the bundled
model (``Session.segment_all``, ``napari_hrsam.engine.automatic``)."""
import numpy as np
import pytest

from hrsam_model import Predictor, build_model
from napari_hrsam import Session
from napari_hrsam.engine.automatic import AutoCancelled, AutoSettings, slice_windows

CENTRES = [(60 + 90 * i, 60 + 90 * j) for i in range(4) for j in range(4)]


@pytest.fixture(scope="module")
def predictor():
    return Predictor(build_model("hrsam_tiny", pretrained=True), device="cpu")


def disks(shape=(400, 400), centres=CENTRES, radius=22):
    rng = np.random.default_rng(0)
    rows, cols = np.ogrid[:shape[0], :shape[1]]
    truth = np.zeros(shape, np.int32)
    for k, (r, c) in enumerate(centres):
        truth[(rows - r) ** 2 + (cols - c) ** 2 <= radius ** 2] = k + 1
    image = np.where(truth > 0, 200, 30) + rng.normal(0, 8, shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth


def matches(labels, truth):
    """For each true disk: (the label covering most of it, its IoU, the share of the disk that
    other labels hold)."""
    found = []
    for k in range(1, truth.max() + 1):
        disk = truth == k
        values, counts = np.unique(labels[disk], return_counts=True)
        counts[values == 0] = 0
        best = values[np.argmax(counts)]
        others = counts[(values != best) & (values != 0)].sum() / disk.sum()
        found.append((best, ((labels == best) & disk).sum() / ((labels == best) | disk).sum(), others))
    return found


def test_each_disk_is_found_once_and_undo_redo_are_exact(predictor):
    image, truth = disks()
    labels = np.zeros(image.shape, np.int32)
    labels[:6, :6] = 7  # a label that was there before
    session = Session(image, predictor, labels=labels)
    steps = []
    ids = session.segment_all(AutoSettings(points_per_side=16), progress=lambda d, n: steps.append((d, n)))
    found = matches(session.labels, truth)
    assert all(iou >= 0.8 for _, iou, _ in found)
    assert len({label for label, _, _ in found}) == 16 == len(ids)  # each disk once, nothing else
    assert all(others < 0.05 for *_, others in found)
    assert (session.labels[:6, :6] == 7).all() and ids[0] == 8  # untouched, new ids after it
    assert steps[-1][0] == steps[-1][1] and session.history[0][-1] == "segment all"
    after = session.labels.copy()
    assert session.undo() and (session.labels == labels_before(labels)).all()
    assert session.redo() and np.array_equal(session.labels, after)
    assert session.objects[ids[0]]["slices"][0]["source"] == "auto"


def labels_before(labels):
    before = np.zeros_like(labels)
    before[:6, :6] = 7
    return before


def test_a_cancelled_run_changes_nothing(predictor):
    image, _ = disks()
    session = Session(image, predictor)
    with pytest.raises(AutoCancelled):
        session.segment_all(AutoSettings(points_per_side=16), should_cancel=lambda: True)
    assert not session.labels.any() and not session.can_undo


def test_a_disk_cut_by_a_tile_border_comes_out_as_one_object(predictor):
    shape = (300, 860)
    for settings in (AutoSettings(), AutoSettings(seeds="grid", tile_zoom=2)):
        windows = slice_windows(shape, 1024, settings)  # the defaults: a quarter of the model's input, 4x
        assert len(windows) >= 2 and windows[1].box[1] < windows[0].box[3]  # overlapping tiles
        border = windows[0].box[3]  # the first tile's right edge
        image, truth = disks(shape, [(150, border - 5), (150, border + 90)], radius=25)
        session = Session(image, predictor)
        session.segment_all(settings)
        assert len(np.unique(session.labels)) == 3
        for _, iou, others in matches(session.labels, truth):
            assert iou >= 0.8 and others < 0.05


def test_blob_seeds_click_each_blob_once_in_either_polarity():
    from napari_hrsam.engine.auto_seeds import blob_points

    image, truth = disks((200, 200), [(50, 50), (60, 150), (150, 100)], radius=12)
    scaled = image / 255.0
    for pixels in (scaled, 1 - scaled):  # bright nuclei on dark, dark cells on bright
        points = blob_points(pixels, (100, 20), max_points=50)
        hit = [truth[int(r) - 100, int(c) - 20] for r, c in points]
        assert sorted(set(hit) - {0}) == [1, 2, 3]
        assert hit.count(0) <= 1  # background is (almost) never clicked
    assert len(blob_points(scaled, (0, 0), max_points=2)) == 2
    assert blob_points(np.full((64, 64), 0.3), (0, 0), max_points=10) == []


def test_flat_and_nan_slices_are_refused_and_nothing_is_written(predictor):
    flat = Session(np.full((64, 64), 9, np.uint16), predictor)
    with pytest.raises(ValueError, match="no contrast"):
        flat.segment_all()
    nan = np.zeros((64, 64), np.float32)
    nan[3, 3] = np.nan
    session = Session(nan, predictor)
    with pytest.raises(ValueError, match="NaN"):
        session.segment_all()
    assert not flat.labels.any() and not session.labels.any() and not session.can_undo
    with pytest.raises(ValueError, match="points_per_side"):
        AutoSettings(points_per_side=0)


def test_blank_tiles_and_blank_slices_of_a_range_hold_no_object_but_do_not_stop_the_run(predictor):
    image = np.full((300, 860), 30, np.uint8)  # the second tile (columns 348..860) is one flat value
    rows, cols = np.ogrid[:300, :860]
    image[(rows - 150) ** 2 + (cols - 150) ** 2 <= 25 ** 2] = 200
    session = Session(image, predictor)
    assert len(session.segment_all(AutoSettings(points_per_side=16))) == 1
    volume = np.stack([np.full((300, 860), 30, np.uint8), image, np.full((300, 860), 30, np.uint8)])
    stack = Session(volume, predictor, position=(0,))
    assert len(stack.segment_all(AutoSettings(points_per_side=16), slices=range(3), axis=0)) == 1
    with pytest.raises(ValueError, match="no contrast"):  # every slice of the range blank
        stack.segment_all(AutoSettings(points_per_side=16), slices=[0, 2], axis=0)


def test_a_range_of_slices_links_objects_into_3d_by_overlap(predictor):
    image, truth = disks((200, 200), [(50, 50), (150, 140)], radius=22)
    volume = np.stack([image] * 3)  # three slices with the same two disks
    linked = Session(volume, predictor, position=(1,))
    linked.segment_all(AutoSettings(points_per_side=16), slices=range(3), link=True)
    disk_ids = []
    for r, c in ((50, 50), (150, 140)):
        values = {int(v) for v in linked.labels[:, r, c]}
        assert len(values) == 1 and 0 not in values  # one 3-D object through the three slices
        disk_ids += values
        record = linked.objects[disk_ids[-1]]
        assert [s["position"] for s in record["slices"]] == [[0], [1], [2]]
    assert disk_ids[0] != disk_ids[1]
    apart = Session(volume, predictor, position=(1,))
    apart.segment_all(AutoSettings(points_per_side=16), slices=[0, 2])
    assert apart.labels[0, 50, 50] and apart.labels[2, 50, 50] and apart.labels[0, 50, 50] != apart.labels[2, 50, 50]
    assert not apart.labels[1].any()  # only the slices asked for
    with pytest.raises(ValueError, match="indices"):
        apart.segment_all(slices=[5])


def test_an_8192_px_slice_is_read_one_window_at_a_time(predictor):
    from _session_fakes import CountingArray

    image = np.zeros((8192, 8192), np.uint8)  # 64 MiB; a float copy would be 256 MiB
    part, truth = disks((400, 400), [(150, 150), (250, 260)], radius=25)
    image[:400, :400] = part
    lazy = CountingArray(image)
    session = Session(lazy, predictor)
    session.segment_all(AutoSettings(points_per_side=16), box=(100, 100, 320, 330))
    for _, iou, _ in matches(session.labels[:400, :400], truth):
        assert iou >= 0.8
    areas = [(s[0].stop - s[0].start) * (s[1].stop - s[1].start) for s in lazy.reads]
    assert max(areas) <= 600 * 600  # a tile (512 px) or a mask's neighbourhood, never the slice


def test_the_widgets_lazy_and_store_backed_predictors_segment_all(tmp_path):
    from _micro_model import micro_model
    from napari_hrsam.engine.embedding_reuse import StoreBackedPredictor
    from napari_hrsam.engine.embedding_store import EmbeddingStore, model_fingerprint
    from napari_hrsam.engine.model_choice import ModelChoice, ModelStore

    image, _ = disks((200, 200), [(100, 100)], radius=30)
    store, choice = ModelStore(), ModelChoice(device="cpu")
    model = micro_model()
    store._models[choice.network_key] = model  # the widget's default predictor, made small
    lazy = store.predictor(choice)
    embeddings = EmbeddingStore.create(tmp_path / "e.zarr", model_name=model.name,
                                       model_fingerprint=model_fingerprint(model), target_size=1024)
    for predictor in (lazy, StoreBackedPredictor(lazy, embeddings)):
        Session(image, predictor).segment_all(AutoSettings(points_per_side=4))  # decodes in batches
