"""The resumable loop shared by the click-training stages (`clicks`, `finetune`).

`out/checkpoint.pt` (model, optimizer, step, config, RNG state) is written every
`cfg.checkpoint_minutes`, at the end and on a stop; `out/model.pt` holds the weights alone;
`out/log.jsonl` gets one line per step. `--resume` continues from the checkpoint.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch


def resume_state(out: Path, model, optimizer, rng, log=print) -> int:
    """Load out/checkpoint.pt if present; returns the step to continue from (0 without one)."""
    path = out / "checkpoint.pt"
    if not path.is_file():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["rng"]
    log(f"resumed at step {state['step']}")
    return state["step"]


def save_state(out: Path, model, optimizer, rng, step: int, cfg):
    path = out / "checkpoint.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "config": asdict(cfg), "rng": rng.bit_generator.state}, tmp)
    tmp.replace(path)  # a stop mid-write never leaves a broken checkpoint
    torch.save(model.state_dict(), out / "model.pt")


def run(model, optimizer, rng, cfg, out: Path, step_fn, set_lr, resume: bool = False, log=print):
    """Call `step_fn() -> (loss, iou)` until cfg.steps, cfg.stop_step or cfg.max_minutes.

    set_lr(step) sets the optimiser's learning rates for that step and returns the one to log."""
    out.mkdir(parents=True, exist_ok=True)
    step = resume_state(out, model, optimizer, rng, log) if resume else 0
    start = last_save = time.time()
    with open(out / "log.jsonl", "a") as logf:
        while step < cfg.steps:
            lr = set_lr(step)
            t0 = time.time()
            loss, iou = step_fn()
            step += 1
            record = {"step": step, "loss": round(loss, 5), "iou": round(iou, 4), "lr": lr,
                      "sec": round(time.time() - t0, 2)}
            logf.write(json.dumps(record) + "\n")
            logf.flush()
            if step % 10 == 0 or step == 1:
                log(" ".join(f"{k}={v}" for k, v in record.items()))
            timed_out = cfg.max_minutes and (time.time() - start) / 60 >= cfg.max_minutes
            stop = timed_out or step == cfg.stop_step
            if step == cfg.steps or stop or time.time() - last_save > 60 * cfg.checkpoint_minutes:
                save_state(out, model, optimizer, rng, step, cfg)
                last_save = time.time()
            if stop:
                log(f"stopping at step {step} ({'max_minutes' if timed_out else 'stop_step'})")
                break
    return model  # out/model.pt was written with the last checkpoint
