"""Training losses: embedding distillation (stage 1) and the normalized focal loss (stage 2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor | None = None):
    """Mean squared error per sample over channels and valid positions, then batch mean.

    student, teacher: (B, C, h, w); valid: (B, 1, h, w) 0/1 (positions inside the image).
    """
    diff = (student.float() - teacher.float()) ** 2
    if valid is None:
        return diff.mean()
    valid = valid.float()
    per_sample = (diff * valid).sum(dim=(1, 2, 3)) / (valid.sum(dim=(1, 2, 3)) * diff.shape[1]).clamp_min(1)
    return per_sample.mean()


@torch.no_grad()
def masked_cosine(student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor | None = None):
    """Mean cosine similarity of the channel vectors at valid positions (a readable fit metric)."""
    cos = F.cosine_similarity(student.float(), teacher.float(), dim=1, eps=1e-6)[:, None]
    if valid is None:
        return cos.mean()
    valid = valid.float()
    return (cos * valid).sum() / valid.sum().clamp_min(1)


def normalized_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.5,
                          gamma: float = 2.0, weight: torch.Tensor | None = None, eps: float = 1e-8):
    """RITM/HRSAM NormalizedFocalLoss: focal loss rescaled so its per-sample weights sum to #pixels.

    logits, target: (B, 1, H, W); weight: optional (B, 1, H, W) 0/1 mask of pixels that count.
    The normaliser sum((1 - p_t)^gamma) is detached, as in the official code.
    """
    target = target.float()
    prob = torch.sigmoid(logits.float())
    weight = torch.ones_like(prob) if weight is None else weight.float()
    alpha_t = torch.where(target > 0.5, alpha, 1 - alpha) * weight
    p_t = torch.where(target > 0.5, prob, 1 - prob)
    beta = (1 - p_t) ** gamma
    dims = (1, 2, 3)
    count = weight.sum(dim=dims, keepdim=True)
    scale = (count / (beta * weight).sum(dim=dims, keepdim=True).clamp_min(eps)).detach()
    log_pt = torch.log(p_t.clamp(min=eps, max=1.0))
    loss = -alpha_t * beta * scale * log_pt
    return (loss.sum(dim=dims) / count.squeeze().clamp_min(1).reshape(-1)).mean()


def binary_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    pred = logits > 0
    target = target > 0.5
    inter = (pred & target).sum(dim=(1, 2, 3)).float()
    union = (pred | target).sum(dim=(1, 2, 3)).float()
    return (inter / union.clamp_min(1)).mean()
