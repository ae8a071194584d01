"""Training images: an unlabelled pool for distillation, synthetic labelled shapes, augmentation.

Every image leaves here as RGB uint8 (H, W, 3), the range the model sees after
`hrsam_model.transforms.to_display_range`. Labelled data comes only from the TRAIN splits of
`hrsam_model.evaluation.datasets`; validation pixels are never read.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from hrsam_model.evaluation import datasets

# scikit-image's bundled images that need no download and show no people.
SKIMAGE_NAMES = (
    "brick", "cat", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page",
    "retina", "rocket", "shepp_logan_phantom", "text",
)


@dataclass
class Source:
    """One raw image (2-D, 2-D RGB) or a 3-D volume (sliced along a random axis when drawn)."""

    name: str
    pixels: np.ndarray
    is_volume: bool = False


def load_unlabelled_pool(data_root=None, include_skimage=True) -> list[Source]:
    """scikit-image images + the TRAIN pixels of nuclei, ecoli and the brain half-volume."""
    pool: list[Source] = []
    if include_skimage:
        import skimage.data

        for name in SKIMAGE_NAMES:
            image = np.asarray(getattr(skimage.data, name)())
            if image.ndim == 3 and image.shape[-1] == 4:
                image = image[..., :3]
            pool.append(Source(f"skimage/{name}", image))
    for name in ("nuclei", "ecoli"):
        for i, image in enumerate(datasets.load_split_images(name, "train", data_root)):
            pool.append(Source(f"{name}/train{i}", image))
    for i, volume in enumerate(datasets.load_split_images("brain", "train", data_root)):
        pool.append(Source(f"brain/train{i}", volume, is_volume=True))
    return pool


# ------------------------------------------------------------------------------ intensities
def window_to_uint8(image: np.ndarray, rng: np.random.Generator, jitter: bool = True) -> np.ndarray:
    """Random contrast window (percentiles), like a user's contrast limits, -> uint8."""
    image = image.astype(np.float32)
    if jitter:
        lo_p, hi_p = rng.uniform(0.0, 5.0), rng.uniform(97.0, 100.0)
    else:
        lo_p, hi_p = 0.5, 99.5
    sample = image[:: max(1, image.shape[0] // 512), :: max(1, image.shape[1] // 512)]
    lo, hi = np.percentile(sample, (lo_p, hi_p))
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((image - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def to_rgb_uint8(image: np.ndarray, rng: np.random.Generator, jitter: bool = True) -> np.ndarray:
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8 or (jitter and rng.random() < 0.3):
        image = window_to_uint8(image, rng, jitter)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image)


def photometric(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gamma, contrast/brightness, occasional inversion, tint, blur, noise (all on 0-255)."""
    x = rgb.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        x = x ** rng.uniform(0.6, 1.6)
    x = (x - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.1, 0.1)
    if rng.random() < 0.15:
        x = 1.0 - x
    grey = np.allclose(rgb[..., 0], rgb[..., 1]) and np.allclose(rgb[..., 1], rgb[..., 2])
    if grey and rng.random() < 0.25:  # pseudo-colour, as a fluorescence channel shown in green etc.
        x = x * rng.uniform(0.2, 1.0, size=3).astype(np.float32)
    elif not grey and rng.random() < 0.5:
        x = x * rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    if rng.random() < 0.2:
        sigma = rng.uniform(0.5, 1.5)
        x = ndi.gaussian_filter(x, (sigma, sigma, 0))
    if rng.random() < 0.3:
        x = x + rng.normal(0, rng.uniform(0.01, 0.06), size=x.shape[:2] + (1,)).astype(np.float32)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


# ------------------------------------------------------------------------------ geometry
def random_view(image: np.ndarray, rng: np.random.Generator, min_frac: float = 0.35) -> np.ndarray:
    """Random crop (side fraction min_frac..1), flips and a quarter-turn rotation."""
    h, w = image.shape[:2]
    if rng.random() < 0.7:
        ch = int(h * rng.uniform(min_frac, 1.0))
        cw = int(w * rng.uniform(min_frac, 1.0))
        ch, cw = max(ch, min(h, 32)), max(cw, min(w, 32))
        y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        image = image[y0:y0 + ch, x0:x0 + cw]
    return flip_rotate(image, rng)


def flip_rotate(image: np.ndarray, rng: np.random.Generator, k: int | None = None, flip: bool | None = None):
    k = int(rng.integers(0, 4)) if k is None else k
    flip = bool(rng.random() < 0.5) if flip is None else flip
    image = np.rot90(image, k, axes=(0, 1))
    if flip:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def resize_long_side(image: np.ndarray, size: int, order: int = 1) -> np.ndarray:
    """Resize so that the long side is `size` (bilinear for images, nearest for masks)."""
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))
    if (nh, nw) == (h, w):
        return image
    interp = cv2.INTER_NEAREST if order == 0 else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = cv2.resize(image, (nw, nh), interpolation=interp)
    return out.reshape((nh, nw) + image.shape[2:])


# ------------------------------------------------------------------------------ synthetic
def smooth_noise(shape, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Band-limited noise in [0, 1]."""
    n = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    n -= n.min()
    return n / max(float(n.max()), 1e-6)


def synthetic_shapes(rng: np.random.Generator, size: int = 512, max_objects: int = 12):
    """A textured background with textured blobs/polygons: (grey float image 0..1, label image)."""
    h = w = size
    background = 0.6 * smooth_noise((h, w), rng, rng.uniform(2, 30)) + 0.4 * rng.random()
    image = background * rng.uniform(0.2, 0.7)
    labels = np.zeros((h, w), np.int32)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    n_objects = int(rng.integers(1, max_objects + 1))
    for label in range(1, n_objects + 1):
        cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
        ry, rx = rng.uniform(0.02, 0.25) * h, rng.uniform(0.02, 0.25) * w
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
        radius = np.hypot(u, v)
        if rng.random() < 0.5:  # wobbly outline
            theta = np.arctan2(v, u)
            k = int(rng.integers(2, 7))
            radius = radius * (1 + rng.uniform(0.05, 0.3) * np.sin(k * theta + rng.uniform(0, 6.28)))
        inside = radius < 1.0
        if inside.sum() < 30:
            continue
        level = rng.uniform(0.0, 1.0)
        texture = smooth_noise((h, w), rng, rng.uniform(1, 8)) * rng.uniform(0, 0.4)
        image = np.where(inside, level + texture - 0.2, image)
        labels[inside] = label  # later objects occlude earlier ones
    image = ndi.gaussian_filter(image, rng.uniform(0.3, 2.0))
    image = image + rng.normal(0, rng.uniform(0.0, 0.08), image.shape)
    image = (image - image.min()) / max(float(np.ptp(image)), 1e-6)
    return image.astype(np.float32), labels


# ------------------------------------------------------------------------------ pool sampler
def draw_unlabelled(pool: list[Source], rng: np.random.Generator, long_side: int = 1024,
                    synthetic_fraction: float = 0.15) -> tuple[np.ndarray, str]:
    """One augmented RGB uint8 image with long side `long_side`, and a short description."""
    if rng.random() < synthetic_fraction:
        image, _ = synthetic_shapes(rng, int(rng.choice([256, 384, 512])))
        name = "synthetic"
    else:
        source = pool[int(rng.integers(len(pool)))]
        image, name = source.pixels, source.name
        if source.is_volume:
            axis = int(rng.integers(3))
            lo, hi = int(0.15 * image.shape[axis]), int(0.85 * image.shape[axis])
            index = int(rng.integers(lo, max(hi, lo + 1)))
            image = np.flipud(np.take(image, index, axis=axis))
            name = f"{name}/axis{axis}/{index}"
    image = random_view(image, rng)
    rgb = photometric(to_rgb_uint8(image, rng), rng)
    return resize_long_side(rgb, long_side), name
