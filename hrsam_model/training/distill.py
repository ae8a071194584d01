"""Stage 1 (HRSAM's SAM distillation): the student backbone learns the teacher's embeddings.

Two sub-commands:

  python -m hrsam_model.training.distill cache --out runs/cache --count 400 --seed 0
      draws augmented unlabelled images (long side 1024, RGB uint8) and stores each with the
      LiteMedSAM TinyViT embedding of the same image at 256 px (fp16, 256x64x64). Resumable:
      sample i depends only on (seed, i), existing samples are kept.

  python -m hrsam_model.training.distill train --cache runs/cache --out runs/distill --steps N
      MSE between the student's output on the 1024 px canvas (official preprocessing, BGR,
      mean/std) and the cached teacher embedding, on aligned crops (crop of S px <-> S/16 tokens)
      and some whole canvases. Positions outside the image are left out of the loss because the
      two models pad differently (teacher: black after min-max; student: the mean colour).
      Checkpoints every few minutes; --resume continues from the last one.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hrsam_model.transforms import normalize_bgr

from .losses import masked_cosine, masked_mse

CANVAS = 1024
PATCH = 16


# ------------------------------------------------------------------------------ cache
def sample_paths(cache: Path, index: int) -> tuple[Path, Path]:
    return cache / f"{index:05d}_img.npy", cache / f"{index:05d}_emb.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


def build_cache(out: Path, count: int, seed: int, teacher_path: Path, data_root=None,
                start: int = 0, log=print) -> int:
    """Fill `out` with samples start..count-1 that are missing; returns how many were made."""
    from .images import draw_unlabelled, load_unlabelled_pool
    from .teacher import load_teacher, teacher_input_np

    out.mkdir(parents=True, exist_ok=True)
    teacher = load_teacher(teacher_path).to(memory_format=torch.channels_last)
    pool = load_unlabelled_pool(data_root)
    made, t0 = 0, time.time()
    for index in range(start, count):
        img_path, emb_path = sample_paths(out, index)
        if img_path.is_file() and emb_path.is_file():
            continue
        rng = np.random.default_rng([seed, index])
        rgb, name = draw_unlabelled(pool, rng)
        with torch.no_grad():
            x = teacher_input_np(rgb).to(memory_format=torch.channels_last)
            emb = teacher(x)[0].to(torch.float16).numpy()
        _save_atomic(emb_path, emb)
        _save_atomic(img_path, rgb)  # written last: its presence marks a complete sample
        with open(out / "names.jsonl", "a") as f:  # provenance of each sample
            f.write(json.dumps({"index": index, "name": name}) + "\n")
        made += 1
        if made % 10 == 0:
            log(f"cache {index + 1}/{count}  {(time.time() - t0) / made:.2f} s/sample  last={name}")
    return made


def complete_samples(cache: Path) -> list[int]:
    return sorted(
        int(p.name[:5]) for p in cache.glob("*_img.npy") if sample_paths(cache, int(p.name[:5]))[1].is_file()
    )


# ------------------------------------------------------------------------------ batches
def valid_tokens(height: int, width: int) -> tuple[int, int]:
    """Tokens that lie wholly inside an image of this size on the 1024 canvas."""
    return height // PATCH, width // PATCH


def make_batch(cache: Path, indices: list[int], crop: int, rng: np.random.Generator):
    """Student inputs (B, 3, crop, crop), teacher targets (B, 256, t, t), valid masks (B, 1, t, t)."""
    tokens = crop // PATCH
    xs, targets, masks = [], [], []
    for index in indices:
        img_path, emb_path = sample_paths(cache, index)
        rgb = np.load(img_path)
        emb = np.load(emb_path, mmap_mode="r")
        vh, vw = valid_tokens(*rgb.shape[:2])
        ty = int(rng.integers(0, max(vh - tokens, 0) + 1))
        tx = int(rng.integers(0, max(vw - tokens, 0) + 1))
        patch = np.zeros((crop, crop, 3), np.float32)
        part = rgb[ty * PATCH:ty * PATCH + crop, tx * PATCH:tx * PATCH + crop]
        patch[: part.shape[0], : part.shape[1]] = part
        x = normalize_bgr(torch.from_numpy(patch).permute(2, 0, 1)[None])[0]
        # pad area = 0 after normalisation (the mean colour), as the official preprocessing
        x[:, part.shape[0]:, :] = 0
        x[:, :, part.shape[1]:] = 0
        target = torch.from_numpy(np.array(emb[:, ty:ty + tokens, tx:tx + tokens], dtype=np.float32))
        valid = torch.zeros(1, tokens, tokens)
        valid[:, : max(0, vh - ty), : max(0, vw - tx)] = 1
        full_target = torch.zeros(emb.shape[0], tokens, tokens)
        full_target[:, : target.shape[1], : target.shape[2]] = target
        xs.append(x)
        targets.append(full_target)
        masks.append(valid)
    return torch.stack(xs), torch.stack(targets), torch.stack(masks)


# ------------------------------------------------------------------------------ training
@dataclass
class DistillConfig:
    model: str = "hrsam_tiny"
    steps: int = 2000
    lr: float = 6e-4
    min_lr: float = 1e-5
    warmup: int = 100
    weight_decay: float = 0.05
    crop: int = 256
    batch: int = 8
    full_every: int = 0  # every k-th step uses whole 1024 canvases (batch 1); 0 = never
    seed: int = 0
    bf16: bool = True
    threads: int = 2
    checkpoint_minutes: float = 4.0
    max_minutes: float = 0.0  # stop (after a checkpoint) when this much wall time has passed; 0 = no limit
    stop_step: int = 0  # stop (after a checkpoint) at this step, schedule unchanged; 0 = run to `steps`


def lr_at(step: int, cfg: DistillConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def param_groups(module: torch.nn.Module, weight_decay: float):
    """No weight decay for biases, norms, embeddings and other 1-D parameters (official rule)."""
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith("pos_embed") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def save_checkpoint(path: Path, student, optimizer, step: int, cfg: DistillConfig, rng) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"student": student.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "config": asdict(cfg), "rng": rng.bit_generator.state}, tmp)
    tmp.replace(path)


def load_training_checkpoint(path: Path):
    return torch.load(path, map_location="cpu", weights_only=False)


def distill_step(student, optimizer, x, target, valid, cfg: DistillConfig):
    student.train()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
        out = student(x)
    loss = masked_mse(out, target, valid)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
    optimizer.step()
    return loss.item(), masked_cosine(out, target, valid).item()


def match_output_norm(student, teacher_path: Path) -> None:
    """Start the student's last LayerNorm at the teacher's last LayerNorm2d affine.

    LiteMedSAM's embedding is small (mean square ~0.01, set by that affine) while a fresh
    LayerNorm outputs unit variance: without this, the first thousand steps only shrink the scale.
    """
    state = torch.load(teacher_path, map_location="cpu", weights_only=True)
    with torch.no_grad():
        student.out_conv[2].weight.copy_(state["image_encoder.neck.3.weight"])
        student.out_conv[2].bias.copy_(state["image_encoder.neck.3.bias"])


def train(cache: Path, out: Path, cfg: DistillConfig, resume: bool = False, student=None, log=print,
          teacher_path: Path | None = None):
    """Run (or continue) distillation; returns the student backbone."""
    from hrsam_model import build_model

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    if student is None:
        student = build_model(cfg.model).backbone
    if teacher_path is not None:
        match_output_norm(student, teacher_path)
    optimizer = torch.optim.AdamW(param_groups(student, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.999))
    rng = np.random.default_rng(cfg.seed)
    step = 0
    if resume and ckpt_path.is_file():
        state = load_training_checkpoint(ckpt_path)
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        step = state["step"]
        log(f"resumed at step {step}")
    start, last_save = time.time(), time.time()
    samples = complete_samples(cache)
    if not samples:
        raise FileNotFoundError(f"no cached samples in {cache}; run the 'cache' sub-command first")
    with open(out / "log.jsonl", "a") as logf:
        while step < cfg.steps:
            if step % 50 == 0:
                samples = complete_samples(cache)  # the cache may still be growing
            full = cfg.full_every > 0 and step % cfg.full_every == cfg.full_every - 1
            crop, batch = (CANVAS, 1) if full else (cfg.crop, cfg.batch)
            picks = [samples[i] for i in rng.integers(0, len(samples), size=batch)]
            x, target, valid = make_batch(cache, picks, crop, rng)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg)
            t0 = time.time()
            loss, cos = distill_step(student, optimizer, x, target, valid, cfg)
            step += 1
            record = {"step": step, "loss": round(loss, 6), "cos": round(cos, 4), "crop": crop,
                      "lr": optimizer.param_groups[0]["lr"], "sec": round(time.time() - t0, 2),
                      "samples": len(samples)}
            logf.write(json.dumps(record) + "\n")
            logf.flush()
            if step % 10 == 0 or step == 1:
                log(" ".join(f"{k}={v}" for k, v in record.items()))
            elapsed_min = (time.time() - start) / 60
            stop = (cfg.max_minutes and elapsed_min >= cfg.max_minutes) or step == cfg.stop_step
            if step == cfg.steps or stop or time.time() - last_save > 60 * cfg.checkpoint_minutes:
                save_checkpoint(ckpt_path, student, optimizer, step, cfg, rng)
                last_save = time.time()
            if stop:
                log(f"stopping at step {step} after {elapsed_min:.1f} min (max_minutes)")
                break
    torch.save(student.state_dict(), out / "student_backbone.pt")
    return student


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hrsam_model.training.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache", help="compute teacher embeddings of augmented images")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--count", type=int, default=400)
    c.add_argument("--start", type=int, default=0)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--teacher", type=Path, default=Path("/work/data/lite_medsam.pth"))
    c.add_argument("--data-root", type=Path, default=None)
    c.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("train", help="distil the student backbone from the cache")
    t.add_argument("--cache", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--teacher", type=Path, default=Path("/work/data/lite_medsam.pth"),
                   help="LiteMedSAM file: its last norm initialises the student's (0 steps of shrinking)")
    for field, default in asdict(DistillConfig()).items():
        flag = "--" + field.replace("_", "-")
        if isinstance(default, bool):
            t.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=default)
        else:
            t.add_argument(flag, type=type(default), default=default)
    args = parser.parse_args(argv)
    if args.command == "cache":
        torch.set_num_threads(args.threads)
        build_cache(args.out, args.count, args.seed, args.teacher, args.data_root, args.start)
    else:
        cfg = DistillConfig(**{f: getattr(args, f) for f in asdict(DistillConfig())})
        (args.out).mkdir(parents=True, exist_ok=True)
        (args.out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
        train(args.cache, args.out, cfg, resume=args.resume, teacher_path=args.teacher)


if __name__ == "__main__":
    main()
