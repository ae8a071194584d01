"""Write the bundled weights (and check them): the model's full state dict, official key prefixes.

    python -m hrsam_model.training.export --model-state runs/clicks/model.pt \
        --out hrsam_model/weights/hrsam_tiny.safetensors [--eval runs/eval.json --max-instances 40]
    python -m hrsam_model.training.export --average A.safetensors B.safetensors --out F.safetensors

--average writes the mean of the weights of several files of the same model (a "model soup"; it
works for runs that continue one another, whose weights lie in one basin).

Floats are stored as fp16 (the model computes in fp32/bf16 after loading). The file is read back
through `hrsam_model.load_checkpoint` before the command reports success. With --eval the
validation splits are run through the standard click protocol (`hrsam_model.evaluation`) and the
summary is written as JSON for the model card.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def average_weights(paths, model_name: str = "hrsam_tiny", overrides: dict | None = None) -> dict:
    """The element-wise mean (fp32) of the float weights of checkpoint files of one model."""
    from hrsam_model import build_model

    if len(paths) < 2:
        raise ValueError("--average needs at least two weight files")
    states = [build_model(model_name, checkpoint=str(path), **(overrides or {})).state_dict() for path in paths]
    mean = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            mean[key] = sum(state[key].float() for state in states) / len(states)
        elif all(torch.equal(state[key], value) for state in states):
            mean[key] = value
        else:
            raise ValueError(f"{key} differs between the files and cannot be averaged")
    return mean


def export(model_state, out: Path, model_name: str = "hrsam_tiny", metadata: dict | None = None,
           overrides: dict | None = None):
    """Load a training state dict (a path, or the dict) into `model_name`, save fp16 safetensors,
    verify it reloads.

    `overrides` changes backbone fields (tests use a tiny configuration)."""
    from hrsam_model import build_model, load_checkpoint, save_checkpoint

    overrides = overrides or {}
    model = build_model(model_name, **overrides)
    state = model_state if isinstance(model_state, dict) else torch.load(model_state, map_location="cpu",
                                                                          weights_only=True)
    model.load_state_dict(state, strict=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, out, dtype=torch.float16, metadata={k: str(v) for k, v in (metadata or {}).items()})
    check = build_model(model_name, **overrides)
    load_checkpoint(check, out)
    for key, value in model.state_dict().items():
        stored = check.state_dict()[key]
        if value.is_floating_point() and not torch.allclose(value.half().float(), stored.float()):
            raise ValueError(f"{out}: {key} did not survive the round trip")
    return check


def evaluate_val(model, max_instances: int | None, num_clicks: int = 20, target_size: int = 1024, log=print):
    """Summary per validation dataset: mIoU@k, NoC@85/90, seconds per click."""
    from hrsam_model.evaluation import datasets
    from hrsam_model.evaluation.metrics import summarize
    from hrsam_model.evaluation.runner import evaluate

    report = {}
    for name in datasets.DATASETS:
        instances = datasets.load_instances(name, "val", max_instances=max_instances)
        t0 = time.time()
        results = evaluate(model, instances, num_clicks=num_clicks, target_size=target_size)
        summary = summarize(results, max_clicks=num_clicks)
        report[name] = {"instances": len(instances), "seconds": round(time.time() - t0, 1),
                        **{k: v for k, v in vars(summary).items() if isinstance(v, (int, float, dict, list))}}
        log(f"{name}: {json.dumps(report[name])}")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hrsam_model.training.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-state", type=Path, help="a training run's model.pt")
    source.add_argument("--average", type=Path, nargs="+", metavar="WEIGHTS",
                        help="weight files of the same model to average")
    parser.add_argument("--out", type=Path, default=Path("hrsam_model/weights/hrsam_tiny.safetensors"))
    parser.add_argument("--model", default="hrsam_tiny")
    parser.add_argument("--eval", type=Path, default=None, help="write validation figures to this JSON file")
    parser.add_argument("--max-instances", type=int, default=None)
    parser.add_argument("--num-clicks", type=int, default=20)
    parser.add_argument("--target-size", type=int, default=1024)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    if args.average:
        state = average_weights(args.average, args.model)
        source = "mean of " + ", ".join(str(path) for path in args.average)
    else:
        state, source = args.model_state, str(args.model_state)
    model = export(state, args.out, args.model, {"source": source})
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB)")
    if args.eval is not None:
        report = evaluate_val(model.eval(), args.max_instances, args.num_clicks, args.target_size)
        args.eval.parent.mkdir(parents=True, exist_ok=True)
        args.eval.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
