"""Stage 2, end to end: click training with the backbone unfrozen (HRSAM trains it in stage 2 too).

  python -m hrsam_model.training.finetune --init runs/stage2a/hrsam_tiny.safetensors \
      --out runs/finetune --max-minutes 65

Same data, click simulation and loss as `clicks.py` (views of the TRAIN splits + synthetic shapes,
first click in the object's interior or a jittered box, n ~ 0.6^n no-grad clicks in the larger
error region with the previous logits fed back, normalized focal loss on mask token 0), but the
views are drawn on the fly and the backbone gets gradients. To keep a backbone backward affordable
on a 2-core CPU, each sample is a square window (`--crop` px or more, on the 16 px grid) cut from
the padded 1024 canvas that inference feeds the model. The decoder keeps the canvas frame: clicks
are given in canvas pixels and the image PE is the window's part of the 64x64 PE, so the decoder
sees exactly what it sees at inference for those tokens (a first try that let the window act as
a small canvas of its own, with a resized PE, learned the wrong object scale and lost E. coli).
Every window trains up to `--objects` objects on one encoder pass. With `--large-canvas-fraction`,
that share of the labelled views is laid out on a 2048 px canvas instead (objects twice as large
in tokens, the PE and clicks of a 2048 px input), as inference at `target_size=2048` sees them.
With `--zoom-view-fraction`, that share of the labelled views is cut around an object the way the
zoom-in of `hrsam_model.pixels.zoom_box` cuts its window (with jittered expansion and minimum size).
With `--unnested-first-click`, that share of first clicks avoids the labelled objects nested inside
the target (the brain's structures inside the whole brain): the official first click, the
target's centre, would otherwise sit on one and teach the model to answer a click on a small
structure with the big object around it. With `--balance-kinds 1`, images are drawn so that every
kind of target weighs the same (`clicks.kind_balanced_image_weights`). With `--click-loss-weight`,
the loss adds that weight times the mean cross-entropy over the pixels within
`--click-loss-radius` of each click: a click is a statement about its own pixels, and on small
brain structures the model left 3-5 of 10 clicked pixels on the wrong side of its mask.
`--sources all` (or a comma list) trains on the sources added since the shipped runs
(`evaluation.more_sources`) beside the first three. With `--iou-loss-weight`, the IoU head learns
the IoU each final mask really has (SAM's MSE loss): segment-everything filters masks by it.
With `--anchor-weight`, the first-click mask of every object of the `--anchor-sources` (default: the
three sets the shipped file was trained on) is also pulled towards the `--init` model's own first-click
mask (a frozen copy; binary KL divergence of the low-resolution mask logits): stages 3a and 3b taught
the new sources at the cost of the old sets' first mask, and this term holds it.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hrsam_model.device import resolve_device
from hrsam_model.evaluation import datasets
from hrsam_model.transforms import prepare_input

from . import loop
from .clicks import (
    CANVAS,
    MIN_OBJECT_PIXELS,
    Prompts,
    group_by_image,
    kind_balanced_image_weights,
    lr_at,
    make_view,
    nested_region,
    prompt_tensors,
    simulate,
    synthetic_view,
    zoom_window,
)
from .losses import binary_iou, normalized_focal_loss


@dataclass
class FinetuneConfig:
    model: str = "hrsam_tiny"
    steps: int = 1300  # defaults = the shipped run (MODEL_CARD)
    batch: int = 4  # crops per step
    objects: int = 2  # objects trained per crop (one encoder pass)
    crop: int = 384
    lr: float = 2e-4
    backbone_lr_scale: float = 0.5
    min_lr: float = 1e-6
    warmup: int = 30
    weight_decay: float = 0.05
    max_clicks: int = 10
    click_gamma: float = 0.6  # P(n extra clicks) ~ gamma^n; official 0.6 (mostly 0-2 clicks)
    box_prob: float = 0.2
    synthetic_fraction: float = 0.2
    whole_image_fraction: float = 0.7  # views of a whole image (objects at their inference scale)
    large_canvas_fraction: float = 0.0  # labelled views on a 2048 canvas (inference at 2048 px)
    large_canvas_max_crop: int = 1024  # window cap there, to bound the backward's cost
    zoom_view_fraction: float = 0.0  # labelled views cut like inference's zoom-in window
    unnested_first_click: float = 0.0  # share of first clicks kept off objects nested in the target
    balance_kinds: int = 0  # 1: draw images so each kind of target (brain structure) weighs the same
    sources: str = ""  # labelled sources, comma-separated; "" = datasets.DATASETS (the shipped runs'), "all"
    source_weights: str = ""  # e.g. "nuclei=1,ecoli=2,brain=1"; empty: every labelled source alike
    iou_loss_weight: float = 0.0  # MSE of the IoU head's estimate against the measured IoU (0: off)
    click_loss_weight: float = 0.0  # extra cross-entropy on the pixels around each click (0: off)
    click_loss_radius: float = 6.0  # canvas pixels
    anchor_weight: float = 0.0  # KL of the first-click mask to the --init model's (0: off)
    anchor_sources: str = ""  # sources that term applies to; "" = datasets.DATASETS (the shipped file's)
    seed: int = 0
    threads: int = 2
    device: str = "cpu"  # "cuda": train on a GPU (Triton kernels, bf16 autocast there too)
    checkpoint_minutes: float = 4.0
    max_minutes: float = 0.0
    stop_step: int = 0  # stop here with the schedule of `steps` (to replay a timed run)


def crop_around(shape, masks: list, rng: np.random.Generator, min_side: int, objects: int,
                max_side: int = CANVAS):
    """A square window of the canvas (at most `max_side`) around one drawn object.

    shape: the view's (h, w) at the canvas' top-left. Returns ((y0, x0), side, [object masks]):
    origin and side on the 16 px grid, masks cut to the window's part inside the view (the rest is
    canvas padding). Objects count when at least 70% of them lies inside (as in `clicks.make_view`);
    the first mask is the drawn object's when it qualifies."""
    h, w = shape
    target = masks[int(rng.integers(len(masks)))]
    ys, xs = np.nonzero(target)
    extent = max(np.ptp(ys), np.ptp(xs)) + 1
    side = int(math.ceil(extent * rng.uniform(1.2, 2.0) / 16) * 16)
    side = int(np.clip(side, min_side, max_side))
    y0 = int(np.clip(ys.mean() - side * rng.uniform(0.3, 0.7), 0, max(0, h - side))) // 16 * 16
    x0 = int(np.clip(xs.mean() - side * rng.uniform(0.3, 0.7), 0, max(0, w - side))) // 16 * 16
    vh, vw = min(side, h - y0), min(side, w - x0)
    inside = []
    for m in [target] + [m for m in masks if m is not target]:
        part = m[y0:y0 + vh, x0:x0 + vw]
        if part.sum() >= max(MIN_OBJECT_PIXELS, 0.7 * m.sum()):
            inside.append(part)
    if len(inside) > objects:  # keep the target, draw the others
        pick = rng.choice(len(inside) - 1, objects - 1, replace=False) + 1
        inside = [inside[0]] + [inside[i] for i in pick]
    return (y0, x0), side, inside


