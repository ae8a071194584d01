"""Stage 2 (HRSAM's click fine-tuning): prompt encoder + mask decoder learn to follow clicks.

  python -m hrsam_model.training.clicks views --backbone runs/distill/student_backbone.pt \
      --out runs/views --count 240 --seed 0
      draws augmented views of the TRAIN splits (nuclei, ecoli, brain) and synthetic shapes on the
      1024 canvas, with every object mask of the view, and stores the frozen backbone's embedding.
  python -m hrsam_model.training.clicks train --views runs/views \
      --backbone runs/distill/student_backbone.pt --decoder /work/data/lite_medsam.pth \
      --out runs/clicks --steps N
      initialises the prompt encoder and mask decoder from LiteMedSAM and trains them with the
      official iterative click simulation: a first click at the object's interior (farthest from
      its boundary), then n ~ P(n) ~ 0.6^n clicks without gradient, each at a random pixel of the
      larger error region farther than max/1.7 from its boundary, fed with the previous logits;
      a final forward with gradient and the normalized focal loss on mask token 0 (logits
      upsampled to the input). A fraction of samples starts from a jittered box.

The backbone stays frozen here (its embeddings are cached): on a 2-core CPU a backbone backward
at 1024 px costs tens of seconds, the decoder's a fraction of a second.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hrsam_model.evaluation import datasets
from hrsam_model.evaluation.clicker import next_click
from hrsam_model.transforms import prepare_input

from . import loop
from .images import flip_rotate, photometric, resize_long_side, synthetic_shapes, to_rgb_uint8
from .losses import binary_iou, normalized_focal_loss

CANVAS = 1024
MIN_OBJECT_PIXELS = 64  # on the canvas


# ------------------------------------------------------------------------------ views
def _image_key(image: np.ndarray) -> str:
    """Same pixels, same key: instances of one image share it."""
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest() + str(image.shape)


def group_by_image(instances) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Instances sharing pixels -> (image, [masks])."""
    groups: dict[str, tuple[np.ndarray, list]] = {}
    for inst in instances:
        groups.setdefault(_image_key(inst.image), (inst.image, []))[1].append(inst.mask)
    return list(groups.values())


def load_labelled_groups(data_root=None) -> dict[str, list]:
    return {name: group_by_image(datasets.load_instances(name, "train", data_root))
            for name in datasets.DATASETS}


def kind_balanced_image_weights(instances) -> np.ndarray:
    """Drawing weights for the images of `group_by_image(instances)` (same order) that give every
    kind of target (`datasets.target_kind`) the same total weight.

    The brain's train half has the whole brain on 370 slices and each structure on 36-82: drawn
    uniformly, the whole brain is the target of ~2/3 of brain views and a click on a structure
    learns to mean the brain around it."""
    kinds = [datasets.target_kind(inst) for inst in instances]
    count = Counter(kinds)
    weights: dict[str, float] = {}  # insertion order = group_by_image's order
    for inst, kind in zip(instances, kinds):
        key = _image_key(inst.image)
        weights[key] = weights.get(key, 0.0) + 1.0 / count[kind]
    w = np.array(list(weights.values()))
    return w / w.sum()


def random_window(shape, masks, rng: np.random.Generator, whole_prob: float = 0.35):
    """A crop that zooms in on objects (or the whole image), so objects of many sizes appear."""
    h, w = shape
    if rng.random() < whole_prob:
        return 0, h, 0, w
    mask = masks[int(rng.integers(len(masks)))]
    ys, xs = np.nonzero(mask)
    oh, ow = np.ptp(ys) + 1, np.ptp(xs) + 1
    # the object should cover 1/12 .. 2/3 of the crop side
    side = int(max(oh, ow) * rng.uniform(1.5, 12.0))
    side = int(np.clip(side, 48, max(h, w)))
    ch, cw = min(h, side), min(w, side)
    cy, cx = ys.mean(), xs.mean()
    y0 = int(np.clip(cy - ch * rng.uniform(0.2, 0.8), 0, h - ch))
    x0 = int(np.clip(cx - cw * rng.uniform(0.2, 0.8), 0, w - cw))
    return y0, y0 + ch, x0, x0 + cw


