"""Click-protocol accuracy on the three validation splits, and 1024 vs 2048 px on small structures.

    python benchmarks/accuracy.py                                   # bundled hrsam_tiny + baselines
    python benchmarks/accuracy.py --untrained --max-instances 5     # smoke run, random weights
    python benchmarks/accuracy.py --model none --baselines grabcut,randomwalker

Table 1 (per dataset): rows = methods (the model at each --sizes, then the baselines), columns =
NoC@85, NoC@90, NoF@85, mIoU@1/3/5/10, mIoU@1 over the instances that touch another object (their
count in brackets; `hrsam_model.evaluation.touching`), "ignored", median seconds per click (decoder
only; wall time), median encoder seconds per distinct image. Table 2: the same instances restricted
to small structures, whose mask bounding box's long side is at most 1/16 of the image's long side (at
1024 px input such an object spans at most 4 cells of the 16 px token grid), model at 1024 vs 2048
px. With --by-kind, Table 3: every method on each kind of target of a dataset that has several (the
brain's structures).
Every method sees the same instances and the same deterministic click simulator. `--split train`
runs the same tables on the training splits: how well the model fits what it was trained on.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import data_root, machine_description  # noqa: E402
from hrsam_model.evaluation import datasets  # noqa: E402
from hrsam_model.evaluation.command import make_baseline  # noqa: E402
from hrsam_model.evaluation.metrics import summarize  # noqa: E402
from hrsam_model.evaluation.report import format_table, one_pixel_note  # noqa: E402
from hrsam_model.evaluation.runner import evaluate  # noqa: E402
from napari_hrsam.engine.click_method import model_method  # noqa: E402
from napari_hrsam.engine.mask_policy import MaskPolicy  # noqa: E402
from napari_hrsam.engine.model_choice import ModelChoice  # noqa: E402

SMALL_FRACTION = 1 / 16


def is_small(instance) -> bool:
    rows, cols = instance.mask.any(axis=1).nonzero()[0], instance.mask.any(axis=0).nonzero()[0]
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    return extent <= SMALL_FRACTION * max(instance.image.shape[:2])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="hrsam_tiny", help="model name or 'none'")
    parser.add_argument("--checkpoint", help="weights for --model (default: bundled)")
    parser.add_argument("--untrained", action="store_true", help="random weights (smoke run)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048], help="model input sizes")
    parser.add_argument("--datasets", default="nuclei,ecoli,brain")
    parser.add_argument("--baselines", default="grabcut,randomwalker,litemedsam")
    parser.add_argument("--split", default="val", choices=datasets.SPLITS,
                        help="'train' measures how well the model fits what it was trained on")
    parser.add_argument("--max-instances", type=int, help="deterministic subset per dataset")
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--device", default=None)
    parser.add_argument("--all-pieces", action="store_true",
                        help="score every piece of the model's mask, not only the pieces holding a positive click")
    parser.add_argument("--no-click-hold", action="store_true",
                        help="leave the clicks the mask contradicts as the model drew them")
    parser.add_argument("--by-kind", action="store_true",
                        help="also a table per kind of target (the brain's structures)")
    parser.add_argument("--zoom-in", action="store_true", help="the widget's zoom-in (from the first click)")
    return parser.parse_args(argv)


def indices_by_kind(instances) -> dict[str, list[int]]:
    """Instance indices grouped by `datasets.target_kind`, in order of first appearance."""
    groups = defaultdict(list)
    for i, instance in enumerate(instances):
        groups[datasets.target_kind(instance)].append(i)
    return dict(groups)


def main(argv=None):
    args = parse_args(argv)
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    methods, notes = [], []
    if args.model.lower() != "none":
        for size in args.sizes:
            choice = ModelChoice(args.model, args.checkpoint or "", args.device or "auto", size, args.untrained)
            policy = MaskPolicy(keep_clicked_pieces=not args.all_pieces, hold_clicks=not args.no_click_hold)
            label, method = model_method(choice, zoom_in=args.zoom_in, mask_policy=policy)
            weights = choice.describe()
            methods.append((label, method, True))
        notes.append(f"model weights: {weights}" + ("  (RANDOM: numbers measure nothing)" if args.untrained else ""))
    for name in filter(None, (n.strip() for n in args.baselines.split(","))):
        try:
            methods.append((name, make_baseline(name, data_root()), False))
        except (ImportError, FileNotFoundError) as error:
            notes.append(f"skipped baseline {name}: {error}")

    print(f"machine: {machine_description()}")
    print(f"protocol: {args.clicks} clicks, {args.split} splits, max instances {args.max_instances or 'all'}")
    for note in notes:
        print(note)
    small_rows, kind_tables = {}, []
    for name in filter(None, (n.strip() for n in args.datasets.split(","))):
        instances = datasets.load_instances(name, args.split, data_root(), max_instances=args.max_instances)
        small = [i for i, instance in enumerate(instances) if is_small(instance)]
        kinds = indices_by_kind(instances) if args.by_kind else {}
        kind_rows = {kind: [] for kind in kinds}
        rows, small_rows[name] = [], []
        for label, method, is_model in methods:
            log(f"{name}: {label} on {len(instances)} instances")
            results = evaluate(method, instances, num_clicks=args.clicks)
            rows.append((label, summarize(results, args.clicks)))
            if is_model and small:
                small_rows[name].append((label, summarize([results[i] for i in small], args.clicks)))
            for kind, picked in kind_rows.items():
                picked.append((label, summarize([results[i] for i in kinds[kind]], args.clicks)))
        print()
        print(format_table(rows, title=f"{name} ({args.split}), {len(instances)} instances",
                           note=one_pixel_note([instance.mask for instance in instances])))
        small_note = one_pixel_note([instances[i].mask for i in small]) if small else None
        small_rows[name] = (len(small), small_rows[name], small_note)
        if len(kinds) > 1:
            kind_tables += [(f"{name} ({args.split}), {kind}, {len(kinds[kind])} instances", kind_rows[kind],
                             one_pixel_note([instances[i].mask for i in kinds[kind]])) for kind in kinds]
    print()
    print(f"Small structures (mask bounding box <= 1/{round(1 / SMALL_FRACTION)} of the image's long side)")
    for name, (count, rows, note) in small_rows.items():
        print()
        if rows:
            print(format_table(rows, title=f"{name} ({args.split}), {count} small instances", note=note))
        else:
            print(f"{name} ({args.split}): {count} small instances" + ("" if count else ": none"))
    if kind_tables:
        print()
        print("Per kind of target")
    for title, rows, note in kind_tables:
        print()
        print(format_table(rows, title=title, note=note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
