"""Run the click protocol over instances with any predictor-like method.

A method has ``set_image(image)`` (or ``embed(image)`` + ``set_embedding(embedding)``) and
``predict(points=, labels=, mask_input=)`` returning ``.mask`` (bool, image grid) and ``.logits``
(low-res logits to feed back, or None). `hrsam_model.Predictor` and the baselines qualify.

Per instance: the image is encoded once (shared images, e.g. the nuclei half-image, are encoded once
per run), then each click re-decodes with all clicks so far and the previous step's logits. IoU is
measured on the original grid; only the ``predict`` call is timed per click (click simulation and
IoU are not); encoding is timed separately.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from .clicker import Clicker
from .datasets import Instance
from .metrics import InstanceResult, contradicted_clicks, iou


def as_method(model_or_method, target_size: int = 1024, device=None):
    """A predictor-like object: returned as is, or a `Predictor` built around an HRSAM model."""
    if hasattr(model_or_method, "predict"):
        return model_or_method
    if hasattr(model_or_method, "encode") and hasattr(model_or_method, "decode"):
        from hrsam_model import Predictor

        return Predictor(model_or_method, device=device, target_size=target_size)
    raise ValueError(
        f"expected a predictor (with set_image/predict) or an HRSAM model, got {type(model_or_method).__name__}"
    )


class _Encoder:
    """Encodes each distinct image once per run and times it (embedding reuse is what the plugin does)."""

    def __init__(self, method):
        self.method = method
        self._cache_key = None
        self._image = None  # keeps the cached image's memory from being reused by another array
        self._embedding = None

    def set_image(self, image: np.ndarray) -> float | None:
        # Same memory, layout and type = same pixels (the instances keep their images alive).
        key = (image.__array_interface__["data"][0], image.shape, image.strides, image.dtype.str)
        if key == self._cache_key:
            if self._embedding is not None:
                self.method.set_embedding(self._embedding)
            return None
        start = time.perf_counter()
        if hasattr(self.method, "embed") and hasattr(self.method, "set_embedding"):
            self._embedding = self.method.embed(image)
            self.method.set_embedding(self._embedding)
        else:
            self._embedding = None
            self.method.set_image(image)
        seconds = time.perf_counter() - start
        self._cache_key, self._image = key, image
        return seconds


def evaluate(
    model_or_method,
    instances: Sequence[Instance],
    num_clicks: int = 20,
    target_size: int = 1024,
    device=None,
    seed: int = 42,
    progress: Callable[[int, int, InstanceResult], None] | None = None,
) -> list[InstanceResult]:
    """IoU and decoder seconds after each of `num_clicks` simulated clicks, for every instance.

    A run stops early only when the prediction is perfect (no error left to click); its curve is
    then padded with its last IoU, so every curve has `num_clicks` entries.
    """
    if num_clicks < 1:
        raise ValueError(f"num_clicks must be >= 1, got {num_clicks}")
    if len(instances) == 0:
        raise ValueError("no instances to evaluate")
    method = as_method(model_or_method, target_size=target_size, device=device)
    encoder = _Encoder(method)
    results = []
    for index, instance in enumerate(instances):
        result = _run_instance(method, encoder, instance, num_clicks, seed)
        results.append(result)
        if progress is not None:
            progress(index + 1, len(instances), result)
    return results


def _run_instance(method, encoder: _Encoder, instance: Instance, num_clicks: int, seed: int) -> InstanceResult:
    if instance.mask.shape != instance.image.shape[:2]:
        raise ValueError(f"{instance.name}: mask {instance.mask.shape} does not match image {instance.image.shape}")
    if not instance.mask.any():
        raise ValueError(f"{instance.name}: the ground-truth mask is empty")
    result = InstanceResult(instance.name, instance.dataset, touches=bool(getattr(instance, "touches", False)))
    result.encode_seconds = encoder.set_image(instance.image)
    clicker = Clicker(instance.mask, seed=seed)
    pred, logits = None, None
    for _ in range(num_clicks):
        if clicker.click(pred) is None:
            break
        start = time.perf_counter()
        output = method.predict(points=clicker.points(), labels=clicker.labels(), mask_input=logits)
        result.click_seconds.append(time.perf_counter() - start)
        pred, logits = np.asarray(output.mask, dtype=bool), output.logits
        result.ious.append(iou(pred, instance.mask))
        result.ignored.append(contradicted_clicks(pred, clicker.points(), clicker.labels()))
    last = result.ious[-1] if result.ious else 0.0
    result.ious.extend([last] * (num_clicks - len(result.ious)))
    return result
