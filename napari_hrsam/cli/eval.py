"""``hrsam eval``: the click protocol of ``hrsam_model.evaluation`` from the shell.

A thin front end: the options become ``hrsam_model.evaluation.run_evaluation(...)``, which
loads the data, runs the model and the baselines and formats the tables.
"""
from __future__ import annotations

import sys

from .model import RANDOM_WARNING

BASELINES = ("grabcut", "randomwalker", "litemedsam")


def add_eval(commands, parents) -> None:
    parser = commands.add_parser(
        "eval", parents=parents, help="run the standard click protocol and print NoC/mIoU",
        description="Simulated clicks (farthest point of the larger error region, previous "
                    "logits fed back) on named dataset splits or on a folder of image_ID.tif + "
                    "mask_ID.tif pairs; prints NoC@85/90, NoF@85, mIoU@1/3/5/10, mIoU@1 on "
                    "objects touching another and seconds per click, one table per dataset.")
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
    # the same option as hrsam_model.evaluation.command.add_zoom_option (not imported: torch)
    parser.add_argument("--zoom-in", nargs="?", const="first", choices=("first", "second"),
                        help="segment in a crop around the object: from the first click on, as "
                             "the widget does (default), or from the 'second' (RITM's option)")
    parser.set_defaults(run=run_eval)


def run_eval(args) -> int:
    from hrsam_model import bundled_weights_path
    from hrsam_model.evaluation import run_evaluation

    names = [n.strip() for item in args.dataset or [] for n in item.split(",") if n.strip()]
    baselines = [n.strip() for n in args.baselines.split(",") if n.strip()]
    untrained = False
    if not args.no_model and not args.checkpoint:
        bundled = bundled_weights_path(args.model)
        if bundled is not None and not bundled.is_file():
            print(RANDOM_WARNING, file=sys.stderr)
            untrained = True
    text = run_evaluation(
        model=None if args.no_model else args.model, datasets=names, split=args.split,
        data=args.data, data_root=args.data_root, target_size=args.target_size or 1024,
        baselines=baselines, max_instances=args.max_instances, num_clicks=args.clicks,
        checkpoint=args.checkpoint, untrained=untrained, all_pieces=args.all_pieces,
        zoom_in=args.zoom_in,
        device=None if args.device == "auto" else args.device,
        log=lambda line: print(line, file=sys.stderr, flush=True))
    print(text)
    return 0
