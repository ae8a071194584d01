"""Where the spatial axes are, and how to read one 2-D slice (or a window of it) lazily.

An image may carry a channel axis (multichannel fluorescence) or an RGB(A) last axis;
the remaining axes are spatial and ``labels`` has exactly their shape. Reads go through
one ``image[index]`` per request, so numpy views, dask and zarr arrays only touch the
chunks of that slice.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .pyramid import checked_levels, pick_level, scaled_box
from .state import SliceKey

PERCENTILES = (0.5, 99.5)
MAX_CONTRAST_SAMPLES = 1 << 20  # strided subsample size for percentile contrast limits


def _axis(axis: int, ndim: int, what: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{what} {axis} is out of range for {ndim} axes")
    return axis % ndim


class ImageLayout:
    """The axes of an image: spatial ones, channel axis, RGB(A). A list or tuple of arrays is a
    pyramid (full resolution first; ``pyramid``): its first level is the image."""

    def __init__(self, image, channel_axis: int | None = None, rgb: bool | None = None):
        if image is None:
            raise ValueError("no image: pass a 2-D image or an N-D volume")
        self.levels = checked_levels(image) if isinstance(image, (list, tuple)) else None
        image = self.levels[0] if self.levels is not None else image
        for attribute in ("shape", "dtype", "__getitem__"):
            if not hasattr(image, attribute):
                raise ValueError(f"image must be array-like (numpy, dask, zarr); got "
                                 f"{type(image).__name__}")
        shape, dtype = tuple(int(n) for n in image.shape), np.dtype(image.dtype)
        if dtype.kind not in "biuf":
            raise ValueError(f"image dtype {dtype} is not supported: use an integer or "
                             "float image")
        if any(n == 0 for n in shape):
            raise ValueError(f"image is empty (shape {shape})")
        ndim = len(shape)
        if rgb and channel_axis is not None:
            raise ValueError("an image is either RGB or has a channel_axis, not both")
        if rgb is None:  # napari's guess
            rgb = channel_axis is None and ndim > 2 and shape[-1] in (3, 4)
        if rgb and (ndim < 3 or shape[-1] not in (3, 4)):
            raise ValueError(f"rgb=True needs a last axis of size 3 or 4; shape is {shape}")
        if channel_axis is not None:
            channel_axis = _axis(channel_axis, ndim, "channel_axis")
        colour_axis = ndim - 1 if rgb else channel_axis
        self.image = image
        self.shape = shape
        self.dtype = dtype
        self.rgb = bool(rgb)
        self.colour_axis = colour_axis  # image axis holding colours/channels, or None
        self.n_channels = 1 if colour_axis is None else shape[colour_axis]
        self.spatial_axes = tuple(a for a in range(ndim) if a != colour_axis)
        self.spatial_shape = tuple(shape[a] for a in self.spatial_axes)
        if len(self.spatial_axes) < 2:
            raise ValueError(f"image of shape {shape} has fewer than 2 spatial axes")

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.spatial_shape)

    def slice_key(self, position: Sequence[int] | None,
                  displayed_axes: Sequence[int]) -> SliceKey | None:
        """Check and normalise a slice; None when a volume has no position yet."""
        axes = tuple(_axis(int(a), self.ndim, "displayed axis") for a in displayed_axes)
        if len(axes) != 2 or axes[0] == axes[1]:
            raise ValueError(f"displayed_axes must be two different spatial axes, got "
                             f"{tuple(displayed_axes)}")
        others = [a for a in range(self.ndim) if a not in axes]
        if position is None:
            return SliceKey(axes, ()) if not others else None
        position = tuple(position)
        if len(position) == self.ndim and len(others) != self.ndim:
            position = tuple(position[a] for a in others)
        if len(position) != len(others):
            raise ValueError(f"position needs one index for each of the {len(others)} "
                             f"non-displayed spatial axes {others} (or one per spatial "
                             f"axis); got {position}")
        checked = []
        for axis, index in zip(others, position):
            size = self.spatial_shape[axis]
            if isinstance(index, float) and not index.is_integer():
                index = round(index)
            index = int(index)
            if not 0 <= index < size:
                raise ValueError(f"position {index} is outside spatial axis {axis} "
                                 f"(size {size})")
            checked.append(index)
        return SliceKey(axes, tuple(checked))

    def slice_shape(self, key: SliceKey) -> tuple[int, int]:
        return tuple(self.spatial_shape[a] for a in key.displayed_axes)

    def spatial_index(self, key: SliceKey, box=None, step: int = 1) -> tuple:
        """Index into a spatial-shaped array (labels) for the slice (window ``box`` =
        (row0, col0, row1, col1)). The result has the displayed axes in increasing
        axis order: transpose it when ``key.displayed_axes`` is descending."""
        rows, cols = self.slice_shape(key)
        r0, c0, r1, c1 = box if box is not None else (0, 0, rows, cols)
        ranges = {key.displayed_axes[0]: slice(r0, r1, step),
                  key.displayed_axes[1]: slice(c0, c1, step)}
        position = iter(key.position)
        return tuple(ranges[a] if a in ranges else next(position) for a in range(self.ndim))

    def read(self, key: SliceKey, box=None, step: int = 1, level: int = 0) -> np.ndarray:
        """The slice (or its window ``box``, every ``step``-th pixel; with ``level``, the box in
        that pyramid level's pixels) as a numpy array (rows, cols) or (rows, cols, channels),
        in the image's dtype. One ``__getitem__``."""
        spatial = self.spatial_index(key, box, step)
        index = list(spatial)
        if self.colour_axis is not None:
            index.insert(self.colour_axis, slice(None))
        data = np.asarray((self.levels[level] if level else self.image)[tuple(index)])
        # axes left: the two displayed ones (ascending) and maybe the colour axis
        kept = sorted(list(key.displayed_axes) + ([None] if self.colour_axis is not None else []),
                      key=lambda a: self._image_axis(a))
        order = [kept.index(key.displayed_axes[0]), kept.index(key.displayed_axes[1])]
        if self.colour_axis is not None:
            order.append(kept.index(None))
        data = np.transpose(data, order) if order != list(range(len(order))) else data
        if data.dtype == bool:
            data = data.astype(np.uint8)
        return data

    def read_for_model(self, key: SliceKey, box, size) -> np.ndarray:
        """The window ``box`` of the slice, read from the coarsest pyramid level that still holds
        ``size`` (rows, cols) pixels of it (full resolution without a pyramid); the caller
        shrinks it to ``size``."""
        if self.levels is None or len(self.levels) == 1:
            return self.read(key, box)
        axes = tuple(self.spatial_axes[a] for a in key.displayed_axes)  # image axes, row then col
        index, factors = pick_level([tuple(level.shape) for level in self.levels], axes, box, size)
        if index == 0:
            return self.read(key, box)
        return self.read(key, scaled_box(box, factors), level=index)

    def _image_axis(self, spatial_axis: int | None) -> int:
        return self.colour_axis if spatial_axis is None else self.spatial_axes[spatial_axis]


def check_finite(data: np.ndarray, what: str = "image slice") -> None:
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise ValueError(f"{what} contains NaN or infinite values: replace them (e.g. "
                         "np.nan_to_num) before segmenting")


def contrast_step(rows: int, cols: int) -> int:
    """Stride that keeps a percentile subsample near MAX_CONTRAST_SAMPLES pixels."""
    return max(1, math.ceil(math.sqrt(rows * cols / MAX_CONTRAST_SAMPLES)))


def percentile_limits(data: np.ndarray) -> list[tuple[float, float]]:
    """(lo, hi) percentiles per channel of a (rows, cols[, channels]) sample."""
    check_finite(data)
    channels = data[..., None] if data.ndim == 2 else data
    limits = []
    for c in range(channels.shape[-1]):
        lo, hi = np.percentile(channels[..., c], PERCENTILES)
        limits.append(_widen(float(lo), float(hi)))
    return limits


def _widen(lo: float, hi: float) -> tuple[float, float]:
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def normalise_limits(contrast_limits, n_channels: int) -> list[tuple[float, float]] | None:
    """Check user contrast limits: None, one (lo, hi), or one (lo, hi) per channel."""
    if contrast_limits is None:
        return None
    try:
        array = np.asarray(contrast_limits, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"contrast_limits must be (lo, hi) or one (lo, hi) per channel, "
                         f"got {contrast_limits!r}") from None
    if array.shape == (2,):
        array = np.repeat(array[None], n_channels, axis=0)
    if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] not in (1, n_channels):
        raise ValueError(f"contrast_limits must be (lo, hi) or one (lo, hi) per channel "
                         f"({n_channels}), got shape {array.shape}")
    if not np.isfinite(array).all() or (array[:, 1] <= array[:, 0]).any():
        raise ValueError(f"contrast_limits need finite lo < hi, got {array.tolist()}")
    if array.shape[0] == 1:
        array = np.repeat(array, n_channels, axis=0)
    return [(float(lo), float(hi)) for lo, hi in array]


