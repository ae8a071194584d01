"""Image preparation and coordinate maps between the user's pixel grid and the model's.

Official preprocessing: the network is fed BGR order (mmcv reads BGR and the data
preprocessor does not swap), normalised per position with mean/std on 0-255 values,
resized so the long side equals the target size (bilinear, no antialias) and padded
bottom/right with zeros (= the mean colour) to a square canvas.
"""
import numpy as np
import torch
import torch.nn.functional as F

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
TARGET_SIZES = (1024, 2048, 3072, 4096)


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


def normalize_bgr(rgb_tensor):
    """(B, 3, H, W) RGB 0..255 -> BGR order normalised with the official constants."""
    bgr = rgb_tensor.flip(1)
    mean = rgb_tensor.new_tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = rgb_tensor.new_tensor(PIXEL_STD).view(1, 3, 1, 1)
    return (bgr - mean) / std


def prepare_input(rgb, target_size, device=None):
    """HxWx3 float 0..255 -> ((1, 3, T, T) model input, (h, w) resized extent inside it)."""
    if target_size % 16:
        raise ValueError(f"target size must be a multiple of 16, got {target_size}")
    x = torch.as_tensor(np.ascontiguousarray(rgb), dtype=torch.float32, device=device)
    x = x.permute(2, 0, 1)[None]
    h, w = resized_shape(rgb.shape[0], rgb.shape[1], target_size)
    if (h, w) != tuple(rgb.shape[:2]):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=False)
    x = normalize_bgr(x)
    return F.pad(x, (0, target_size - w, 0, target_size - h)), (h, w)


def points_to_model(points, image_shape, resized):
    """(N, 2) (x, y) image pixels -> model-input pixels (official per-axis scaling)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2).copy()
    points[:, 0] *= resized[1] / image_shape[1]
    points[:, 1] *= resized[0] / image_shape[0]
    return points


def box_to_model(box, image_shape, resized):
    return points_to_model(np.asarray(box, dtype=np.float64).reshape(2, 2), image_shape, resized).reshape(4)


def logits_to_image(low_res_logits, target_size, resized, image_shape):
    """(B, C, 4h, 4w) low-res logits -> (B, C, H, W) logits on the image grid.

    Same values as the official evaluation's order (upsample x4 to the model canvas, crop the
    valid region, resize to the image), but only the low-res cells that reach the valid region
    are upsampled: on a wide padded canvas (a 4096 px slide) that is most of the work saved."""
    low_h, low_w = low_res_logits.shape[-2:]
    scale = target_size // low_h
    # one extra cell: bilinear output pixels near the crop edge read their right/bottom neighbour
    keep_h, keep_w = min(low_h, -(-resized[0] // scale) + 1), min(low_w, -(-resized[1] // scale) + 1)
    x = low_res_logits[..., :keep_h, :keep_w]
    x = F.interpolate(x, size=(keep_h * scale, keep_w * scale), mode="bilinear", align_corners=False)
    x = x[..., : resized[0], : resized[1]]
    if tuple(x.shape[-2:]) != tuple(image_shape):
        x = F.interpolate(x, size=tuple(image_shape), mode="bilinear", align_corners=False)
    return x
