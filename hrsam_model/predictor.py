"""Predictor: encode an image once, then decode every click against the cached embedding."""
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from .configs import TARGET_SIZES
from .device import encoder_autocast_dtype, resolve_device
from .pixels import box_to_model, check_image, points_to_model, to_display_range
from .transforms import logits_to_image, prepare_input

BF16_DECODE_MIN_BATCH = 4  # predict_many batches of at least this many prompts decode under autocast


@dataclass
class ImageEmbedding:
    """The encoder's output for one image, with what is needed to map prompts and masks."""

    features: torch.Tensor  # (1, 256, T/16, T/16)
    image_shape: tuple  # (H, W) of the image given by the user
    resized_shape: tuple  # (h, w) of the image inside the model canvas
    target_size: int
    model_name: str = ""

    @property
    def nbytes(self):
        return self.features.element_size() * self.features.nelement()


@dataclass
class Prediction:
    mask: np.ndarray  # bool (H, W)
    logits: np.ndarray  # float32 (1, 4h, 4w) low-res logits, the next click's mask_input
    iou: float  # the decoder's own IoU estimate
    masks: np.ndarray = None  # (3, H, W) with multimask=True
    ious: np.ndarray = None


class Predictor:
    """Interactive segmentation on one image at a time.

    >>> pred = Predictor(build_model("hrsam_tiny", pretrained=True))
    >>> pred.set_image(image)
    >>> res = pred.predict(points=[[120, 80]], labels=[1])
    >>> res = pred.predict(points=[[120, 80], [140, 60]], labels=[1, 0], mask_input=res.logits)

    ``predict`` returns the decoder's own mask, logits and IoU, as segment-anything's predictor
    does. What a user is shown (only the clicked pieces, every click held) is the interactive
    engine's mask policy (``napari_hrsam.engine.mask_policy``), applied at slice resolution.
    """

    def __init__(self, model, device=None, target_size=1024, precision="auto"):
        if int(target_size) not in TARGET_SIZES:
            raise ValueError(f"target_size must be one of {TARGET_SIZES}, got {target_size}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.target_size = int(target_size)
        # the encoder under bf16 autocast on a CPU that has it (device.encoder_autocast_dtype);
        # the decoder and the embedding stay fp32
        self.encoder_dtype = encoder_autocast_dtype(self.device, precision)
        self._embedding = None

    # ----- image -----------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, image, contrast_limits=None, target_size=None):
        """Run the encoder on a 2-D image and return its ImageEmbedding (no state changes)."""
        target = int(target_size or self.target_size)
        if target not in TARGET_SIZES:
            raise ValueError(f"target_size must be one of {TARGET_SIZES}, got {target}")
        rgb = to_display_range(image, contrast_limits)
        x, resized = prepare_input(rgb, target, self.device)
        if self.encoder_dtype is None:
            features = self.model.encode(x)
        else:
            with torch.autocast(self.device.type, dtype=self.encoder_dtype):
                features = self.model.encode(x).float()
        return ImageEmbedding(features, tuple(rgb.shape[:2]), resized, target, self.model.name)

    def set_embedding(self, embedding):
        if not isinstance(embedding, ImageEmbedding):
            raise ValueError(f"expected an ImageEmbedding, got {type(embedding).__name__}")
        self._embedding = embedding

    def set_image(self, image, contrast_limits=None):
        """Encode `image` and make it current (the engine's ``EmbeddingCache`` is the one cache)."""
        self._embedding = self.embed(check_image(image), contrast_limits)
        return self._embedding

    @property
    def embedding(self):
        return self._embedding

    @property
    def is_image_set(self):
        return self._embedding is not None

    def reset_image(self):
        self._embedding = None

    # ----- prompts ---------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask=False):
        """The decoder's mask for clicks and/or a box on the current image.

        points: (N, 2) (x, y) = (column, row) pixels; labels: N values, 1 inside / 0 outside;
        box: (x0, y0, x1, y1); mask_input: the previous Prediction.logits.
        """
        emb = self._embedding
        if emb is None:
            raise ValueError("no image set: call set_image(image) or set_embedding(...) first")
        pts, lbl, bx, prev = self._check_prompts(emb, points, labels, box, mask_input)
        dev = self.device
        kwargs = {}
        if pts is not None:
            kwargs["points"] = torch.as_tensor(points_to_model(pts, emb.image_shape, emb.resized_shape),
                                               dtype=torch.float32, device=dev)[None]
            kwargs["labels"] = torch.as_tensor(lbl, dtype=torch.int64, device=dev)[None]
        if bx is not None:
            kwargs["boxes"] = torch.as_tensor(box_to_model(bx, emb.image_shape, emb.resized_shape),
                                              dtype=torch.float32, device=dev)[None]
        if prev is not None:
            kwargs["mask_input"] = torch.as_tensor(prev, dtype=torch.float32, device=dev)[None]
        low_res, iou = self.model.decode(emb.features, multimask=multimask, **kwargs)
        full = logits_to_image(low_res, emb.target_size, emb.resized_shape, emb.image_shape)
        # token 0 alone, or SAM's multimask tokens 1..3
        masks = full[0, 1:].cpu().numpy() > 0 if multimask else full[0].cpu().numpy() > 0
        if not multimask:
            return Prediction(masks[0], low_res[0].float().cpu().numpy(), float(iou[0, 0]))
        # tokens 1..3 are SAM's multimask outputs; the best by predicted IoU is the main one
        ious = iou[0, 1:].float().cpu().numpy()
        best = int(np.argmax(ious)) + 1
        return Prediction(
            masks[best - 1], low_res[0, best : best + 1].float().cpu().numpy(),
            float(iou[0, best]), masks=masks, ious=ious,
        )

    @torch.no_grad()
    def predict_many(self, points, labels=None):
        """One decoder call for many single-click prompts on the current image (segment
        everything): points (B, 2) (x, y) pixels, labels B values (default all 1). Returns the
        low-res logits (B, 4h, 4w) on the model canvas (``embedding.resized_shape`` / 4 of it
        holds the image) and the decoder's IoU estimates (B,), as float32 NumPy arrays."""
        emb = self._embedding
        if emb is None:
            raise ValueError("no image set: call set_image(image) or set_embedding(...) first")
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        lbl = np.ones(len(pts), np.int64) if labels is None else np.asarray(labels, np.int64).reshape(-1)
        if len(pts) == 0 or len(lbl) != len(pts):
            raise ValueError(f"give B points (B, 2) with B labels; got {len(pts)} points, {len(lbl)} labels")
        model_points = points_to_model(pts, emb.image_shape, emb.resized_shape)
        # a batch decodes under the encoder's autocast dtype (bf16 on a CPU that has it): per prompt
        # it is faster there, a single click is not (docs/speed.md)
        dtype = self.encoder_dtype if len(pts) >= BF16_DECODE_MIN_BATCH else None
        with nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype):
            low, iou = self.model.decode(
                emb.features, points=torch.as_tensor(model_points, dtype=torch.float32, device=self.device)[:, None],
                labels=torch.as_tensor(lbl, device=self.device)[:, None])
        return low[:, 0].float().cpu().numpy(), iou[:, 0].float().cpu().numpy()

    @staticmethod
    def _check_prompts(emb, points, labels, box, mask_input):
        height, width = emb.image_shape
        pts = lbl = bx = prev = None
        if points is not None and len(np.asarray(points)) > 0:
            pts = np.asarray(points, dtype=np.float64)
            if pts.ndim != 2 or pts.shape[1] != 2:
                raise ValueError(f"points must have shape (N, 2) as (x, y); got {pts.shape}")
            if not np.isfinite(pts).all():
                raise ValueError("points contain NaN or infinite values")
            # a pixel i spans [i - 0.5, i + 0.5] (napari's convention)
            outside = (pts[:, 0] < -0.5) | (pts[:, 0] > width - 0.5) | (pts[:, 1] < -0.5) | (pts[:, 1] > height - 0.5)
            if outside.any():
                x, y = pts[np.argmax(outside)]
                raise ValueError(
                    f"point (x={x:g}, y={y:g}) lies outside the image (width {width}, height {height})"
                )
            pts = np.clip(pts, 0, [width - 1, height - 1])
            if labels is None:
                raise ValueError("points need labels: 1 = inside the object, 0 = outside")
            lbl = np.asarray(labels).reshape(-1)
            if len(lbl) != len(pts):
                raise ValueError(f"got {len(pts)} points but {len(lbl)} labels")
            if not np.isin(lbl, (0, 1)).all():
                raise ValueError(f"labels must be 1 (inside) or 0 (outside); got {sorted(set(lbl.tolist()))}")
        elif labels is not None and len(np.asarray(labels)) > 0:
            raise ValueError("labels were given without points")
        if box is not None:
            bx = np.asarray(box, dtype=np.float64).reshape(-1)
            if bx.shape != (4,) or not np.isfinite(bx).all():
                raise ValueError(f"box must be 4 finite numbers (x0, y0, x1, y1); got {box!r}")
            x0, y0, x1, y1 = bx
            if x1 < x0 or y1 < y0:
                raise ValueError(f"box must have x0 <= x1 and y0 <= y1; got {tuple(bx)}")
            if x1 == x0 or y1 == y0:  # as napari_hrsam.engine.session.Session refuses it
                raise ValueError(f"box {tuple(float(v) for v in bx)} has no area: it needs x0 < x1 and y0 < y1")
            if x1 < 0 or y1 < 0 or x0 > width - 1 or y0 > height - 1:
                raise ValueError(f"box {tuple(bx)} lies outside the image (width {width}, height {height})")
            bx = np.array([max(x0, 0), max(y0, 0), min(x1, width - 1), min(y1, height - 1)])
        if mask_input is not None:
            prev = np.asarray(mask_input, dtype=np.float32)
            side = emb.features.shape[-2] * 4, emb.features.shape[-1] * 4
            if prev.ndim == 2:
                prev = prev[None]
            if prev.shape != (1, *side):
                raise ValueError(
                    f"mask_input must be the previous prediction's logits of shape (1, {side[0]}, {side[1]}); "
                    f"got {prev.shape}"
                )
            if not np.isfinite(prev).all():
                raise ValueError("mask_input contains NaN or infinite values")
        if pts is None and bx is None and prev is None:
            raise ValueError("give at least one prompt: points with labels, a box, or mask_input")
        return pts, lbl, bx, prev
