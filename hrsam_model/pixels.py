"""The model's input on the NumPy side, importable without torch: checked images, the display
range the model sees (0..255), the resized grid inside the square canvas and prompt coordinates on it.
"""
import numpy as np

ZOOM_EXPANSION = 1.4  # zoom-in's window: the object's and clicks' extent times this ...
ZOOM_MIN_CROP = 200  # ... and at least this many pixels (RITM's values)
ZOOM_KEEP_IOU = 0.5  # the previous window is kept while it overlaps the new one this much


def check_image(image):
    """Validate a 2-D image (HxW, HxWx1, HxWx3, HxWx4) and return it as an array."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"expected HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}; "
            "for a volume pass one 2-D slice"
        )
    if image.ndim not in (2, 3):
        raise ValueError(
            f"expected a 2-D image (HxW or HxWxC), got {image.ndim} dimensions {image.shape}; "
            "for a volume pass one 2-D slice"
        )
    if image.dtype == bool or not (np.issubdtype(image.dtype, np.number)):
        raise ValueError(f"expected a numeric image, got dtype {image.dtype}")
    if np.iscomplexobj(image):
        raise ValueError("complex images are not supported")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"the image is empty or too small: shape {image.shape} (need at least 2x2 pixels)")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise ValueError("the image contains NaN or infinite values; replace them before segmenting")
    return image


def to_display_range(image, contrast_limits=None, percentiles=(0.5, 99.5)):
    """Any supported 2-D image -> float32 HxWx3 in 0..255 (RGB).

    uint8 images are used as they are (the model was trained on 0-255 photos);
    other types are stretched between `contrast_limits` (e.g. a napari layer's
    limits or a CT window) or, by default, the 0.5/99.5 percentiles.
    """
    image = check_image(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]  # alpha carries no intensity
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if contrast_limits is None and image.dtype == np.uint8:
        out = image.astype(np.float32)
    else:
        if contrast_limits is None:
            sample = image[:: max(1, image.shape[0] // 1024), :: max(1, image.shape[1] // 1024)]
            low, high = np.percentile(sample, percentiles)
        else:
            low, high = (float(v) for v in contrast_limits)
            if not (np.isfinite(low) and np.isfinite(high)) or high < low:
                raise ValueError(f"contrast limits must be finite with low <= high, got {contrast_limits}")
        scale = 255.0 / (high - low) if high > low else 0.0
        out = (image.astype(np.float32) - np.float32(low)) * np.float32(scale)
        np.clip(out, 0.0, 255.0, out=out)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=-1)
    return out


def resized_shape(height, width, target_size):
    """Shape after resizing the long side to `target_size` (official rounding)."""
    scale = float(target_size) / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def points_to_model(points, image_shape, resized):
    """(N, 2) (x, y) image pixels -> model-input pixels (official per-axis scaling)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2).copy()
    points[:, 0] *= resized[1] / image_shape[1]
    points[:, 1] *= resized[0] / image_shape[0]
    return points


def box_to_model(box, image_shape, resized):
    return points_to_model(np.asarray(box, dtype=np.float64).reshape(2, 2), image_shape, resized).reshape(4)


def zoom_box(shape, mask_bbox, clicks, expansion: float = ZOOM_EXPANSION, min_crop: int = ZOOM_MIN_CROP,
             previous=None, keep_iou: float = ZOOM_KEEP_IOU) -> tuple[int, int, int, int]:
    """RITM's zoom-in window (row0, col0, row1, col1), end exclusive, on a slice of ``shape``.

    The extent of the current mask (``mask_bbox``, end exclusive; None when empty) and of the
    clicks (N, 2) (row, col) is expanded by ``expansion``, to at least ``min_crop`` pixels, and
    moved inside the image. ``previous`` is kept instead when it holds every click and overlaps
    the new window by IoU >= ``keep_iou``, so its embedding is reused. The napari engine's
    zoom-in uses the defaults; training cuts jittered windows with it."""
    clicks = np.asarray(clicks, np.float64).reshape(-1, 2)
    rows, cols = list(clicks[:, 0]), list(clicks[:, 1])
    if mask_bbox is not None:
        rows += [mask_bbox[0], mask_bbox[2] - 1]
        cols += [mask_bbox[1], mask_bbox[3] - 1]
    r0, c0, r1, c1 = min(rows), min(cols), max(rows), max(cols)
    height, width = shape
    top, bottom = window_span((r0 + r1) / 2, max((r1 - r0 + 1) * expansion, min_crop), height)
    left, right = window_span((c0 + c1) / 2, max((c1 - c0 + 1) * expansion, min_crop), width)
    box = (top, left, bottom, right)
    if previous is None:
        return box
    a, b, c, d = previous
    holds_clicks = ((clicks[:, 0] >= a) & (clicks[:, 0] <= c - 1) & (clicks[:, 1] >= b)
                    & (clicks[:, 1] <= d - 1)).all()
    return tuple(previous) if holds_clicks and _box_iou(box, previous) >= keep_iou else box


def window_span(centre: float, length: float, size: int) -> tuple[int, int]:
    """(start, stop) of a window of ``length`` pixels (rounded up, at most ``size``) centred on
    ``centre`` and shifted to lie inside 0..size."""
    length = int(min(np.ceil(length), size))
    start = int(np.clip(round(centre - length / 2), 0, size - length))
    return start, start + length


def _box_iou(a, b) -> float:
    rows = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    cols = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = rows * cols
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area_a + area_b - inter)
