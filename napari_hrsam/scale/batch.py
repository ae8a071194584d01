"""Segment everything in many images: one unit of work per input, idempotent and resumable.

A unit reads its own input from a path every worker can see and writes its own output:
``OUT/<name>_labels.tif`` (through a temporary file and a rename: never a torn file), then the
completion marker ``OUT/<name>.done.json`` (the weights' fingerprint, the settings, the object
count), written last. A unit whose marker matches the fingerprint and settings is skipped without
running the encoder (resume). A retried unit rewrites identical bytes. Only a small summary travels
back. A bad input (unreadable file, NaN pixels, no contrast) is reported in the summary and skipped:
the rest of the run goes on."""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from napari_hrsam import io
from napari_hrsam.engine.autosave import replace_file
from napari_hrsam.io.inputs import expand_inputs


@dataclass(frozen=True)
class AutoUnit:
    """One input of a batch, with everything its task needs."""

    image: str
    out_dir: str
    density: int = 32
    seeds: str = "blobs"
    keep_clicked_pieces: bool = True
    hold_clicks: bool = True
    split_depth: float = 0.15

    @property
    def name(self) -> str:
        path = Path(self.image)
        suffix = io.path_suffix(path)
        return path.name[: -len(suffix)] if suffix else path.name

    @property
    def output(self) -> Path:
        return Path(self.out_dir) / f"{self.name}_labels.tif"

    @property
    def marker(self) -> Path:
        return Path(self.out_dir) / f"{self.name}.done.json"

    def settings(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("image", "out_dir")}

    def auto_settings(self):
        """The engine's ``AutoSettings`` for this unit."""
        from napari_hrsam.engine.automatic import AutoSettings

        return AutoSettings(points_per_side=self.density, seeds=self.seeds, split_depth=self.split_depth)


def unit_inputs(items) -> list[str]:
    """The images ``items`` name (``io.inputs.expand_inputs``); ValueError when two of them would
    write the same output name."""
    found = [str(p) for p in expand_inputs(items)]
    names = [AutoUnit(p, "").name for p in found]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"two inputs would write the same output: {duplicated[0]}; give them other names")
    return found


def segment_unit(unit: AutoUnit, plugin=None) -> dict:
    """Run one unit (in a Dask worker, or in this process with ``plugin``); its summary."""
    from .worker_model import worker_plugin

    plugin = plugin if plugin is not None else worker_plugin()
    return output_unit(unit, plugin, lambda: _segment(unit, plugin.predictor))


def output_unit(unit: AutoUnit, plugin, make_labels) -> dict:
    """The summary of a unit that writes ``unit.output``: skipped when finished with these weights
    and settings, else ``make_labels()`` -> (labels, encoder passes) written with its marker. A
    ValueError or OSError is the input's fault: reported in the summary, never retried."""
    summary = {"image": unit.image, "output": str(unit.output), "objects": 0, "seconds": 0.0,
               "encoder_passes": 0, "skipped": False, "error": None, "pid": os.getpid()}
    if finished(unit, plugin.fingerprint):
        summary.update(skipped=True, objects=json.loads(unit.marker.read_text())["objects"])
        return summary
    start = time.perf_counter()
    try:
        labels, passes = make_labels()
    except (ValueError, OSError) as err:
        summary["error"] = f"{type(err).__name__}: {err}"
        return summary
    count = write_output(unit, labels, plugin.fingerprint)
    summary.update(objects=count, seconds=time.perf_counter() - start, encoder_passes=passes)
    return summary


def finished(unit: AutoUnit, fingerprint: str | None) -> bool:
    """Whether the unit's output and marker are there, made with these settings and (unless
    ``fingerprint`` is None) these weights."""
    if not (unit.marker.is_file() and unit.output.is_file()):
        return False
    try:
        marker = json.loads(unit.marker.read_text())
    except ValueError:
        return False
    return (fingerprint is None or marker.get("fingerprint") == fingerprint) and marker.get("settings") == unit.settings()


def _segment(unit: AutoUnit, predictor) -> tuple[np.ndarray, int]:
    array, metadata = io.read_image(unit.image)
    counter = CountingPredictor(predictor)
    session, request = unit_request(unit, array, metadata, counter)
    session.apply(session.compute_segment_all(request))
    return label_image(session), counter.passes


def unit_request(unit: AutoUnit, array, metadata: dict, predictor, slices=None, windows=None):
    """(a Session on the unit's image with empty labels, the request of its whole run, or of
    the part ``slices`` / ``windows`` of it): a 2-D image's one slice, or every slice of a volume
    along its first axis, objects linked across slices."""
    from napari_hrsam.engine.automatic import slice_windows
    from napari_hrsam.engine.mask_policy import MaskPolicy
    from napari_hrsam.engine.session import Session

    spatial_ndim = array.ndim - (1 if metadata.get("rgb") else 0)
    session = Session(array, predictor, rgb=bool(metadata.get("rgb")), labels=np.zeros(
        array.shape[:spatial_ndim], np.int32), position=(0,) * (spatial_ndim - 2) or None,
        mask_policy=MaskPolicy(unit.keep_clicked_pieces, unit.hold_clicks))
    settings = unit.auto_settings()
    if spatial_ndim == 2:
        return session, session.segment_all_request(settings, windows=windows)
    if slices is not None and windows is None:  # a slab: every window of its slices, as a part
        windows = (0, len(slice_windows(session.slice_shape, predictor.target_size, settings)))
    chosen = range(array.shape[0]) if slices is None else range(*slices)
    return session, session.segment_all_request(settings, slices=chosen, axis=0, link=True, windows=windows)


def label_image(session) -> np.ndarray:
    labels = np.asarray(session.labels)
    return labels.astype(np.uint16) if labels.max() <= np.iinfo(np.uint16).max else labels


def write_output(unit: AutoUnit, labels: np.ndarray, fingerprint: str) -> int:
    """Write the unit's label image, then its completion marker; the object count."""
    replace_file(unit.output, lambda tmp: _write_tiff(tmp, labels))
    count = int(len(np.unique(labels)) - (1 if (labels == 0).any() else 0))
    marker = {"fingerprint": fingerprint, "settings": unit.settings(), "objects": count,
              "output": unit.output.name}
    replace_file(unit.marker, lambda tmp: Path(tmp).write_text(json.dumps(marker)))
    return count


class CountingPredictor:
    """The predictor it wraps, counting encoder passes."""

    def __init__(self, predictor):
        self._predictor = predictor
        self.passes = 0

    def embed(self, image, contrast_limits=None):
        self.passes += 1
        return self._predictor.embed(image, contrast_limits=contrast_limits)

    def __getattr__(self, name):
        return getattr(self._predictor, name)


def _write_tiff(path, labels) -> None:
    import tifffile

    tifffile.imwrite(path, labels, compression="zlib")