def decode_in_canvas(model, emb, prompts: Prompts, origin, canvas: int = CANVAS, with_iou: bool = False):
    """Mask token 0 logits (1, 1, 4g, 4g) for a window of the canvas at `origin` (pixels, 16 px grid);
    with `with_iou`, (logits, the IoU head's estimate for token 0 (1,)).

    Points and boxes are window pixels; they are moved to canvas pixels, the image PE is cut from
    the canvas' PE (made as inference makes it for that canvas), the previous logits (window frame)
    go through mask_downscaling."""
    neck = model.neck
    oy, ox = origin
    grid = tuple(emb.shape[-2:])
    canvas_grid = (canvas // model.patch_size, canvas // model.patch_size)
    sparse, _ = neck(canvas_grid, *prompt_tensors(prompts, origin, emb.device), None)
    if prompts.mask_input is not None:
        dense = neck.mask_downscaling(prompts.mask_input)
    else:
        dense = neck.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, *grid)
    ty, tx = oy // model.patch_size, ox // model.patch_size
    pe = neck.image_pe(canvas_grid)[..., ty:ty + grid[0], tx:tx + grid[1]]
    logits, iou = model.decode_head(emb, pe, sparse, dense, multimask=False)
    return (logits, iou[:, 0]) if with_iou else logits


def source_probabilities(names: list, weights: str):
    """Drawing probabilities of the labelled sources from "name=w,..." (None: uniform)."""
    if not weights:
        return None
    given = {}
    for item in weights.split(","):
        name, _, value = item.partition("=")
        if name.strip() not in names:
            raise ValueError(f"source_weights names {name.strip()!r}; the sources are {names}")
        given[name.strip()] = float(value)
    p = np.array([given.get(name, 1.0) for name in names])
    if (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"source_weights must be >= 0 with a positive sum, got {weights!r}")
    return p / p.sum()


