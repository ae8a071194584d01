"""``hrsam eval``: the click protocol of ``hrsam_model.evaluation`` from the shell."""
from __future__ import annotations

import sys

from ._cli_model import load_model
from ._cli_progress import TextProgress

BASELINES = ("grabcut", "random_walker")


def add_eval(commands, parents) -> None:
    parser = commands.add_parser(
        "eval", parents=parents, help="run the standard click protocol and print NoC/mIoU",
        description="Simulated clicks (farthest point of the larger error region, 20 clicks, "
                    "previous logits fed back) on a named dataset split or on a folder of "
                    "image_ID.tif + mask_ID.tif pairs; prints NoC@85/90, NoF@85, mIoU@k and "
                    "seconds per click.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", action="append", metavar="NAME",
                        help="nuclei, ecoli or brain (repeat for several)")
    source.add_argument("--data", metavar="DIR",
                        help="folder of image_ID.tif + mask_ID.tif pairs or .npz files")
    parser.add_argument("--split", default="val", choices=("train", "val"),
                        help="split of --dataset (default val: never seen in training)")
    parser.add_argument("--data-root", metavar="DIR",
                        help="where the downloaded datasets lie (default $HRSAM_DATA or "
                             "/work/data)")
    parser.add_argument("--max-instances", type=int, metavar="N",
                        help="a deterministic random subset of N instances per dataset")
    parser.add_argument("--clicks", type=int, default=20, help="clicks per instance (20)")
    parser.add_argument("--baseline", action="append", choices=BASELINES, default=[],
                        help="also run a classic baseline in the same harness (repeatable)")
    parser.set_defaults(run=run_eval)


def run_eval(args) -> int:
    from hrsam_model.evaluation import baselines, datasets
    from hrsam_model.evaluation.metrics import summarize
    from hrsam_model.evaluation.report import format_table
    from hrsam_model.evaluation.runner import evaluate

    if args.clicks < 1:
        raise ValueError(f"--clicks must be >= 1, got {args.clicks}")
    if args.data:
        groups = {args.data: datasets.load_folder(args.data)}
    else:
        groups = {name: datasets.load_instances(name, args.split, args.data_root,
                                                args.max_instances)
                  for name in args.dataset}
    if args.data and args.max_instances:
        groups = {k: datasets.subsample(v, args.max_instances) for k, v in groups.items()}
    args.target_size = args.target_size or 1024
    loaded = load_model(args)
    methods = [(f"{loaded.predictor.model.name}@{args.target_size}", loaded.predictor)]
    makers = {"grabcut": baselines.GrabCutPredictor,
              "random_walker": baselines.RandomWalkerPredictor}
    methods += [(name, makers[name]()) for name in args.baseline]
    print(f"model: {loaded.describe()}")
    if loaded.random:
        print("WARNING: random weights: these numbers measure nothing")
    for group, instances in groups.items():
        rows = []
        for name, method in methods:
            with TextProgress(len(instances), f"{group} / {name}", sys.stderr) as bar:
                results = evaluate(method, instances, num_clicks=args.clicks,
                                   progress=lambda done, total, _: bar.update(done, total))
            rows.append((name, summarize(results, max_clicks=args.clicks)))
        title = f"{group} ({args.split if not args.data else 'folder'}, {len(instances)} instances)"
        print(format_table(rows, title=title))
    return 0
