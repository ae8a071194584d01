"""``hrsam segment --auto`` over many inputs (files, folders, globs) as Dask tasks
(``napari_hrsam.scale``): ``--workers N`` a LocalCluster, ``--scheduler ADDRESS`` a running
cluster, ``--workers 0`` (the default) this process."""
from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from ..io.inputs import images_in, is_glob
from ..scale.batch import AutoUnit, segment_unit, unit_inputs
from ..scale.executor import run_units
from .model import model_choice


def is_batch(items) -> bool:
    """Several inputs, a glob, or a folder holding image files (not a DICOM folder)."""
    if len(items) > 1 or is_glob(items[0]):
        return True
    path = Path(items[0])
    return path.is_dir() and bool(images_in(path))


def run_batch(args) -> int:
    if not args.auto:
        raise ValueError("several images are segmented with --auto (every object); one image takes --point/--box")
    if args.point or args.propagate or args.box or args.range or args.embeddings:
        raise ValueError("with many inputs, --auto takes --density, --out, --workers, --scheduler and the model options")
    out_dir = Path(args.out)
    if out_dir.suffix:
        raise ValueError(f"with many inputs --out is a folder, got {args.out!r}")
    images = unit_inputs(args.image)
    units = [AutoUnit(image, str(out_dir), args.density, not args.all_pieces, not args.no_click_hold)
             for image in images]
    bar = tqdm(total=len(units), unit="image", file=sys.stderr, disable=None)

    def progress(done, total, summary):
        bar.update(1)

    summaries = run_units(segment_unit, units, model_choice(args), workers=args.workers, scheduler=args.scheduler,
                          progress=progress, log=lambda text: print(text, file=sys.stderr))
    bar.close()
    failed = [s for s in summaries if s["error"]]
    skipped = sum(s["skipped"] for s in summaries)
    objects = sum(s["objects"] for s in summaries if not s["error"])
    print(f"{len(summaries) - len(failed)} of {len(summaries)} images segmented ({skipped} already done), "
          f"{objects} objects, labels in {out_dir}")
    for summary in failed:
        print(f"FAILED {summary['image']}: {summary['error']}", file=sys.stderr)
    return 1 if failed else 0
