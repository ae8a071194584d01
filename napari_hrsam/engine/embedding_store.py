"""Precomputed slice embeddings on disk (zarr), reused by ``hrsam segment --embeddings`` and by
sessions and widgets set up from Python (the widget has no setting for stores).

The encoder is the slow part of every click session (seconds per slice on a laptop CPU);
``hrsam embed`` runs it once per slice ahead of time and stores the features here, so a
later session starts clicking at decoder speed.

Reuse needs no session hook: ``StoreBackedPredictor`` wraps a predictor and answers
``embed(image, contrast_limits)`` from the store when the exact same input was stored.
An entry is found by its *content key*: a hash of the image array the session hands to
``embed`` (the slice pixels), its contrast limits and the target size. So a hit can only
happen for identical input, and the store is filled by running a real ``Session`` over
every slice (``build_store``): the session's own slicing and contrast code makes the
inputs, nothing is re-implemented here. A model check (a fingerprint of the weights)
refuses a store made with other weights.

Layout of a store (zarr group)::

    attrs: format, version, model_name, model_fingerprint, target_size, contrast_limits
           (None = automatic per slice), sources [{path, shape, dtype, sha, axis, rgb}]
    <entry>: float16 array (1, 256, T/16, T/16), attrs: key, source, axis, index,
             image_shape, resized_shape, slice_contrast_limits
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

FORMAT = "napari-hrsam-embeddings"
VERSION = 1


# ----------------------------------------------------------------------------- keys
def content_key(image, contrast_limits, target_size: int) -> str:
    """Hash naming an ``embed`` input: pixels, shape, dtype, contrast limits, target size."""
    array = np.ascontiguousarray(np.asarray(image))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(array.data)
    limits = None if contrast_limits is None else [float(v) for v in np.ravel(contrast_limits)]
    digest.update(repr((array.shape, array.dtype.str, limits, int(target_size))).encode())
    return digest.hexdigest()


def array_sha(array) -> str:
    """Content hash of a whole image or volume (names the source of a store)."""
    array = np.ascontiguousarray(np.asarray(array))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(array.data)
    digest.update(repr((array.shape, array.dtype.str)).encode())
    return digest.hexdigest()


def model_fingerprint(model) -> str:
    """Hash of a model's weights: a store only serves the weights that made it."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- store
class EmbeddingStore:
    """A zarr group of slice embeddings. ``open`` to read, ``create`` to write."""

    def __init__(self, group, path: Path):
        self._group = group
        self.path = path
        attrs = dict(group.attrs)
        if attrs.get("format") != FORMAT:
            raise ValueError(f"'{path}' is not an embedding store made by `hrsam embed` "
                             "(no napari-hrsam-embeddings marker)")
        if int(attrs.get("version", 0)) > VERSION:
            raise ValueError(f"'{path}' was written by a newer napari-hrsam "
                             f"(format version {attrs['version']}); upgrade napari-hrsam")
        self.attrs = attrs
        self._by_key = {dict(group[name].attrs)["key"]: name for name in self.entry_names()}

    # -- opening
    @classmethod
    def open(cls, path) -> "EmbeddingStore":
        zarr = _zarr()
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No embedding store at '{path}'; make one with "
                                    "`hrsam embed IMAGE --out STORE.zarr`")
        try:
            group = zarr.open_group(str(path), mode="r")
        except Exception as err:  # zarr raises several types for a non-store folder
            raise ValueError(f"'{path}' is not a zarr embedding store ({err})") from None
        return cls(group, path)

    @classmethod
    def create(cls, path, *, model_name: str, model_fingerprint: str, target_size: int,
               contrast_limits=None, overwrite: bool = False) -> "EmbeddingStore":
        zarr = _zarr()
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"'{path}' already exists; choose another --out or pass "
                                  "--overwrite")
        group = zarr.open_group(str(path), mode="w")
        group.attrs.update({
            "format": FORMAT, "version": VERSION, "model_name": model_name,
            "model_fingerprint": model_fingerprint, "target_size": int(target_size),
            "contrast_limits": _jsonable_limits(contrast_limits), "sources": [],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })
        return cls(group, path)

    # -- metadata
    @property
    def model_name(self) -> str:
        return self.attrs["model_name"]

    @property
    def model_fingerprint(self) -> str:
        return self.attrs["model_fingerprint"]

    @property
    def target_size(self) -> int:
        return int(self.attrs["target_size"])

    @property
    def contrast_limits(self):
        """The contrast setting the slices were embedded with: pass it to ``Session``."""
        return self.attrs["contrast_limits"]

    @property
    def sources(self) -> list[dict]:
        return list(self.attrs["sources"])

    def entry_names(self) -> list[str]:
        return sorted(name for name, _ in self._group.arrays())

    def entries(self) -> list[dict]:
        """Metadata of every stored slice (no features read)."""
        return [dict(self._group[name].attrs) | {"name": name} for name in self.entry_names()]

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def find_source(self, array) -> int | None:
        """Index of the source with ``array``'s content, or None."""
        sha = array_sha(array)
        return next((i for i, s in enumerate(self.sources) if s["sha"] == sha), None)

    # -- reading and writing
    def load(self, key: str):
        """The stored ``ImageEmbedding`` (float32 features on the CPU) for a content key,
        or None."""
        import torch

        from hrsam_model import ImageEmbedding

        name = self._by_key.get(key)
        if name is None:
            return None
        array = self._group[name]
        attrs = dict(array.attrs)
        features = torch.from_numpy(np.asarray(array[...], dtype=np.float32))
        return ImageEmbedding(features, tuple(attrs["image_shape"]),
                              tuple(attrs["resized_shape"]), self.target_size,
                              self.model_name)

    def add_source(self, path: str, array, axis: int | None, rgb: bool) -> int:
        sources = self.sources + [{"path": str(path), "shape": list(np.shape(array)),
                                   "dtype": str(np.asarray(array).dtype), "sha": array_sha(array),
                                   "axis": axis, "rgb": bool(rgb)}]
        self._group.attrs["sources"] = sources
        self.attrs["sources"] = sources
        return len(sources) - 1

    def add(self, name: str, key: str, embedding, contrast_limits, **info) -> None:
        """Store one embedding (as float16) under entry ``name``."""
        features = embedding.features.detach().float().cpu().numpy().astype(np.float16)
        array = _create_array(self._group, name, features)
        array.attrs.update({
            "key": key, "image_shape": list(embedding.image_shape),
            "resized_shape": list(embedding.resized_shape),
            "slice_contrast_limits": _jsonable_limits(contrast_limits), **info,
        })
        self._by_key[key] = name


