"""EmbeddingStore: what `hrsam embed` writes, and sessions reusing it through
StoreBackedPredictor (hits only for identical input and identical weights)."""
import numpy as np
import pytest
import torch

from _micro_model import micro_model
from hrsam_model import Predictor
from napari_hrsam.engine.embedding_reuse import StoreBackedPredictor, build_store, wrap_factory
from napari_hrsam.engine.embedding_store import EmbeddingStore, content_key, model_fingerprint
from napari_hrsam.engine.session import Session


def ball_volume(depth=4, shape=(48, 56)):
    z, y, x = np.ogrid[:depth, :shape[0], :shape[1]]
    inside = (y - 24) ** 2 + (x - 28) ** 2 <= (10 + 2 * z) ** 2
    return (100 + 800 * inside).astype(np.uint16)


@pytest.fixture(scope="module")
def predictor():
    return Predictor(micro_model(), device="cpu")


def new_store(path, predictor, contrast_limits=None):
    return EmbeddingStore.create(path, model_name=predictor.model.name,
                                 model_fingerprint=model_fingerprint(predictor.model),
                                 target_size=predictor.target_size,
                                 contrast_limits=contrast_limits)


@pytest.fixture(scope="module")
def stored(tmp_path_factory, predictor):
    """A store of every z slice of ball_volume(), built once for the module."""
    path = tmp_path_factory.mktemp("store") / "vol.zarr"
    calls = []
    done = build_store(new_store(path, predictor), ball_volume(), predictor, source="vol",
                       axis=0, progress=lambda d, t: calls.append((d, t)))
    assert done == {"embedded": 4, "skipped": [], "encoder_passes": 4}
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    return EmbeddingStore.open(path)


def test_store_holds_one_float16_entry_per_slice_with_metadata(stored, predictor):
    assert len(stored) == 4
    entries = sorted(stored.entries(), key=lambda e: e["index"])  # version 2 names them by content
    sha = stored.sources[0]["sha"]
    assert [(e["axis"], e["index"], e["source"]) for e in entries] == [(0, k, sha) for k in range(4)]
    assert all(e["complete"] for e in entries) and stored.version == 2
    assert all(tuple(e["image_shape"]) == (48, 56) for e in entries)
    assert all(tuple(e["resized_shape"]) == (878, 1024) for e in entries)
    assert stored.sources[0]["sha"] and stored.sources[0]["shape"] == [4, 48, 56]
    assert stored.model_fingerprint == model_fingerprint(predictor.model)
    name = entries[2]["name"]
    assert stored._group["entries"][name].dtype == np.float16
    # the stored features are the encoder's output for that slice (to float16 precision)
    lo, hi = entries[2]["slice_contrast_limits"]
    direct = predictor.embed(ball_volume()[2], contrast_limits=(lo, hi))
    loaded = stored.load(name)  # the entry's name is its content key
    torch.testing.assert_close(loaded.features, direct.features, atol=2e-2, rtol=1e-2)
    assert loaded.image_shape == direct.image_shape and loaded.resized_shape == direct.resized_shape


def test_session_reuses_stored_slices_and_predicts_the_same_mask(stored, predictor):
    volume = ball_volume()
    reusing = StoreBackedPredictor(predictor, stored)
    session = Session(volume, reusing, position=[2], contrast_limits=stored.contrast_limits)
    with_store = session.add_point((24, 28))
    assert (reusing.hits, reusing.misses) == (1, 0)
    plain = Session(volume, predictor, position=[2]).add_point((24, 28))
    overlap = (with_store & plain).sum() / max((with_store | plain).sum(), 1)
    assert overlap >= 0.98  # float16 storage changes at most a few boundary pixels
    session.set_slice([3])
    session.add_point((24, 28))
    assert (reusing.hits, reusing.misses) == (2, 0)
    session.set_slice([10], displayed_axes=(0, 2))  # a y slice: never stored
    session.add_point((2, 28))
    assert (reusing.hits, reusing.misses) == (2, 1)


def test_other_contrast_misses(stored, predictor):
    reusing = StoreBackedPredictor(predictor, stored)
    Session(ball_volume(), reusing, position=[1], contrast_limits=(0, 5000)).add_point((24, 28))
    assert (reusing.hits, reusing.misses) == (0, 1)


def test_fixed_contrast_store_serves_a_session_with_those_limits(tmp_path, predictor):
    volume = ball_volume(depth=2)
    store = new_store(tmp_path / "fixed.zarr", predictor, contrast_limits=(0, 1000))
    build_store(store, volume, predictor, contrast_limits=(0, 1000))
    assert store.contrast_limits == [0.0, 1000.0]
    reusing = StoreBackedPredictor(predictor, EmbeddingStore.open(tmp_path / "fixed.zarr"))
    Session(volume, reusing, position=[1], contrast_limits=(0, 1000)).add_point((24, 28))
    assert reusing.hits == 1
    with pytest.raises(ValueError, match="contrast_limits differ"):
        build_store(store, volume, predictor, contrast_limits=None)