def choose_channels(layout: ImageLayout, channels: Sequence[int] | None) -> tuple[int, ...]:
    """Which channels feed the model's R, G, B (gray images: channel 0)."""
    n = layout.n_channels
    if channels is None:
        return tuple(range(min(n, 3)))
    channels = tuple(int(c) for c in channels)
    if not 1 <= len(channels) <= 3 or any(not 0 <= c < n for c in channels):
        raise ValueError(f"channels must be 1 to 3 indices below {n}, got {channels}")
    return channels


def no_contrast(data: np.ndarray, channels: tuple[int, ...],
                limits: list[tuple[float, float]]) -> bool:
    """True when the image ``model_image`` makes of ``data`` has one value everywhere:
    every channel fed to the model is constant once clipped to its (lo, hi) (all zero, a
    constant slice, or nothing inside the contrast window). Then there is nothing to see."""
    if data.ndim == 2:
        bands = [(data, limits[0])]
    else:
        bands = [(data[..., c], limits[c]) for c in channels]
    for band, (lo, hi) in bands:
        low, high = np.clip([band.min(), band.max()], lo, hi)
        if high > low:
            return False
    return True


def model_image(data: np.ndarray, channels: tuple[int, ...],
                limits: list[tuple[float, float]]):
    """(image, contrast_limits) for Predictor.embed.

    One channel: the raw slice and its (lo, hi), the predictor windows it. Several:
    each channel windowed by its own limits to float32 0..255 (a missing third channel
    is black) and contrast (0, 255)."""
    if data.ndim == 2:
        return data, limits[0]
    if len(channels) == 1:
        return data[..., channels[0]], limits[channels[0]]
    out = np.zeros(data.shape[:2] + (3,), np.float32)
    for i, c in enumerate(channels):
        lo, hi = limits[c]
        band = data[..., c].astype(np.float32)
        np.subtract(band, lo, out=band)
        np.multiply(band, 255.0 / (hi - lo), out=band)
        np.clip(band, 0.0, 255.0, out=out[..., i])
    return out, (0.0, 255.0)
