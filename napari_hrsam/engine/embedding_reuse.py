"""Reusing an ``EmbeddingStore``: a predictor that answers ``embed`` from it
(``StoreBackedPredictor``, ``wrap_factory`` for the widget), and filling it through a real
``Session`` (``build_store``), so the stored inputs are exactly what sessions will ask for."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .embedding_store import EmbeddingStore, content_key, jsonable_limits, model_fingerprint


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
        self.entry: dict | None = None  # info of the slice being embedded
        self.passes = 0  # encoder passes (entries already complete need none)

    def embed(self, image, contrast_limits=None):
        key = content_key(image, contrast_limits, self.target_size)
        stored = self.store.load(key)  # resume: a finished entry costs no encoder pass
        if stored is not None:
            return stored
        embedding = self.predictor.embed(image, contrast_limits=contrast_limits)
        self.passes += 1
        self.store.add(key, embedding, contrast_limits, **self.entry)
        return embedding

    def set_embedding(self, embedding):  # the session never predicts while building
        raise RuntimeError("the embedding recorder does not predict")

    predict = set_embedding


def build_store(store: EmbeddingStore, image, predictor, *, source: str = "", axis: int = 0,
                rgb: bool | None = None, contrast_limits=None, slices: range | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Embed every slice of ``image`` along spatial ``axis`` (a 2-D image: the image; with
    ``slices``, those indices only) into ``store``, through a ``Session`` so the inputs are
    exactly what sessions will ask for. Slices already complete in the store are not encoded
    again (resume). Safe to run from many processes at once on one version 2 store.

    ``contrast_limits`` as for ``Session`` (None: automatic per slice); it must equal the
    store's. Returns {"embedded": n, "skipped": [indices too big for one window],
    "encoder_passes": m}. ``progress(done, total)`` after each slice.
    """
    from .session import Session
    from .slicing import ImageLayout

    if jsonable_limits(contrast_limits) != store.contrast_limits:
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
    sha = store.add_source(source, image, axis if ndim > 2 else None, layout.rgb)
    session = Session(image, recorder, rgb=layout.rgb, cache_bytes=0, contrast_limits=contrast_limits,
                      displayed_axes=axes, position=[0] if ndim > 2 else None)
    indices = range(count) if slices is None else slices
    if indices and not 0 <= min(indices) <= max(indices) < count:
        raise ValueError(f"slices {indices.start}-{indices.stop - 1} do not lie in 0-{count - 1}")
    skipped = []
    for done, k in enumerate(indices, start=1):
        recorder.entry = {"source": sha, "axis": axis if ndim > 2 else None, "index": k if ndim > 2 else None}
        if ndim > 2:
            session.set_slice([k], axes)
        if not session.prepare_slice():  # a slice too big for one window (cache_bytes=0: never cached)
            skipped.append(k)
        if progress is not None:
            progress(done, len(indices))
    return {"embedded": len(indices) - len(skipped), "skipped": skipped, "encoder_passes": recorder.passes}


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
