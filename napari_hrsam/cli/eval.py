"""``hrsam eval``: the standard click protocol on named dataset splits or a folder, measured on
the interactive engine the widget runs (``napari_hrsam.engine.click_method``), beside baselines.
``python -m hrsam_model.evaluation`` is the same command."""
from __future__ import annotations

import sys

from .model import RANDOM_WARNING, mask_policy, model_choice

BASELINES = ("grabcut", "randomwalker", "litemedsam")


def add_eval(commands, parents) -> None:
    parser = commands.add_parser(
        "eval", parents=parents, help="run the standard click protocol and print NoC/mIoU",
        description="Simulated clicks (farthest point of the larger error region, previous "
                    "logits fed back) on named dataset splits or on a folder of image_ID.tif + "
                    "mask_ID.tif pairs; prints NoC@85/90, NoF@85, mIoU@1/3/5/10, mIoU@1 on "
                    "objects touching another and seconds per click, one table per dataset. "
                    "Each click goes through a Session, as in the widget.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", action="append", metavar="NAME",
                        help="nuclei, ecoli or brain (repeat, or comma-separate, for several)")
    source.add_argument("--data", metavar="DIR",
                        help="folder of image_ID.tif + mask_ID.tif pairs or .npz files")
    parser.add_argument("--split", default="val", choices=("train", "val"),
                        help="split of --dataset (default val: never seen in training)")
    parser.add_argument("--data-root", metavar="DIR",
                        help="where the downloaded datasets lie (default $HRSAM_DATA; the "
                             "brain also reads the mricron-data package's atlas)")
    parser.add_argument("--max-instances", type=int, metavar="N",
                        help="a deterministic random subset of N instances per dataset")
    parser.add_argument("--clicks", type=int, default=20, help="clicks per instance (20)")
    parser.add_argument("--baselines", default="", metavar="NAMES",
                        help=f"also run, in the same harness: {', '.join(BASELINES)} "
                             "(comma-separated)")
    parser.add_argument("--no-model", action="store_true",
                        help="run only the --baselines")
    parser.add_argument("--untrained", action="store_true",
                        help="random weights (smoke tests only)")
    parser.add_argument("--zoom-in", action="store_true",
                        help="the widget's zoom-in: the first click finds the object on the "
                             "whole image, then every click is decoded in a window around it "
                             "(HRSAM's own protocol does not zoom)")
    parser.set_defaults(run=run_eval)


def run_eval(args) -> int:
    from hrsam_model.evaluation import run_evaluation

    names = [n.strip() for item in args.dataset or [] for n in item.split(",") if n.strip()]
    baselines = [n.strip() for n in args.baselines.split(",") if n.strip()]
    methods, notes = [], []
    if not args.no_model:
        from ..engine.click_method import model_method

        choice = model_choice(args, untrained=args.untrained)
        choice.check()
        if choice.weights()[0] == "random" and not args.untrained:
            print(RANDOM_WARNING, file=sys.stderr)
        label, method = model_method(choice, zoom_in=args.zoom_in, mask_policy=mask_policy(args))
        methods.append((label, method))
        notes.append(f"{label}: {choice.describe()}, device {method.device}, through the session")
        if choice.weights()[0] == "random":
            notes.append("WARNING: random weights: the model's numbers measure nothing")
    text = run_evaluation(
        methods, datasets=names, split=args.split, data=args.data, data_root=args.data_root,
        baselines=baselines, max_instances=args.max_instances, num_clicks=args.clicks,
        notes=notes, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(text)
    return 0