def zoom_window(shape, masks, rng: np.random.Generator):
    """The window that inference's zoom-in (`hrsam_model.pixels.zoom_box`) would cut around a random object:
    its extent times 1.2-2.0 (inference: 1.4), at least 150-260 px (inference: 200)."""
    from hrsam_model.pixels import zoom_box

    ys, xs = np.nonzero(masks[int(rng.integers(len(masks)))])
    bbox = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
    # no clicks: the object's extent alone sets the window (a click inside it would not change it)
    top, left, bottom, right = zoom_box(shape, bbox, (), rng.uniform(1.2, 2.0), int(rng.integers(150, 261)))
    return top, bottom, left, right


def make_view(image, masks, rng: np.random.Generator, whole_prob: float = 0.35, canvas: int = CANVAS,
              window=None):
    """Augmented RGB uint8 view (long side `canvas`) and its object masks that are big and whole enough.

    window: (y0, y1, x0, x1) of the image to view; default `random_window`."""
    y0, y1, x0, x1 = random_window(image.shape[:2], masks, rng, whole_prob) if window is None else window
    k, flip = int(rng.integers(0, 4)), bool(rng.random() < 0.5)
    rgb = photometric(to_rgb_uint8(flip_rotate(image[y0:y1, x0:x1], rng, k, flip), rng), rng)
    rgb = resize_long_side(rgb, canvas)
    out_masks = []
    for mask in masks:
        inside = mask[y0:y1, x0:x1]
        if inside.sum() < 0.7 * mask.sum():  # mostly cut off: not a fair target
            continue
        m = resize_long_side(flip_rotate(inside.astype(np.uint8), rng, k, flip), canvas, order=0) > 0
        if m.sum() >= MIN_OBJECT_PIXELS:
            out_masks.append(m)
    return rgb, out_masks


def synthetic_view(rng: np.random.Generator):
    grey, labels = synthetic_shapes(rng, int(rng.choice([384, 512])))
    rgb = photometric(to_rgb_uint8((grey * 255).astype(np.uint8), rng), rng)
    rgb = resize_long_side(rgb, CANVAS)
    labels = resize_long_side(labels.astype(np.int32), CANVAS, order=0)
    masks = [labels == v for v in np.unique(labels) if v > 0]
    return rgb, [m for m in masks if m.sum() >= MIN_OBJECT_PIXELS]


def pack_masks(masks):
    """Masks -> bbox crops + offsets (a 1024 canvas of bools per object would not fit in memory)."""
    packed = []
    for m in masks:
        ys, xs = np.nonzero(m)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        packed.append((np.array([y0, x0], np.int32), m[y0:y1, x0:x1].copy()))
    return packed


def unpack_mask(shape, offset, crop):
    m = np.zeros(shape, bool)
    m[offset[0]:offset[0] + crop.shape[0], offset[1]:offset[1] + crop.shape[1]] = crop
    return m


def build_views(out: Path, backbone, count: int, seed: int, data_root=None,
                synthetic_fraction: float = 0.2, log=print) -> int:
    """Store views i < count that are missing: embedding (fp16), image shape, packed masks."""
    out.mkdir(parents=True, exist_ok=True)
    groups = load_labelled_groups(data_root) if synthetic_fraction < 1 else {}
    names = list(groups)
    made, t0 = 0, time.time()
    backbone.eval()
    for index in range(count):
        path = out / f"view_{index:05d}.pt"
        if path.is_file():
            continue
        rng = np.random.default_rng([seed, index])
        masks = []
        while not masks:
            if not names or rng.random() < synthetic_fraction:
                rgb, masks, source = *synthetic_view(rng), "synthetic"
            else:
                source = names[int(rng.integers(len(names)))]
                image, group_masks = groups[source][int(rng.integers(len(groups[source])))]
                rgb, masks = make_view(image, group_masks, rng)
        x, _ = prepare_input(rgb.astype(np.float32), CANVAS)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            emb = backbone(x)[0].float().to(torch.float16)
        tmp = path.with_suffix(".tmp")
        torch.save({"embedding": emb, "shape": rgb.shape[:2], "source": source,
                    "masks": pack_masks(masks)}, tmp)
        tmp.replace(path)
        made += 1
        if made % 10 == 0:
            log(f"views {index + 1}/{count}  {(time.time() - t0) / made:.2f} s/view")
    return made


def load_views(folder: Path) -> list[dict]:
    views = [torch.load(p, weights_only=False) for p in sorted(folder.glob("view_*.pt"))]
    if not views:
        raise FileNotFoundError(f"no views in {folder}; run the 'views' sub-command first")
    return views


