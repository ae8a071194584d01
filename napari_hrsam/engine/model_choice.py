"""Which model segments: one ``ModelChoice`` value (name, weights, device, target size), checked and
built here for the widget, every ``hrsam`` command, ``hrsam eval`` and the benchmarks.

Building a model imports torch and reads weights (seconds). The widget must create its session at
once on the main thread, so it gets a ``LazyPredictor`` whose heavy parts are built on the first
``embed``/``predict`` call, which happens in the worker thread. Its encoder can be stopped between
blocks (``should_cancel``), so the widget's Cancel does not have to wait for a 4096 px encoding.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from hrsam_model.configs import DEFAULT_MODEL, DEVICES, TARGET_SIZES, available_models


@runtime_checkable
class SlicePredictor(Protocol):
    """What the engine needs of a predictor (``hrsam_model.Predictor``, ``LazyPredictor``, the
    embedding store's ``StoreBackedPredictor`` and the tests' fakes): ``embed`` a 2-D image into
    an embedding, ``set_embedding`` it, and ``predict(points=, labels=, box=, mask_input=)`` the
    decoder's own mask (``.mask``, ``.logits``, ``.iou``) on that image's grid. Segment all also
    calls ``predict_many(points, labels)`` (``hrsam_model.Predictor.predict_many``)."""

    target_size: int

    def embed(self, image, contrast_limits=None): ...

    def set_embedding(self, embedding) -> None: ...

    def predict(self, points=None, labels=None, box=None, mask_input=None): ...


@dataclass(frozen=True)
class ModelChoice:
    """A model choice: a named architecture, its weights (a checkpoint file; else the bundled
    weights; ``untrained``: random weights, for smoke tests), a device and a target size.
    Construction refuses unknown names, devices and target sizes (ValueError)."""

    name: str = DEFAULT_MODEL
    checkpoint: str = ""  # empty: the bundled weights if the package ships them
    device: str = "auto"
    target_size: int = 1024
    untrained: bool = False

    def __post_init__(self):
        if self.name not in available_models():
            raise ValueError(f"Unknown model {self.name!r}; choose one of {', '.join(available_models())}.")
        if self.device not in DEVICES:
            raise ValueError(f"Unknown device {self.device!r}; choose one of {', '.join(DEVICES)}.")
        if self.target_size not in TARGET_SIZES:
            raise ValueError(f"target size must be one of {', '.join(map(str, TARGET_SIZES))}, "
                             f"got {self.target_size}")

    @property
    def network_key(self) -> tuple:
        """What the network depends on (not the target size: one network serves every size)."""
        return self.name, self.checkpoint, self.device, self.untrained

    def weights(self) -> tuple[str, Path | None]:
        """("checkpoint" | "bundled" | "random", path or None) without building anything."""
        if self.untrained:
            return "random", None
        if self.checkpoint:
            return "checkpoint", Path(self.checkpoint)
        from hrsam_model import bundled_weights_path

        bundled = bundled_weights_path(self.name)
        if bundled is not None and bundled.is_file():
            return "bundled", bundled
        return "random", None

    def describe(self) -> str:
        kind, path = self.weights()
        if kind == "checkpoint":
            return f"{self.name}, weights from {path.name}"
        if kind == "bundled":
            return f"{self.name}, bundled weights"
        return f"{self.name}, RANDOM weights (results are meaningless)"

    def check(self) -> None:
        """Raise ValueError/FileNotFoundError with a fix for weights that cannot be had."""
        kind, path = self.weights()
        if kind == "checkpoint" and not path.is_file():
            raise FileNotFoundError(f"Checkpoint file not found: '{path}'. Choose an existing file or clear the field.")
        if kind == "random" and not self.untrained and self.name != DEFAULT_MODEL:
            raise ValueError(f"No weights are bundled for {self.name}: choose its checkpoint file (.pth or .safetensors).")

    def build_model(self):
        """The network (slow: imports torch, reads the weights); ``hrsam_model.build_model``."""
        import hrsam_model

        self.check()
        kind, path = self.weights()
        return hrsam_model.build_model(self.name, pretrained=kind == "bundled",
                                       checkpoint=str(path) if kind == "checkpoint" else None)

    def predictor(self, model=None):
        """An ``hrsam_model.Predictor`` on this choice's device and target size (``model``: an
        already built network of this choice)."""
        from hrsam_model import Predictor

        network = model if model is not None else self.build_model()
        return Predictor(network, device=None if self.device == "auto" else self.device,
                         target_size=self.target_size)


class EncodingCancelled(Exception):
    """The encoder stopped early because ``LazyPredictor.should_cancel()`` returned True."""


@contextmanager
def stopped_when(model, should_cancel: Callable[[], bool] | None):
    """While inside, every block of ``model``'s encoder first calls ``should_cancel()`` and
    raises EncodingCancelled if it returns True (one Python call per block, nothing else
    changes). The hooks are gone on exit; only one thread may use ``model`` meanwhile."""
    if should_cancel is None:
        yield
        return
    import torch

    def check(_module, _inputs):
        if should_cancel():
            raise EncodingCancelled("the encoding was cancelled")

    handles = [block.register_forward_pre_hook(check) for blocks in model.backbone.children()
               if isinstance(blocks, torch.nn.ModuleList) for block in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class ModelStore:
    """Built networks by choice, shared by the predictors of every target size (thread-safe)."""

    def __init__(self):
        self._models: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def model(self, choice: ModelChoice):
        with self._lock:
            if choice.network_key not in self._models:
                self._models[choice.network_key] = choice.build_model()
            return self._models[choice.network_key]

    def predictor(self, choice: ModelChoice) -> "LazyPredictor":
        return LazyPredictor(self, choice)


class LazyPredictor:
    """An ``hrsam_model.Predictor`` that is built on its first use (in the worker thread).

    ``model`` stays None until then, so code that only inspects the predictor (the session
    reads ``target_size`` and ``model`` when it is created) never triggers the build.
    ``should_cancel`` (None or a thread-safe callable) is asked before every encoder block;
    when it returns True, ``embed`` raises EncodingCancelled (nothing is cached).
    """

    def __init__(self, store: ModelStore, choice: ModelChoice):
        self.store = store
        self.choice = choice
        self.target_size = choice.target_size
        self.should_cancel: Callable[[], bool] | None = None
        self._predictor = None
        self._lock = threading.Lock()

    @property
    def model(self):
        return None if self._predictor is None else self._predictor.model

    @property
    def built(self) -> bool:
        return self._predictor is not None

    def _real(self):
        with self._lock:
            if self._predictor is None:
                self._predictor = self.choice.predictor(self.store.model(self.choice))
            return self._predictor

    def embed(self, image, contrast_limits=None):
        real = self._real()
        with stopped_when(real.model, self.should_cancel):
            return real.embed(image, contrast_limits=contrast_limits)

    def set_embedding(self, embedding):
        self._real().set_embedding(embedding)

    def predict(self, **prompts):
        return self._real().predict(**prompts)

    def predict_many(self, points, labels=None):
        return self._real().predict_many(points, labels)
