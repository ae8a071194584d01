"""Which model the widget uses, and a predictor that builds it only when first needed.

Building a model imports torch and reads weights (seconds). The widget must create its
session at once on the main thread, so it gets a ``LazyPredictor`` whose heavy parts are
built on the first ``embed``/``predict`` call, which happens in the worker thread.
Its encoder can be stopped between blocks (``should_cancel``), so the widget's Cancel
does not have to wait for a 4096 px encoding to end.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

DEFAULT_MODEL = "hrsam_tiny"
TARGET_SIZES = (1024, 2048, 4096)
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class ModelSpec:
    """A model choice: a named architecture plus weights (a checkpoint file, else bundled)."""

    name: str = DEFAULT_MODEL
    checkpoint: str = ""  # empty: the bundled weights if the package ships them
    device: str = "auto"

    def weights(self) -> tuple[str, Path | None]:
        """("checkpoint" | "bundled" | "random", path or None) without building anything."""
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
        return f"{self.name}, RANDOM weights (no bundled file; results are meaningless)"

    def check(self) -> None:
        """Raise ValueError/FileNotFoundError with a fix for a choice that cannot work."""
        from hrsam_model import available_models

        if self.name not in available_models():
            raise ValueError(f"Unknown model {self.name!r}; choose one of {', '.join(available_models())}.")
        if self.device not in DEVICES:
            raise ValueError(f"Unknown device {self.device!r}; choose one of {', '.join(DEVICES)}.")
        kind, path = self.weights()
        if kind == "checkpoint" and not path.is_file():
            raise FileNotFoundError(f"Checkpoint file not found: '{path}'. Choose an existing file or clear the field.")
        if kind == "random" and self.name != DEFAULT_MODEL:
            raise ValueError(f"No weights are bundled for {self.name}: choose its checkpoint file (.pth or .safetensors).")

    def build(self):
        """The Predictor's model (slow: imports torch, reads the weights)."""
        from hrsam_model import build_model

        self.check()
        kind, path = self.weights()
        return build_model(self.name, pretrained=kind == "bundled", checkpoint=str(path) if kind == "checkpoint" else None)


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
    """Built models by spec, shared by the predictors of every target size (thread-safe)."""

    def __init__(self):
        self._models: dict[ModelSpec, object] = {}
        self._lock = threading.Lock()

    def model(self, spec: ModelSpec):
        with self._lock:
            if spec not in self._models:
                self._models[spec] = spec.build()
            return self._models[spec]

    def predictor(self, spec: ModelSpec, target_size: int) -> "LazyPredictor":
        return LazyPredictor(self, spec, target_size)


class LazyPredictor:
    """An ``hrsam_model.Predictor`` that is built on its first use (in the worker thread).

    ``model`` stays None until then, so code that only inspects the predictor (the session
    reads ``target_size`` and ``model`` when it is created) never triggers the build.
    ``clicked_pieces_only`` may be changed at any time; the next ``predict`` follows it.
    ``should_cancel`` (None or a thread-safe callable) is asked before every encoder block;
    when it returns True, ``embed`` raises EncodingCancelled (nothing is cached).
    """

    def __init__(self, store: ModelStore, spec: ModelSpec, target_size: int):
        if int(target_size) not in TARGET_SIZES:
            raise ValueError(f"target size must be one of {TARGET_SIZES}, got {target_size}")
        self.store = store
        self.spec = spec
        self.target_size = int(target_size)
        self.clicked_pieces_only = True
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
                from hrsam_model import Predictor

                device = None if self.spec.device == "auto" else self.spec.device
                self._predictor = Predictor(self.store.model(self.spec), device=device, target_size=self.target_size)
            return self._predictor

    def embed(self, image, contrast_limits=None):
        real = self._real()
        with stopped_when(real.model, self.should_cancel):
            return real.embed(image, contrast_limits=contrast_limits)

    def set_embedding(self, embedding):
        self._real().set_embedding(embedding)

    def predict(self, **prompts):
        real = self._real()
        real.clicked_pieces_only = self.clicked_pieces_only
        return real.predict(**prompts)
