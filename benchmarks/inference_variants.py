"""Does the inference side hold a validation set back? The click protocol under other settings.

    python benchmarks/inference_variants.py --datasets brain          # shipped hrsam_tiny, ~9 min
    python benchmarks/inference_variants.py --untrained --max-instances 2 --clicks 2   # smoke run

The brain set's deep grey structures stop near IoU 0.7-0.8 (MODEL_CARD, "What holds the deep grey
structures back"). Before blaming the model's fit, this rules out the cheap fixes that need no
training. Every row is the napari widget's path (zoom-in from the first click, the shown mask
holding only the clicked pieces, every click held by a 1 px disc) with one setting changed:

- the zoom window's minimum size (the widget's 200 px holds a whole brain slice) and expansion;
- the contrast window the image is shown in (napari's contrast limits, which `set_image` takes;
  the T1 template is uint8 and is otherwise fed as it is);
- how the clicks that the shown mask contradicts are held: not at all, or with a disc of r pixels
  set to the click's side instead of the widget's 1 px (`hrsam_model.postprocess.hold_clicks`).

Columns per dataset: NoC@85, mIoU@3/5/10, and the share of clicks the last mask contradicts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import data_root, machine_description, print_table  # noqa: E402
from hrsam_model.evaluation import datasets  # noqa: E402
from hrsam_model.evaluation.command import load_model_predictor  # noqa: E402
from hrsam_model.evaluation.metrics import summarize  # noqa: E402
from hrsam_model.evaluation.runner import evaluate  # noqa: E402
from hrsam_model.postprocess import hold_clicks  # noqa: E402

WIDGET_MIN_CROP, WIDGET_EXPANSION = 200, 1.4


class ContrastWindow:
    """A predictor shown every image in fixed contrast limits (a napari layer's, in the plugin)."""

    def __init__(self, predictor, limits):
        self.predictor, self.limits = predictor, tuple(limits)

    def set_image(self, image):
        return self.predictor.set_image(image, contrast_limits=self.limits)

    def predict(self, **prompts):
        return self.predictor.predict(**prompts)


class HeldClicks:
    """A predictor whose clicks are held with discs of `radius` px (0: not held at all) instead of
    the widget's 1 px (`hrsam_model.postprocess.hold_clicks`). The logits fed back stay the model's."""

    def __init__(self, predictor, radius: int):
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        predictor.predictor.clicks_hold = False  # the Predictor inside the zoom-in
        self.predictor, self.radius = predictor, int(radius)

    def set_image(self, image):
        return self.predictor.set_image(image)

    def predict(self, points, labels, **prompts):
        result = self.predictor.predict(points=points, labels=labels, **prompts)
        if self.radius:
            result.mask = hold_clicks(result.mask, points, labels, self.radius)
        return result


def variants(args):
    """(label, predictor factory) for every row, the widget's own settings first."""
    def zoomed(min_crop=WIDGET_MIN_CROP, expansion=WIDGET_EXPANSION):
        def make():
            predictor = load_model_predictor(args.model, args.size, args.checkpoint, args.untrained,
                                             args.device, zoom_in="first")[1]
            predictor.min_crop, predictor.expansion = min_crop, expansion
            return predictor
        return make

    rows = [(f"widget (window >= {WIDGET_MIN_CROP} px, x{WIDGET_EXPANSION}, clicks held 1 px)", zoomed())]
    rows += [(f"window >= {size} px", zoomed(min_crop=size)) for size in args.min_crops]
    rows += [(f"window x{factor}", zoomed(expansion=factor)) for factor in args.expansions]
    rows += [(f"contrast {low:g}-{high:g}", lambda low=low, high=high: ContrastWindow(zoomed()(), (low, high)))
             for low, high in args.contrast]
    rows += [(f"clicks held, r = {radius} px" if radius else "clicks not held",
              lambda radius=radius: HeldClicks(zoomed()(), radius)) for radius in args.disc_radii]
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
    parser.add_argument("--min-crops", type=int, nargs="*", default=[128, 64])
    parser.add_argument("--expansions", type=float, nargs="*", default=[2.0])
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
