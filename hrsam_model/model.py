"""HRSAM = image encoder (backbone) + SAM prompt encoder (neck) + SAM mask decoder (decode_head).

The attribute names are the official segmentor's, so an official checkpoint's
`state_dict` loads into this module without renaming.
"""
from torch import nn

from .backbone import HRSAMBackbone
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder


class HRSAM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        p, d = config.prompt, config.decoder
        self.backbone = HRSAMBackbone(config.backbone)
        self.neck = PromptEncoder(p.embed_dim, p.image_embed_size, p.input_image_size, p.mask_in_dim)
        self.decode_head = MaskDecoder(
            d.embed_dim, d.depth, d.num_heads, d.mlp_dim, d.num_multimask_outputs,
            d.iou_head_depth, d.iou_head_hidden_dim,
        )

    @property
    def name(self):
        return self.config.name

    @property
    def patch_size(self):
        return self.config.backbone.patch_size

    def encode(self, x):
        """(B, 3, H, W) normalised BGR image, H and W multiples of 16 -> (B, 256, H/16, W/16)."""
        return self.backbone(x)

    def decode(self, embedding, points=None, labels=None, boxes=None, mask_input=None, multimask=False):
        """Prompts -> (low-res logits (B, 1 or 4, 4h, 4w), predicted IoU (B, 1 or 4)).

        points (B, N, 2) are (x, y) in model-input pixels, labels (B, N) 1 = inside,
        0 = outside, -1 = padding; boxes (B, 4) x0, y0, x1, y1; mask_input the previous
        step's low-res logits. Single-mask output is mask token 0, as in HRSAM.
        """
        if points is None and boxes is None and mask_input is None:
            raise ValueError("decode needs at least one prompt: points, boxes or mask_input")
        if points is not None and labels is None:
            raise ValueError("points need labels")
        embed_size = tuple(embedding.shape[-2:])
        sparse, dense = self.neck(embed_size, points, labels, boxes, mask_input)
        return self.decode_head(embedding, self.neck.image_pe(embed_size), sparse, dense, multimask)

    def forward(self, x, points=None, labels=None, boxes=None, mask_input=None, multimask=False):
        return self.decode(self.encode(x), points, labels, boxes, mask_input, multimask)


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())