# ----------------------------------------------------------------------------- reuse
class StoreBackedPredictor:
    """A predictor whose ``embed`` answers from an ``EmbeddingStore`` when it can.

    Give it to ``Session`` (or return it from the widget's ``predictor_factory``) in place
    of the predictor it wraps; ``hits``/``misses`` count ``embed`` calls. A session only
    hits when it asks for the same slice pixels with the same contrast limits as the
    store was built with: create it with ``contrast_limits=store.contrast_limits``.
    """

    def __init__(self, predictor, store: EmbeddingStore):
        size = int(getattr(predictor, "target_size", 1024))
        if size != store.target_size:
            raise ValueError(f"the store at '{store.path}' holds embeddings for target size "
                             f"{store.target_size}, the predictor uses {size}; use "
                             f"--target-size {store.target_size} or embed again")
        self.predictor = predictor
        self.store = store
        self.target_size = size
        self.hits = 0
        self.misses = 0
        self._checked = False

    @property
    def model(self):
        return getattr(self.predictor, "model", None)

    @property
    def choice(self):
        """The wrapped predictor's ``ModelChoice`` (the widget describes the model by it), or None."""
        return getattr(self.predictor, "choice", None)

    @property
    def built(self) -> bool:
        return getattr(self.predictor, "built", True)

    @property
    def should_cancel(self):
        return getattr(self.predictor, "should_cancel", None)

    @should_cancel.setter
    def should_cancel(self, check) -> None:  # the widget's Cancel reaches the wrapped encoder
        if hasattr(self.predictor, "should_cancel"):
            self.predictor.should_cancel = check

    def embed(self, image, contrast_limits=None):
        self._check_model()
        stored = self.store.load(content_key(image, contrast_limits, self.target_size))
        if stored is not None:
            self.hits += 1
            return stored
        self.misses += 1
        return self.predictor.embed(image, contrast_limits=contrast_limits)

    def set_embedding(self, embedding):
        self.predictor.set_embedding(embedding)
        device = _device_of(self.predictor)
        if device is not None and embedding.features.device != device:
            self.predictor.set_embedding(replace(embedding, features=embedding.features.to(device)))

    def predict(self, **prompts):
        return self.predictor.predict(**prompts)

    def predict_many(self, points, labels=None):
        return self.predictor.predict_many(points, labels)

    def _check_model(self):
        if self._checked:
            return
        model = _built_model(self.predictor)
        if model is not None and model_fingerprint(model) != self.store.model_fingerprint:
            raise ValueError(f"the embeddings in '{self.store.path}' were made with other "
                             f"weights than this {getattr(model, 'name', 'model')}; embed "
                             "again with the model you segment with")
        self._checked = True