def source_names(sources: str) -> tuple[str, ...]:
    """The labelled sources named by `sources` ("" = the three the shipped runs used, "all")."""
    if not sources:
        return datasets.DATASETS
    if sources == "all":
        return datasets.ALL_DATASETS
    names = tuple(name.strip() for name in sources.split(",") if name.strip())
    unknown = [name for name in names if name not in datasets.ALL_DATASETS]
    if unknown or not names:
        raise ValueError(f"sources names {unknown or sources!r}; choose from {datasets.ALL_DATASETS} or 'all'")
    return names


def draw_crop(groups: dict, rng: np.random.Generator, cfg: FinetuneConfig, image_weights=None):
    """-> (window of the normalised canvas (1, 3, side, side), origin, side, [object masks], canvas,
    [pixels of each object covered by smaller objects nested inside it (`clicks.nested_region`);
    None each unless cfg.unnested_first_click], the source's name ("synthetic" for a drawn scene))."""
    names = list(groups)
    probabilities = source_probabilities(names, cfg.source_weights)
    while True:
        canvas, max_side, source = CANVAS, CANVAS, "synthetic"
        if not names or rng.random() < cfg.synthetic_fraction:
            rgb, masks = synthetic_view(rng)
        else:
            if probabilities is None:  # the stream the shipped runs were drawn with
                source = names[int(rng.integers(len(names)))]
            else:
                source = names[int(rng.choice(len(names), p=probabilities))]
            weights = (image_weights or {}).get(source)
            pick = rng.choice(len(weights), p=weights) if weights is not None else rng.integers(len(groups[source]))
            image, group_masks = groups[source][int(pick)]
            if rng.random() < cfg.large_canvas_fraction:
                canvas, max_side = 2 * CANVAS, cfg.large_canvas_max_crop
            window = None
            if cfg.zoom_view_fraction and rng.random() < cfg.zoom_view_fraction:
                window = zoom_window(image.shape[:2], group_masks, rng)
            rgb, masks = make_view(image, group_masks, rng, cfg.whole_image_fraction, canvas, window)
        if masks:
            (y0, x0), side, inside = crop_around(rgb.shape[:2], masks, rng, cfg.crop, cfg.objects, max_side)
            if inside:
                x, _ = prepare_input(rgb.astype(np.float32), canvas)
                nested = [None] * len(inside)
                if cfg.unnested_first_click:
                    parts = [m[y0:y0 + side, x0:x0 + side] for m in masks]
                    nested = [nested_region(gt, parts) for gt in inside]
                return x[..., y0:y0 + side, x0:x0 + side], (y0, x0), side, inside, canvas, nested, source


def click_neighbourhood(points, shape, radius: float) -> np.ndarray:
    """Pixels of a (h, w) grid within `radius` of any click ((x, y) pixels, as in `Prompts.points`)."""
    near = np.zeros(shape, dtype=bool)
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    for x, y in points:
        near |= (rows - y) ** 2 + (cols - x) ** 2 <= radius ** 2
    return near


def click_loss(logits: torch.Tensor, target: torch.Tensor, near: np.ndarray) -> torch.Tensor:
    """Mean cross-entropy of (1, 1, h, w) logits against the target over the `near` pixels (0 if none)."""
    if not near.any():
        return logits.sum() * 0.0
    weight = torch.from_numpy(near)[None, None].to(logits.device, torch.float32)
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return (bce * weight).sum() / weight.sum()


def first_prompt(prompts: Prompts) -> Prompts:
    """The first prompt of a simulated sequence alone: its box, else its first click."""
    if prompts.box is not None:
        return Prompts([], [], prompts.box, None)
    return Prompts(prompts.points[:1], prompts.labels[:1], None, None)


def anchor_loss(logits: torch.Tensor, anchor_logits: torch.Tensor) -> torch.Tensor:
    """Mean binary KL divergence from the anchor's per-pixel mask probabilities to the student's.

    Zero where the two logits agree; its gradient is that of the cross-entropy to the anchor's soft mask."""
    target = torch.sigmoid(anchor_logits.float())
    cross = F.binary_cross_entropy_with_logits(logits.float(), target)
    entropy = F.binary_cross_entropy_with_logits(anchor_logits.float(), target)
    return cross - entropy


