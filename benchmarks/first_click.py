"""The first click with and without zoom-in's closer look, by object size, per validation set.

    python benchmarks/first_click.py --datasets nuclei,ecoli,brain,bbbc007,cells3d

Zoom-in decodes the first click on the whole slice, then again in a window around that mask; the
closer look can make a large object's mask worse. This prints mIoU@1 of both (through the Session,
as the widget runs it; clicks held) for objects in three size classes by the share of the image
they cover, so a rule for keeping the better of the two can be read off the validation sets.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import data_root, machine_description, print_table  # noqa: E402
from hrsam_model.evaluation import datasets  # noqa: E402
from hrsam_model.evaluation.runner import evaluate  # noqa: E402
from napari_hrsam.engine.click_method import model_method  # noqa: E402
from napari_hrsam.engine.model_choice import ModelChoice  # noqa: E402

SIZE_CLASSES = ((0.0, 0.005, "< 0.5% of the image"), (0.005, 0.05, "0.5-5%"), (0.05, 1.01, "> 5%"))


def size_class(instance) -> str:
    share = instance.mask.sum() / instance.mask.size
    return next(name for low, high, name in SIZE_CLASSES if low <= share < high)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--datasets", default="nuclei,ecoli,brain")
    parser.add_argument("--max-instances", type=int, default=None)
    args = parser.parse_args(argv)
    choice = ModelChoice("hrsam_tiny", args.checkpoint, "auto", 1024, False)
    methods = {zoom: model_method(choice, zoom_in=zoom)[1] for zoom in (False, True)}
    print(f"machine: {machine_description()}; weights: {choice.describe()}")
    rows = []
    for name in args.datasets.split(","):
        instances = datasets.load_instances(name, "val", data_root(), max_instances=args.max_instances)
        first = {zoom: [r.ious[0] for r in evaluate(method, instances, num_clicks=1)]
                 for zoom, method in methods.items()}
        groups = defaultdict(list)
        for i, instance in enumerate(instances):
            groups[size_class(instance)].append(i)
        for _, _, label in SIZE_CLASSES:
            members = groups.get(label, [])
            if not members:
                continue
            whole, zoomed = (float(np.mean([first[z][i] for i in members])) for z in (False, True))
            better = float(np.mean([max(first[False][i], first[True][i]) for i in members]))
            rows.append([name, label, len(members), f"{whole:.3f}", f"{zoomed:.3f}", f"{better:.3f}"])
        print(f"{name}: done", file=sys.stderr, flush=True)
    print_table(["set", "object covers", "n", "mIoU@1 whole slice", "mIoU@1 zoom-in", "best of the two"], rows)


if __name__ == "__main__":
    main()
