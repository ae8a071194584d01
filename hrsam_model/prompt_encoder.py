"""SAM's prompt encoder, with the official HRSAM neck's names (pos_embed_layer, point_embeds)."""
import math

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).square().mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of normalised (x, y) coordinates."""

    def __init__(self, num_feats=128):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats // 2))

    def _encode(self, coords):
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([coords.sin(), coords.cos()], dim=-1)

    def grid(self, size):
        h, w = size
        ones = torch.ones((h, w), device=self.positional_encoding_gaussian_matrix.device)
        ys = (ones.cumsum(0) - 0.5) / h
        xs = (ones.cumsum(1) - 0.5) / w
        return self._encode(torch.stack([xs, ys], dim=-1)).permute(2, 0, 1)  # (C, h, w)

    def coords(self, points, image_size):
        """points (..., 2) as (x, y) pixels of an image of size (h, w)."""
        points = points.clone().float()
        points[..., 0] = points[..., 0] / image_size[1]
        points[..., 1] = points[..., 1] / image_size[0]
        return self._encode(points)


class PromptEncoder(nn.Module):
    def __init__(self, embed_dim=256, image_embed_size=64, input_image_size=1024, mask_in_dim=16):
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embed_size = (image_embed_size, image_embed_size)
        self.patch = input_image_size // image_embed_size
        self.pos_embed_layer = PositionEmbeddingRandom(embed_dim)
        # 0 = negative point, 1 = positive point, 2/3 = box corners
        self.point_embeds = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_dim // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_dim // 4, mask_in_dim, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_dim),
            nn.GELU(),
            nn.Conv2d(mask_in_dim, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)
        self._pe_cache = None  # (Fourier matrix, its version, grid, image PE) of the last call

    def image_pe(self, embed_size):
        """Dense PE: always made on the 64x64 training grid, then resized (as official).

        Every click needs it and the resize costs more than a third of a 4096 px decoder pass, so
        the last result is kept, keyed by the grid and by the Fourier matrix itself and its version
        (a load, a cast or a move makes a fresh one). It is channels-last, so the decoder's
        token-major view of it needs no copy. Treat it as read-only."""
        gaussian = self.pos_embed_layer.positional_encoding_gaussian_matrix
        size = tuple(embed_size)
        cached = self._pe_cache
        if cached is not None and cached[0] is gaussian and cached[1:3] == (gaussian._version, size):
            return cached[3]
        # a plain tensor even under inference_mode, so training can use it after a prediction
        with torch.inference_mode(False), torch.no_grad():
            pe = self.pos_embed_layer.grid(self.image_embed_size)[None]
            if tuple(pe.shape[-2:]) != size:
                pe = F.interpolate(pe, size=size, mode="bilinear", align_corners=False)
            pe = pe.contiguous(memory_format=torch.channels_last)
        self._pe_cache = (gaussian, gaussian._version, size, pe)
        return pe

    def _embed_points(self, points, labels, image_size, pad):
        points = points + 0.5  # centre of the pixel
        if pad:
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        embed = self.pos_embed_layer.coords(points, image_size)
        embed = torch.where((labels == -1)[..., None], torch.zeros_like(embed), embed)
        embed = embed + (labels == -1)[..., None] * self.not_a_point_embed.weight
        embed = embed + (labels == 0)[..., None] * self.point_embeds[0].weight
        embed = embed + (labels == 1)[..., None] * self.point_embeds[1].weight
        return embed

    def _embed_boxes(self, boxes, image_size):
        corners = self.pos_embed_layer.coords((boxes + 0.5).reshape(-1, 2, 2), image_size)
        corner_kind = torch.cat([self.point_embeds[2].weight, self.point_embeds[3].weight])
        return corners + corner_kind

    def forward(self, embed_size, points=None, labels=None, boxes=None, mask_input=None):
        """Return (sparse (B, N, C), dense (B, C, h, w)) prompt embeddings.

        points (B, N, 2) (x, y) in model-input pixels, labels (B, N) in {1, 0, -1};
        boxes (B, 4); mask_input (B, 1, 4h, 4w) low-res logits of the previous step.
        """
        image_size = (embed_size[0] * self.patch, embed_size[1] * self.patch)
        batch = next(t.shape[0] for t in (points, boxes, mask_input) if t is not None)
        sparse = [torch.empty(batch, 0, self.embed_dim, device=self.no_mask_embed.weight.device)]
        if points is not None:
            sparse.append(self._embed_points(points.float(), labels, image_size, pad=boxes is None))
        if boxes is not None:
            sparse.append(self._embed_boxes(boxes.float(), image_size))
        sparse = torch.cat(sparse, dim=1)
        if mask_input is not None:
            dense = self.mask_downscaling(mask_input)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                batch, -1, *self.image_embed_size
            )
        if tuple(dense.shape[-2:]) != tuple(embed_size):
            dense = F.interpolate(dense, size=tuple(embed_size), mode="bilinear", align_corners=False)
        return sparse, dense
