"""``hrsam segment --auto`` over many inputs (files, folders, globs) as Dask tasks
(``napari_hrsam.scale``): ``--workers N`` a LocalCluster, ``--scheduler ADDRESS`` a running
cluster, ``--workers 0`` (the default) this process."""
from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from ..io.inputs import images_in, is_glob
from ..scale.auto_parts import AutoPart, merge_unit, part_unit, plan
from ..scale.batch import AutoUnit, segment_unit, unit_inputs
from ..scale.executor import run_stages
from .model import model_choice
from .segment_all import split_depth


def is_batch(args) -> bool:
    """Several inputs, a glob, a folder holding image files (not a DICOM folder), or --auto on
    Dask workers."""
    items = args.image
    if len(items) > 1 or is_glob(items[0]) or (args.auto and (args.workers or args.scheduler)):
        return True
    path = Path(items[0])
    return path.is_dir() and bool(images_in(path))


def run_batch(args) -> int:
    if not args.auto:
        raise ValueError("several images are segmented with --auto (every object); one image takes --point/--box")
    if args.point or args.propagate or args.box or args.range or args.embeddings:
        raise ValueError("with many inputs or Dask, --auto takes --density, --out, --workers, --scheduler, "
                         "--slices-per-task, --tiles-per-task and the model options")
    out_dir = Path(args.out)
    if out_dir.suffix:
        raise ValueError(f"with many inputs or Dask, --out is a folder, got {args.out!r}")
    images = unit_inputs(args.image)
    units = [AutoUnit(image, str(out_dir), args.density, args.seeds, not args.all_pieces, not args.no_click_hold,
                      split_depth(args))
             for image in images]
    choice = model_choice(args)
    first, merges, failures = plan(units, choice.target_size, args.slices_per_task, args.tiles_per_task)
    bar = tqdm(total=len(first) + len(merges), unit="task", file=sys.stderr, disable=None)
    whole, parts = run_stages([(run_whole_or_part, first), (merge_unit, merges)], choice, workers=args.workers,
                              scheduler=args.scheduler, progress=lambda done, total, summary: bar.update(1),
                              log=lambda text: print(text, file=sys.stderr))
    bar.close()
    summaries = [s for s in whole if "output" in s] + parts
    failed = failures + [s for s in whole + parts if s["error"]]
    failed_images = {s["image"] for s in failed}
    done = [s for s in summaries if s["image"] not in failed_images]
    skipped = sum(s["skipped"] for s in done)
    objects = sum(s["objects"] for s in done)
    print(f"{len(done)} of {len(units)} images segmented ({skipped} already done), "
          f"{objects} objects, labels in {out_dir}")
    for summary in failed:
        where = f" ({summary['part']})" if summary.get("part") else ""
        print(f"FAILED {summary['image']}{where}: {summary['error']}", file=sys.stderr)
    return 1 if failed else 0


def run_whole_or_part(unit, plugin=None) -> dict:
    """A whole input (``segment_unit``) or a part of one (``auto_parts.part_unit``)."""
    return part_unit(unit, plugin) if isinstance(unit, AutoPart) else segment_unit(unit, plugin)