def finetune_step(model, optimizer, groups, rng, cfg: FinetuneConfig, image_weights=None, anchor=None):
    """One optimiser step over cfg.batch windows; returns (loss, mean IoU of the final forwards).

    anchor: the frozen --init model, for the first-click term of cfg.anchor_weight."""
    crops = [draw_crop(groups, rng, cfg, image_weights) for _ in range(cfg.batch)]
    count = sum(len(crop[3]) for crop in crops)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total, ious = 0.0, []
    device = next(model.parameters()).device
    anchored = source_names(cfg.anchor_sources) if anchor is not None and cfg.anchor_weight else ()
    for x, origin, side, inside, canvas, nested, source in crops:
        x = x.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            emb = model.encode(x)
            anchor_emb = None
            if source in anchored:
                with torch.no_grad():
                    anchor_emb = anchor.encode(x).float()
        emb = emb.float()
        decode_fn = partial(decode_in_canvas, origin=origin, canvas=canvas)
        loss = 0.0
        for gt, inner in zip(inside, nested):
            first_region = None
            # drawn only where something is nested, so runs without nesting keep their random stream
            if inner is not None and inner.any() and rng.random() < cfg.unnested_first_click:
                first_region = gt & ~inner
            prompts = simulate(model, emb.detach(), gt, rng, cfg.max_clicks, cfg.box_prob,
                               decode_fn=decode_fn, first_region=first_region, gamma=cfg.click_gamma)
            logits, iou_estimate = decode_fn(model, emb, prompts, with_iou=True)
            up = F.interpolate(logits, size=(side, side), mode="bilinear", align_corners=False)
            up = up[..., : gt.shape[0], : gt.shape[1]]
            target = torch.from_numpy(gt)[None, None].to(device)
            loss = loss + normalized_focal_loss(up, target) / count
            if cfg.click_loss_weight:
                near = click_neighbourhood(prompts.points, gt.shape, cfg.click_loss_radius)
                loss = loss + cfg.click_loss_weight * click_loss(up, target, near) / count
            measured = binary_iou(up.detach(), target)
            if cfg.iou_loss_weight:  # SAM's IoU-head loss: MSE to the IoU the mask really has
                loss = loss + cfg.iou_loss_weight * F.mse_loss(iou_estimate.float(), measured.reshape(1)) / count
            ious.append(measured.item())
            if anchor_emb is not None:
                first = first_prompt(prompts)
                with torch.no_grad():
                    anchor_logits = decode_fn(anchor, anchor_emb, first)
                loss = loss + cfg.anchor_weight * anchor_loss(decode_fn(model, emb, first), anchor_logits) / count
        loss.backward()
        total += loss.item()
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
    optimizer.step()
    return total, float(np.mean(ious))


def make_optimizer(model, cfg: FinetuneConfig):
    backbone = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    heads = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    model.requires_grad_(True)
    return torch.optim.AdamW([{"params": backbone, "base_lr": cfg.lr * cfg.backbone_lr_scale},
                              {"params": heads, "base_lr": cfg.lr}], weight_decay=cfg.weight_decay)


def train(init: Path | None, out: Path, cfg: FinetuneConfig, resume: bool = False, data_root=None,
          model=None, groups=None, log=print):
    from hrsam_model import build_model, load_checkpoint

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    if model is None:
        model = build_model(cfg.model)
        load_checkpoint(model, init)
    model.to(cfg.device)  # before the optimizer, whose state follows the parameters on resume
    optimizer = make_optimizer(model, cfg)
    rng = np.random.default_rng(cfg.seed)
    if groups is None or cfg.balance_kinds:  # read the labelled data once for both
        instances = {name: datasets.load_instances(name, "train", data_root) for name in source_names(cfg.sources)}
    if groups is None:
        groups = {name: group_by_image(items) for name, items in instances.items()}
    image_weights = None
    if cfg.balance_kinds:
        image_weights = {name: kind_balanced_image_weights(instances[name]) for name in groups}

    def set_lr(step):
        factor = lr_at(step, cfg) / cfg.lr  # warm-up + cosine, scaled per parameter group
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        return optimizer.param_groups[1]["lr"]

    anchor = None
    if cfg.anchor_weight:  # the --init weights, frozen; copied before a resume loads the checkpoint
        anchor = copy.deepcopy(model).eval().requires_grad_(False)
        source_names(cfg.anchor_sources)  # an unknown name is said before the first step

    def step_fn():
        return finetune_step(model, optimizer, groups, rng, cfg, image_weights, anchor)

    return loop.run(model, optimizer, rng, cfg, out, step_fn, set_lr, resume, log)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hrsam_model.training.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", type=Path, required=True, help="stage-2 model (.safetensors or state dict)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--resume", action="store_true")
    for field, default in asdict(FinetuneConfig()).items():
        parser.add_argument("--" + field.replace("_", "-"), type=type(default), default=default)
    args = parser.parse_args(argv)
    cfg = FinetuneConfig(**{f: getattr(args, f) for f in asdict(FinetuneConfig())})
    try:
        resolve_device(cfg.device)  # a missing GPU is said before the data is read
    except ValueError as error:
        parser.error(str(error))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    train(args.init, args.out, cfg, resume=args.resume, data_root=args.data_root,
          log=lambda *a: print(*a, flush=True))


if __name__ == "__main__":
    main()
