"""Clicks, scribbles or a lasso first: interactions to reach IoU 0.85 / 0.90, per validation set.

    python benchmarks/strokes.py --datasets nuclei,ecoli,brain --max-instances 20
    python benchmarks/strokes.py --checkpoint runs/ft27a/model.safetensors

Every interaction goes through ``Session`` as the widget sends it (zoom-in, clicks held):
- clicks: the standard click simulator (`hrsam_model.evaluation.clicker`), ``Session.add_point``;
- scribbles: each interaction a simulated stroke along the larger error region
  (`hrsam_model.evaluation.scribbler.scribble`), ``Session.add_scribble``; a click where the
  error is too small for a stroke;
- lasso, then clicks: a loose outline around the object first (``Session.set_lasso``: its deepest
  point and the outline as the mask prompt; "lasso(box)": a box around it instead), then clicks.
NoI@85 / NoI@90: interactions to reach that IoU (the cap, `--interactions`, when never reached);
mIoU@k: mean IoU after k interactions. A run stops once IoU >= 0.90 and k >= 5 (later
interactions change none of the columns but mIoU@5 carries its last value).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import data_root, machine_description, print_table  # noqa: E402
from hrsam_model.evaluation import datasets  # noqa: E402
from hrsam_model.evaluation.clicker import Clicker  # noqa: E402
from hrsam_model.evaluation.metrics import iou  # noqa: E402
from hrsam_model.evaluation.scribbler import lasso, scribble  # noqa: E402
from napari_hrsam.engine.embedding_cache import EmbeddingCache  # noqa: E402
from napari_hrsam.engine.model_choice import ModelChoice  # noqa: E402
from napari_hrsam.engine.session import Session  # noqa: E402

MODES = ("clicks", "scribbles", "lasso+clicks", "lasso(box)+clicks")


def run_instance(predictor, cache, data_key, instance, mode: str, cap: int) -> list[float]:
    """IoU after each interaction (padded with the last to ``cap``)."""
    session = Session(instance.image, predictor, cache=cache, data_key=data_key, zoom_in=True)
    clicker = Clicker(instance.mask, seed=42)
    shown, ious = None, []
    for step in range(cap):
        stroke = scribble(instance.mask, shown) if mode == "scribbles" else None
        if mode.startswith("lasso") and step == 0:
            as_box = mode == "lasso(box)+clicks"
            try:
                session.set_lasso(lasso(instance.mask), as_box=as_box)
            except ValueError:  # simplification made the outline cross itself
                session.set_lasso(lasso(instance.mask, hull=True), as_box=as_box)
        elif stroke is not None:
            session.add_scribble(stroke[0], positive=stroke[1])
        else:
            click = clicker.click(shown)
            if click is None:
                break
            session.add_point((click.row, click.col), positive=click.positive)
        preview = session.preview
        shown = np.zeros(instance.mask.shape, bool) if preview is None else preview
        if mode.startswith("lasso") and step == 0:
            clicker = Clicker(instance.mask, seed=42)  # its clicks start from the lasso's mask
        ious.append(iou(shown, instance.mask))
        if ious[-1] >= 0.90 and len(ious) >= 5:
            break
    last = ious[-1] if ious else 0.0
    return ious + [last] * (cap - len(ious))


def summary(curves: np.ndarray, cap: int) -> list[str]:
    def noi(threshold):
        reached = curves >= threshold
        return np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, cap).mean()

    return [f"{noi(0.85):.2f}", f"{noi(0.90):.2f}"] + [f"{curves[:, k - 1].mean():.3f}" for k in (1, 3, 5)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="hrsam_tiny")
    parser.add_argument("--checkpoint", default="", help="weights for --model (default: bundled)")
    parser.add_argument("--datasets", default="nuclei,ecoli,brain")
    parser.add_argument("--split", default="val", choices=datasets.SPLITS)
    parser.add_argument("--max-instances", type=int, default=20, help="deterministic subset per set")
    parser.add_argument("--interactions", type=int, default=20)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args(argv)
    choice = ModelChoice(args.model, args.checkpoint, "auto", 1024, False)
    predictor = choice.predictor()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown modes {unknown}; choose from {MODES}")
    print(f"machine: {machine_description()}")
    print(f"weights: {choice.describe()}; zoom-in, clicks held; {args.split} splits, "
          f"at most {args.interactions} interactions")
    rows = []
    for name in filter(None, (n.strip() for n in args.datasets.split(","))):
        instances = datasets.load_instances(name, args.split, data_root(), max_instances=args.max_instances)
        cache, keys = EmbeddingCache(1 << 30), {}
        for mode in modes:
            curves = []
            for instance in instances:
                data_key = keys.setdefault(id(instance.image), object())
                curves.append(run_instance(predictor, cache, data_key, instance, mode, args.interactions))
            rows.append([name, len(instances), mode] + summary(np.array(curves), args.interactions))
            print(f"{name} {mode}: done", file=sys.stderr, flush=True)
    print_table(["set", "instances", "interactions", "NoI@85", "NoI@90", "mIoU@1", "mIoU@3", "mIoU@5"], rows)


if __name__ == "__main__":
    main()