def wrap_factory(factory: Callable, store: EmbeddingStore) -> Callable:
    """A widget ``predictor_factory`` that reuses ``store`` at its target size (other
    sizes get the plain predictor). The widget passes its image layer's contrast limits:
    set the layer's ``contrast_limits`` to ``store.contrast_limits`` for hits."""
    def make(choice):
        predictor = factory(choice)
        if choice.target_size != store.target_size:
            return predictor
        return StoreBackedPredictor(predictor, store)
    return make


# ----------------------------------------------------------------------------- building
class _Recorder:
    """Predictor stand-in that embeds with the real one and writes every result."""

    def __init__(self, predictor, store: EmbeddingStore):
        self.predictor = predictor
        self.store = store
        self.target_size = predictor.target_size
        self.model = getattr(predictor, "model", None)
        self.entry: dict | None = None  # name + info of the slice being embedded

    def embed(self, image, contrast_limits=None):
        key = content_key(image, contrast_limits, self.target_size)
        embedding = self.predictor.embed(image, contrast_limits=contrast_limits)
        entry = dict(self.entry)
        self.store.add(entry.pop("name"), key, embedding, contrast_limits, **entry)
        return embedding

    def set_embedding(self, embedding):  # the session never predicts while building
        raise RuntimeError("the embedding recorder does not predict")

    predict = set_embedding


def build_store(store: EmbeddingStore, image, predictor, *, source: str = "", axis: int = 0,
                rgb: bool | None = None, contrast_limits=None,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Embed every slice of ``image`` along spatial ``axis`` (a 2-D image: the image) into
    ``store``, through a ``Session`` so the inputs are exactly what sessions will ask for.

    ``contrast_limits`` as for ``Session`` (None: automatic per slice); it must equal the
    store's. Returns {"embedded": n, "skipped": [indices too big for one window]}.
    ``progress(done, total)`` after each slice.
    """
    from .session import Session
    from .slicing import ImageLayout

    if _jsonable_limits(contrast_limits) != store.contrast_limits:
        raise ValueError("contrast_limits differ from the store's: create the store with "
                         "the same contrast_limits")
    layout = ImageLayout(image, None, rgb)
    ndim = layout.ndim
    if ndim > 3:
        raise ValueError(f"embedding needs a 2-D image or a 3-D volume; got {ndim} spatial "
                         f"axes (shape {layout.shape})")
    if ndim == 2:
        axes, count = (0, 1), 1
    else:
        if not -ndim <= axis < ndim:
            raise ValueError(f"axis {axis} does not exist: the volume has {ndim} axes")
        axis %= ndim
        axes = tuple(a for a in range(ndim) if a != axis)
        count = layout.spatial_shape[axis]
    recorder = _Recorder(predictor, store)
    index = store.add_source(source, image, axis if ndim > 2 else None, layout.rgb)
    session = Session(image, recorder, rgb=layout.rgb, cache_bytes=0, contrast_limits=contrast_limits,
                      displayed_axes=axes, position=[0] if ndim > 2 else None)
    skipped = []
    for k in range(count):
        name = f"s{index:03d}_{k:05d}"
        recorder.entry = {"name": name, "source": index, "axis": axis if ndim > 2 else None,
                          "index": k if ndim > 2 else None}
        if ndim > 2:
            session.set_slice([k], axes)
        if not session.prepare_slice():
            skipped.append(k)
        if progress is not None:
            progress(k + 1, count)
    return {"embedded": count - len(skipped), "skipped": skipped}


# ----------------------------------------------------------------------------- helpers
def _zarr():
    try:
        import zarr
    except ImportError:
        raise ImportError("embedding stores need zarr: pip install zarr") from None
    return zarr


def _create_array(group, name: str, data: np.ndarray):
    if hasattr(group, "create_array"):  # zarr 3
        array = group.create_array(name, shape=data.shape, chunks=data.shape, dtype=data.dtype)
    else:  # zarr 2
        array = group.create_dataset(name, shape=data.shape, chunks=data.shape, dtype=data.dtype)
    array[...] = data
    return array


def _jsonable_limits(limits):
    if limits is None:
        return None
    return np.asarray(limits, dtype=float).tolist()


def _device_of(predictor):
    model = getattr(predictor, "model", None)
    if model is None:
        return None
    parameter = next(iter(model.parameters()), None)
    return None if parameter is None else parameter.device


def _built_model(predictor):
    """The predictor's model, building a lazy predictor (the widget's) if needed."""
    model = getattr(predictor, "model", None)
    if model is None and hasattr(predictor, "_real"):
        model = predictor._real().model
    return model
