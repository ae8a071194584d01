"""``hrsam eval``: the standard click protocol on named dataset splits or a folder, measured on
the interactive engine the widget runs (``napari_hrsam.engine.click_method``), beside baselines.
``python -m hrsam_model.evaluation`` is the same command."""
from __future__ import annotations

import sys
from pathlib import Path

from .model import RANDOM_WARNING, add_dask_options, mask_policy, model_choice

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
    source.add_argument("--data", action="append", metavar="DIR",
                        help="folder of image_ID.tif + mask_ID.tif pairs or .npz files (repeat it, or "
                             "give a glob of folders, for several: one table each)")
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
    add_dask_options(parser)
    parser.add_argument("--instances-per-task", type=int, metavar="K",
                        help="instances per unit of work (default: 8 with Dask; in this process "
                             "a dataset's instances are one unit unless --out asks for resumable parts)")
    parser.add_argument("--out", metavar="DIR",
                        help="write each unit's results (units/*.json) and the tables (eval.txt) "
                             "here; a rerun with the same model and settings reuses finished units")
    parser.set_defaults(run=run_eval)


def run_eval(args) -> int:
    from functools import partial

    from tqdm import tqdm

    from hrsam_model.evaluation.command import make_baseline

    from ..engine.autosave import replace_file
    from ..engine.click_method import method_label
    from ..scale import eval_units
    from ..scale.executor import default_workers, run_units
    from ..scale.worker_model import ModelPlugin

    names = [n.strip() for item in args.dataset or [] for n in item.split(",") if n.strip()]
    specs = ([eval_units.GroupSpec(data=folder, max_instances=args.max_instances) for folder in data_folders(args.data)]
             if args.data else
             [eval_units.GroupSpec(name, args.split, None, args.data_root, args.max_instances) for name in names])
    if args.clicks < 1:
        raise ValueError(f"--clicks must be >= 1, got {args.clicks}")
    methods, labels, notes = [], {}, []
    choice = None
    if not args.no_model:
        choice = model_choice(args, untrained=args.untrained)
        choice.check()
        if choice.weights()[0] == "random" and not args.untrained:
            print(RANDOM_WARNING, file=sys.stderr)
        methods.append(eval_units.MODEL)
        labels[eval_units.MODEL] = method_label(choice, args.zoom_in, mask_policy(args))
        notes.append(f"{labels[eval_units.MODEL]}: {choice.describe()}, device {choice.device}, through the session")
        if choice.weights()[0] == "random":
            notes.append("WARNING: random weights: the model's numbers measure nothing")
    for name in (n.strip() for n in args.baselines.split(",") if n.strip()):
        try:
            make_baseline(name, args.data_root)  # a missing optional baseline is a note, not a failure
        except (ImportError, FileNotFoundError) as error:
            notes.append(f"skipped baseline {name}: {error}")
            continue
        methods.append(name)
    if not methods:
        raise ValueError("nothing to evaluate: give --model and/or --baselines")
    loaded = {spec: spec.load() for spec in specs}  # to plan the units; reused in this process
    serial = args.workers == 0 and args.scheduler is None
    per_task = args.instances_per_task
    if per_task is None:
        per_task = 0 if serial and args.out is None else eval_units.INSTANCES_PER_TASK
    units = eval_units.plan_units({spec: len(items) for spec, items in loaded.items()}, methods, per_task,
                                  num_clicks=args.clicks, zoom_in=args.zoom_in,
                                  keep_clicked_pieces=not args.all_pieces, hold_clicks=not args.no_click_hold,
                                  out_dir=args.out)
    local = None
    if serial:
        local = ModelPlugin(choice, threads=default_workers())
        local.setup()
    bar = tqdm(total=sum(u.stop - u.start for u in units), unit="instance", file=sys.stderr, disable=None)
    summaries = run_units(partial(eval_units.eval_unit, instances=loaded) if serial else eval_units.eval_unit,
                          units, choice, workers=args.workers, scheduler=args.scheduler, local=local,
                          progress=lambda done, total, summary: bar.update(summary["unit"].stop - summary["unit"].start),
                          log=lambda text: print(text, file=sys.stderr))
    bar.close()
    failed = [s for s in summaries if s["error"]]
    bad_groups = {s["unit"].group for s in failed}
    text = eval_units.tables([s for s in summaries if s["unit"].group not in bad_groups], labels, notes)
    resumed = sum(s["resumed"] for s in summaries)
    if resumed:
        print(f"{resumed} of {len(units)} unit(s) read from {args.out} (already done)", file=sys.stderr)
    print(text)
    if args.out is not None:
        replace_file(Path(args.out) / "eval.txt", lambda tmp: Path(tmp).write_text(text + "\n"))
    for summary in failed:
        unit = summary["unit"]
        print(f"FAILED {unit.group.title} {unit.method} instances {unit.start}-{unit.stop}: {summary['error']}",
              file=sys.stderr)
    return 1 if failed else 0


def data_folders(items) -> list[str]:
    """The folders ``--data`` names: as given, or the folders a glob matches (FileNotFoundError
    for a glob that matches none)."""
    import glob

    from ..io.inputs import is_glob

    folders = []
    for item in items:
        if not is_glob(item):
            folders.append(str(item))
            continue
        matches = sorted(p for p in glob.glob(str(item)) if Path(p).is_dir())
        if not matches:
            raise FileNotFoundError(f"No folders match '{item}'")
        folders += matches
    return folders
