"""Does the inference side hold a validation set back? The click protocol under other settings.

    python benchmarks/inference_variants.py --datasets brain          # shipped hrsam_tiny, ~9 min
    python benchmarks/inference_variants.py --untrained --max-instances 2 --clicks 2   # smoke run

The brain set's deep grey structures stop near IoU 0.7-0.8 (MODEL_CARD, "What holds the deep grey
structures back"). Before blaming the model's fit, this rules out the cheap fixes that need no
training. Every row is the napari widget's path (`SessionMethod`, the engine) (zoom-in from the first click, the shown mask
holding only the clicked pieces, every click held by a 1 px disc) with one setting changed:

- the contrast window the image is shown in (napari's contrast limits, which `set_image` takes;
  the T1 template is uint8 and is otherwise fed as it is);
- how the clicks that the shown mask contradicts are held: not at all, or with a disc of r pixels
  set to the click's side instead of the widget's 1 px (`napari_hrsam.engine.mask_policy.hold_clicks`).

Columns per dataset: NoC@85, mIoU@3/5/10, and the share of clicks the last mask contradicts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import data_root, machine_description, print_table  # noqa: E402
from hrsam_model.evaluation import datasets  # noqa: E402
from hrsam_model.evaluation.metrics import summarize  # noqa: E402
from hrsam_model.evaluation.runner import evaluate  # noqa: E402
from napari_hrsam.engine.click_method import model_method  # noqa: E402
from napari_hrsam.engine.mask_policy import MaskPolicy, hold_clicks  # noqa: E402
from napari_hrsam.engine.model_choice import ModelChoice  # noqa: E402


class HeldClicks:
    """The engine with clicks not held, then held here with discs of `radius` px (0: not at all)
    instead of the widget's 1 px. The logits fed back stay the model's."""

    def __init__(self, method, radius: int):
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        self.method, self.radius = method, int(radius)

    def set_image(self, image):
        return self.method.set_image(image)

    def predict(self, points, labels, **prompts):
        result = self.method.predict(points=points, labels=labels, **prompts)
        if not self.radius:
            return result
        return type(result)(hold_clicks(result.mask, points, labels, self.radius), result.logits, result.iou)


def variants(args):
    """(label, method factory) for every row, the widget's own settings first."""
    choice = ModelChoice(args.model, args.checkpoint or "", args.device, args.size, args.untrained)

    def widget(contrast=None, policy=MaskPolicy()):
        return lambda: model_method(choice, zoom_in=True, mask_policy=policy, contrast_limits=contrast)[1]

    no_hold = MaskPolicy(hold_clicks=False)
    rows = [("widget (zoom-in, clicks held 1 px)", widget())]
    rows += [(f"contrast {low:g}-{high:g}", widget(contrast=(low, high))) for low, high in args.contrast]
    rows += [(f"clicks held, r = {radius} px" if radius else "clicks not held",
              lambda radius=radius: HeldClicks(widget(policy=no_hold)(), radius)) for radius in args.disc_radii]
    return rows


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="hrsam_tiny")
    parser.add_argument("--checkpoint", default=None, help="weights file (default: the bundled ones)")
    parser.add_argument("--untrained", action="store_true", help="random weights (smoke runs only)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=1024, help="model input size")
    parser.add_argument("--datasets", default="brain")
    parser.add_argument("--split", default="val", choices=datasets.SPLITS)
    parser.add_argument("--max-instances", type=int, default=None)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--contrast", type=float, nargs="*", default=[20, 160, 40, 140],
                        help="pairs of contrast limits to show the images in, one row per pair "
                             "(default 20 160 40 140: T1 tissue windows; none: no such rows)")
    parser.add_argument("--disc-radii", type=int, nargs="*", default=[0, 2, 3],
                        help="radii of the discs that hold the clicks, instead of the widget's 1 px (0: none)")
    args = parser.parse_args(argv)
    if len(args.contrast) % 2:
        parser.error("--contrast takes pairs: LOW HIGH [LOW HIGH ...]")
    args.contrast = list(zip(args.contrast[::2], args.contrast[1::2]))
    return args


def main(argv=None):
    args = parse_args(argv)
    print(f"machine: {machine_description()}")
    print(f"protocol: {args.clicks} clicks, {args.split} splits, max instances {args.max_instances or 'all'}, "
          f"{args.model} at {args.size} px, {'random weights' if args.untrained else args.checkpoint or 'bundled weights'}")
    headers = ("variant", "NoC@85", "mIoU@3", "mIoU@5", "mIoU@10", "contradicted")
    for name in filter(None, (n.strip() for n in args.datasets.split(","))):
        instances = datasets.load_instances(name, args.split, data_root(), max_instances=args.max_instances)
        table = []
        for label, make in variants(args):
            print(f"{name}: {label}", file=sys.stderr, flush=True)
            s = summarize(evaluate(make(), instances, num_clicks=args.clicks), args.clicks)
            miou = [f"{s.miou[k]:.3f}" if k <= args.clicks else "" for k in (3, 5, 10)]
            table.append((label, f"{s.noc85:.2f}", *miou, f"{s.ignored:.3f}"))
        print()
        print(f"{name} ({args.split}), {len(instances)} instances")
        print_table(headers, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
