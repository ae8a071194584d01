"""How well the decoder's IoU estimate ranks the masks the engine shows, per validation set.

    python benchmarks/iou_head.py --datasets nuclei,ecoli,bbbc007 --max-instances 30
    python benchmarks/iou_head.py --checkpoint runs/ft27a/model.safetensors   # a candidate

The click protocol (`hrsam_model.evaluation`) runs the engine as the widget does (zoom-in, clicks
held) for `--clicks` clicks per instance; after each click the estimate the session reports is
paired with the IoU of the shown mask against the ground truth. Per set: Spearman's rank
correlation over all (instance, click) pairs, the mean absolute error of the estimate, and the mean
estimate against the mean true IoU (an estimate that ranks well can still be biased). Segment
everything keeps masks by this estimate (`AutoSettings.min_iou`), so a low correlation means it
cannot tell good masks from bad ones.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import data_root, machine_description, print_table  # noqa: E402
from hrsam_model.evaluation import datasets  # noqa: E402
from hrsam_model.evaluation.metrics import iou  # noqa: E402
from hrsam_model.evaluation.runner import evaluate  # noqa: E402
from napari_hrsam.engine.click_method import model_method  # noqa: E402
from napari_hrsam.engine.model_choice import ModelChoice  # noqa: E402


class RecordingMethod:
    """Passes every call to `method` and records (estimated IoU, mask) of each answer."""

    def __init__(self, method):
        self.method = method
        self.answers = []

    def __getattr__(self, name):
        return getattr(self.method, name)

    def predict(self, **kwargs):
        answer = self.method.predict(**kwargs)
        self.answers.append((answer.iou, answer.mask))
        return answer


def measure(method, instances, clicks: int) -> dict:
    estimates, truths = [], []
    for instance in instances:
        recorder = RecordingMethod(method)
        evaluate(recorder, [instance], num_clicks=clicks)
        for estimate, mask in recorder.answers:
            if estimate is not None:
                estimates.append(float(estimate))
                truths.append(iou(np.asarray(mask, bool), instance.mask))
    estimates, truths = np.array(estimates), np.array(truths)
    return {"pairs": len(truths), "spearman": spearmanr(estimates, truths).correlation,
            "mae": float(np.abs(estimates - truths).mean()), "mean estimate": float(estimates.mean()),
            "mean true IoU": float(truths.mean())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="hrsam_tiny")
    parser.add_argument("--checkpoint", default="", help="weights for --model (default: bundled)")
    parser.add_argument("--datasets", default=",".join(datasets.ALL_DATASETS))
    parser.add_argument("--split", default="val", choices=datasets.SPLITS)
    parser.add_argument("--max-instances", type=int, default=30, help="deterministic subset per set")
    parser.add_argument("--clicks", type=int, default=3)
    args = parser.parse_args(argv)
    choice = ModelChoice(args.model, args.checkpoint, "auto", 1024, False)
    label, method = model_method(choice)
    print(f"machine: {machine_description()}")
    print(f"weights: {choice.describe()}; {label}; {args.clicks} clicks per instance, {args.split} splits")
    rows = []
    for name in filter(None, (n.strip() for n in args.datasets.split(","))):
        instances = datasets.load_instances(name, args.split, data_root(), max_instances=args.max_instances)
        result = measure(method, instances, args.clicks)
        rows.append([name, len(instances), result["pairs"], f"{result['spearman']:+.2f}", f"{result['mae']:.3f}",
                     f"{result['mean estimate']:.3f}", f"{result['mean true IoU']:.3f}"])
        print(f"{name}: done", file=sys.stderr, flush=True)
    print_table(["set", "instances", "pairs", "Spearman", "MAE", "mean estimate", "mean true IoU"], rows)


if __name__ == "__main__":
    main()