def test_other_weights_are_refused(stored):
    other = Predictor(micro_model(seed=1), device="cpu")
    reusing = StoreBackedPredictor(other, stored)
    session = Session(ball_volume(), reusing, position=[0])
    with pytest.raises(ValueError, match="other weights"):
        session.add_point((24, 28))
    assert session.preview is None and not session.can_undo  # nothing changed


def test_other_target_size_is_refused(stored):
    big = Predictor(micro_model(), device="cpu", target_size=2048)
    with pytest.raises(ValueError, match="target size 1024"):
        StoreBackedPredictor(big, stored)


def test_wrap_factory_wraps_only_the_store_size(stored, predictor):
    from napari_hrsam.engine.model_choice import ModelChoice

    factory = wrap_factory(lambda choice: predictor if choice.target_size == 1024 else object(), stored)
    assert isinstance(factory(ModelChoice(target_size=1024)), StoreBackedPredictor)
    assert not isinstance(factory(ModelChoice(target_size=2048)), StoreBackedPredictor)


def test_rgb_image_entry(tmp_path, predictor):
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[10:30, 15:35] = (200, 50, 10)
    store = new_store(tmp_path / "rgb.zarr", predictor)
    assert build_store(store, rgb, predictor, source="rgb.png")["embedded"] == 1
    entry = EmbeddingStore.open(tmp_path / "rgb.zarr").entries()[0]
    assert entry["index"] is None and tuple(entry["image_shape"]) == (40, 50)
    assert store.sources[0]["rgb"] is True


def test_content_key_names_pixels_limits_and_size():
    image = np.arange(12, dtype=np.uint16).reshape(3, 4)
    key = content_key(image, (0, 11), 1024)
    assert key == content_key(image.copy(), (0.0, 11.0), 1024)
    assert key != content_key(image, (0, 12), 1024)
    assert key != content_key(image, (0, 11), 2048)
    assert key != content_key(image.astype(np.int32), (0, 11), 1024)
    changed = image.copy()
    changed[1, 1] += 1
    assert key != content_key(changed, (0, 11), 1024)


def test_bad_stores(tmp_path, predictor):
    with pytest.raises(FileNotFoundError, match="hrsam embed"):
        EmbeddingStore.open(tmp_path / "missing.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError):
        EmbeddingStore.open(tmp_path / "plain")
    import zarr
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["format"] = "something"
    with pytest.raises(ValueError, match="not an embedding store"):
        EmbeddingStore.open(tmp_path / "other.zarr")
    new_store(tmp_path / "taken.zarr", predictor)
    with pytest.raises(FileExistsError):
        new_store(tmp_path / "taken.zarr", predictor)
    with pytest.raises(ValueError, match="axis 3"):
        build_store(EmbeddingStore.open(tmp_path / "taken.zarr"), ball_volume(), predictor, axis=3)


def test_a_version_1_store_is_still_read(tmp_path, predictor):
    import zarr

    from napari_hrsam.engine.embedding_store import FORMAT

    image = ball_volume()[1]
    embedding = predictor.embed(image, contrast_limits=(100.0, 900.0))
    key = content_key(image, (100.0, 900.0), predictor.target_size)
    group = zarr.open_group(str(tmp_path / "v1.zarr"), mode="w")
    group.attrs.update({"format": FORMAT, "version": 1, "model_name": predictor.model.name,
                        "model_fingerprint": model_fingerprint(predictor.model), "target_size": 1024,
                        "contrast_limits": [100.0, 900.0], "sources": [{"path": "x", "sha": "abc"}]})
    array = group.create_array("s000_00000", shape=embedding.features.shape, dtype="float16")
    array[...] = embedding.features.numpy().astype(np.float16)
    array.attrs.update({"key": key, "image_shape": [48, 56], "resized_shape": [878, 1024], "source": 0})
    store = EmbeddingStore.open(tmp_path / "v1.zarr")
    assert store.version == 1 and len(store) == 1 and key in store and store.sources[0]["sha"] == "abc"
    torch.testing.assert_close(store.load(key).features, embedding.features, atol=2e-2, rtol=1e-2)
    with pytest.raises(ValueError, match="version 1 store, read-only"):
        EmbeddingStore.open(tmp_path / "v1.zarr", writable=True)


def test_building_again_resumes_without_encoding_and_a_torn_entry_is_redone(tmp_path, predictor):
    path = tmp_path / "s.zarr"
    store = new_store(path, predictor)
    assert build_store(store, ball_volume(), predictor, axis=0, slices=range(0, 2))["encoder_passes"] == 2
    again = EmbeddingStore.open(path, writable=True)
    assert build_store(again, ball_volume(), predictor, axis=0)["encoder_passes"] == 2  # only slices 2, 3
    torn = sorted(again.entries(), key=lambda e: e["index"])[3]["name"]
    again._group["entries"][torn].attrs["complete"] = False  # a writer killed before its last step
    reopened = EmbeddingStore.open(path, writable=True)
    assert len(reopened) == 3 and torn not in reopened
    assert build_store(reopened, ball_volume(), predictor, axis=0)["encoder_passes"] == 1
    assert len(EmbeddingStore.open(path)) == 4
    with pytest.raises(ValueError, match="do not lie in"):
        build_store(reopened, ball_volume(), predictor, axis=0, slices=range(3, 6))