# ------------------------------------------------------------------------------ click simulation
def num_extra_clicks(rng: np.random.Generator, max_clicks: int, gamma: float = 0.6) -> int:
    """n in 0..max_clicks with P(n) proportional to gamma^n (official interact_train)."""
    p = gamma ** np.arange(max_clicks + 1)
    return int(rng.choice(max_clicks + 1, p=p / p.sum()))


def jittered_box(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The object's box with each side moved by up to 10% of its size, as a user draws it."""
    ys, xs = np.nonzero(gt)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    bw, bh = x1 - x0, y1 - y0
    jitter = rng.uniform(-0.1, 0.1, 4) * np.array([bw, bh, bw, bh])
    box = np.array([x0, y0, x1, y1], np.float64) + jitter
    return np.clip(box, 0, [gt.shape[1], gt.shape[0], gt.shape[1], gt.shape[0]])


def logits_to_mask(low_res: torch.Tensor, shape) -> np.ndarray:
    """(1, 1, 4h, 4w) logits -> bool mask on the view grid (upsample x4 to the canvas, crop)."""
    size = (4 * low_res.shape[-2], 4 * low_res.shape[-1])
    up = F.interpolate(low_res.float(), size=size, mode="bilinear", align_corners=False)
    return (up[0, 0, : shape[0], : shape[1]] > 0).cpu().numpy()


@dataclass
class Prompts:
    points: list
    labels: list
    box: np.ndarray | None
    mask_input: torch.Tensor | None


def prompt_tensors(prompts: Prompts, origin=(0, 0), device=None):
    """(points (1, N, 2), labels (1, N), boxes (1, 4)) tensors on `device`, None where absent,
    shifted by origin (y, x)."""
    oy, ox = origin
    as_tensor = partial(torch.tensor, dtype=torch.float32, device=device)
    points = labels = boxes = None
    if prompts.points:
        points = as_tensor([prompts.points]) + as_tensor([ox, oy])
        labels = as_tensor([prompts.labels])
    if prompts.box is not None:
        boxes = as_tensor(prompts.box[None]) + as_tensor([ox, oy, ox, oy])
    return points, labels, boxes


def decode(model, emb, prompts: Prompts):
    logits, _ = model.decode(emb, *prompt_tensors(prompts), prompts.mask_input)
    return logits


def nested_region(gt: np.ndarray, others) -> np.ndarray:
    """Pixels of `gt` covered by a smaller labelled object lying (>= 90%) inside it.

    A brain structure lies inside the whole brain: the official first click (the target's centre)
    of the whole brain often falls on one, which teaches "a click on the putamen means the brain"."""
    region = np.zeros_like(gt, dtype=bool)
    size = gt.sum()
    for other in others:
        n = other.sum()
        if 0 < n < size and (other & gt).sum() >= 0.9 * n:  # gt itself is not smaller than gt
            region |= other
    return region & gt


def simulate(model, emb, gt: np.ndarray, rng: np.random.Generator, max_clicks: int, box_prob: float,
             inner_k: float = 1.7, decode_fn=None, first_region: np.ndarray | None = None,
             gamma: float = 0.6) -> Prompts:
    """Prompts after the no-grad part of the official interactive training loop.

    first_region: where the first click may fall (default: all of `gt`); it lands at the pixel of
    the region farthest from the region's boundary. gamma: P(n extra clicks) ~ gamma^n (official 0.6)."""
    decode_fn = decode if decode_fn is None else decode_fn
    prompts = Prompts([], [], None, None)
    clicked = np.zeros_like(gt)
    if rng.random() < box_prob:
        prompts.box = jittered_box(gt, rng)
    else:
        region = gt if first_region is None or not first_region.any() else first_region
        first = next_click(region, np.zeros_like(gt), clicked, 1.0, rng)
        prompts.points.append([first.col, first.row])  # the prompt encoder adds the half pixel
        prompts.labels.append(1)
        clicked[first.row, first.col] = True
    extra = num_extra_clicks(rng, max_clicks, gamma)
    if extra:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for _ in range(extra):
                logits = decode_fn(model, emb, prompts)
                click = next_click(gt, logits_to_mask(logits, gt.shape), clicked, inner_k, rng)
                if click is None:
                    break
                prompts.points.append([click.col, click.row])
                prompts.labels.append(int(click.positive))
                clicked[click.row, click.col] = True
                prompts.mask_input = logits
        model.train(was_training)
    return prompts


# ------------------------------------------------------------------------------ training
@dataclass
class ClickConfig:
    model: str = "hrsam_tiny"
    steps: int = 1500
    batch: int = 8
    lr: float = 1e-4
    min_lr: float = 1e-6
    warmup: int = 50
    weight_decay: float = 0.05
    max_clicks: int = 10
    box_prob: float = 0.2
    seed: int = 0
    threads: int = 2
    checkpoint_minutes: float = 4.0
    max_minutes: float = 0.0
    stop_step: int = 0  # stop at this step with the schedule of `steps` (to replay a timed run)


def lr_at(step: int, cfg: ClickConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def click_step(model, optimizer, batch, rng, cfg: ClickConfig):
    """One optimiser step over `batch` = [(embedding (1,256,64,64), gt mask)]; returns (loss, IoU)."""
    samples = [(emb, gt, simulate(model, emb, gt, rng, cfg.max_clicks, cfg.box_prob)) for emb, gt in batch]
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total, ious = 0.0, []
    for emb, gt, prompts in samples:
        logits = decode(model, emb, prompts)
        up = F.interpolate(logits, size=(CANVAS, CANVAS), mode="bilinear", align_corners=False)
        up = up[..., : gt.shape[0], : gt.shape[1]]
        target = torch.from_numpy(gt)[None, None]
        loss = normalized_focal_loss(up, target) / len(samples)
        loss.backward()
        total += loss.item()
        ious.append(binary_iou(up.detach(), target).item())
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
    optimizer.step()
    return total, float(np.mean(ious))


def draw_batch(views, rng, size):
    batch = []
    for _ in range(size):
        view = views[int(rng.integers(len(views)))]
        offset, crop = view["masks"][int(rng.integers(len(view["masks"])))]
        gt = unpack_mask(tuple(view["shape"]), offset, crop)
        batch.append((view["embedding"][None].float(), gt))
    return batch


def trainable_parameters(model):
    """Prompt encoder and mask decoder; the backbone is frozen in this stage."""
    model.backbone.requires_grad_(False)
    return [p for name, p in model.named_parameters() if not name.startswith("backbone.")]


def train(views_dir: Path, out: Path, cfg: ClickConfig, decoder_init: Path | None,
          backbone_state: Path | None, resume: bool = False, model=None, views=None, log=print):
    from hrsam_model import build_model, load_checkpoint

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    if model is None:
        model = build_model(cfg.model)
        if decoder_init is not None:
            load_checkpoint(model, decoder_init)  # SAM-layout file: prompt encoder + mask decoder
        if backbone_state is not None:
            model.backbone.load_state_dict(torch.load(backbone_state, map_location="cpu", weights_only=True))
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    views = load_views(views_dir) if views is None else views

    def set_lr(step):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        return optimizer.param_groups[0]["lr"]

    def step_fn():
        return click_step(model, optimizer, draw_batch(views, rng, cfg.batch), rng, cfg)

    return loop.run(model, optimizer, rng, cfg, out, step_fn, set_lr, resume, log)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hrsam_model.training.clicks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("views", help="cache backbone embeddings of augmented labelled views")
    v.add_argument("--backbone", type=Path, required=True)
    v.add_argument("--out", type=Path, required=True)
    v.add_argument("--count", type=int, default=240)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--model", default="hrsam_tiny")
    v.add_argument("--data-root", type=Path, default=None)
    v.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("train", help="train prompt encoder + mask decoder with simulated clicks")
    t.add_argument("--views", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--backbone", type=Path, default=None)
    t.add_argument("--decoder", type=Path, default=None, help="LiteMedSAM/SAM file for neck + decoder")
    t.add_argument("--resume", action="store_true")
    for field, default in asdict(ClickConfig()).items():
        t.add_argument("--" + field.replace("_", "-"), type=type(default), default=default)
    args = parser.parse_args(argv)
    if args.command == "views":
        from hrsam_model import build_model

        torch.set_num_threads(args.threads)
        model = build_model(args.model)
        model.backbone.load_state_dict(torch.load(args.backbone, map_location="cpu", weights_only=True))
        build_views(args.out, model.backbone, args.count, args.seed, args.data_root)
    else:
        cfg = ClickConfig(**{f: getattr(args, f) for f in asdict(ClickConfig())})
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
        train(args.views, args.out, cfg, args.decoder, args.backbone, resume=args.resume)


if __name__ == "__main__":
    main()
