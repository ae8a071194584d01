"""Image preparation and coordinate maps between the user's pixel grid and the model's.

Official preprocessing: the network is fed BGR order (mmcv reads BGR and the data
preprocessor does not swap), normalised per position with mean/std on 0-255 values,
resized so the long side equals the target size (bilinear, no antialias) and padded
bottom/right with zeros (= the mean colour) to a square canvas.
"""
import numpy as np
import torch
import torch.nn.functional as F

from .pixels import resized_shape

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


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
