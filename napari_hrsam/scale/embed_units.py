"""``hrsam embed`` as units of work: a slab of consecutive slices of one volume, or one 2-D image,
embedded into a version 2 store that every worker writes at once (``embedding_store``). A unit
reads its own input; slices already complete in the store cost no encoder pass (resume); only a
small summary travels back; an unreadable input or a NaN slice is reported, not retried."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_hrsam import io

SLICES_PER_TASK = 32


@dataclass(frozen=True)
class EmbedUnit:
    image: str
    store: str
    axis: int
    start: int
    stop: int  # exclusive; a 2-D image is the unit (0, 1)
    contrast_limits: tuple | None = None


def plan_units(images, store: str, axis: int, contrast_limits=None,
               slices_per_task: int = SLICES_PER_TASK) -> tuple[list[EmbedUnit], list[dict]]:
    """(units, failures): every input cut into slabs of ``slices_per_task`` slices; an input that
    cannot be read is a failure {"image", "error"} instead."""
    if slices_per_task < 1:
        raise ValueError(f"--slices-per-task must be >= 1, got {slices_per_task}")
    units, failures = [], []
    for image in images:
        try:
            array, metadata = io.read_image(image)
        except (ValueError, OSError) as err:
            failures.append({"image": str(image), "error": f"{type(err).__name__}: {err}"})
            continue
        spatial = array.shape[:-1] if metadata.get("rgb") else array.shape
        count = spatial[axis] if len(spatial) == 3 else 1
        for start in range(0, count, slices_per_task):
            units.append(EmbedUnit(str(image), store, axis, start, min(start + slices_per_task, count),
                                   contrast_limits))
    return units, failures


def embed_unit(unit: EmbedUnit, plugin=None) -> dict:
    """Embed one slab (in a Dask worker, or here with ``plugin``); its summary."""
    from napari_hrsam.engine.embedding_reuse import build_store
    from napari_hrsam.engine.embedding_store import EmbeddingStore

    from .worker_model import worker_plugin

    plugin = plugin if plugin is not None else worker_plugin()
    summary = {"image": unit.image, "slices": unit.stop - unit.start, "embedded": 0, "skipped": [],
               "encoder_passes": 0, "error": None}
    try:
        store = EmbeddingStore.open(unit.store, writable=True)
        if store.model_fingerprint != plugin.fingerprint:
            raise ValueError(f"the store {unit.store} belongs to other weights than this worker's")
        array, metadata = io.read_image(unit.image)
        volume = (array.ndim - (1 if metadata.get("rgb") else 0)) == 3
        done = build_store(store, np.asarray(array), plugin.predictor, source=unit.image, axis=unit.axis,
                           rgb=bool(metadata.get("rgb")), contrast_limits=unit.contrast_limits,
                           slices=range(unit.start, unit.stop) if volume else None)
    except (ValueError, OSError) as err:
        summary["error"] = f"{type(err).__name__}: {err}"
        return summary
    summary.update(embedded=done["embedded"], skipped=done["skipped"], encoder_passes=done["encoder_passes"])
    return summary
