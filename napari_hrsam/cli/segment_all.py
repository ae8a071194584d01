"""``hrsam segment IMAGE --auto``: every object of an image (or of one slice of a volume) as an
instance label image, through ``Session.segment_all`` (the widget's engine)."""
from __future__ import annotations

import time

import numpy as np

from napari_hrsam import io

from .model import load_model, mask_policy


def run_auto(args, array, metadata, spatial, axes, position, where) -> int:
    from ..engine.automatic import AutoSettings
    from ..engine.session import Session

    if args.point:
        raise ValueError("--auto finds the objects itself: leave out --point (a --box restricts it)")
    if args.propagate:
        raise ValueError("--auto segments one slice; --propagate is for one clicked object")
    suffix = io.path_suffix(args.out)
    if suffix == ".png":
        raise ValueError("an instance label image needs more than 0/255: write .tif or "
                         + ", ".join(io.LABEL_SUFFIXES))
    from .segment import _output_kind, _write_mask  # the same output rules as one object

    kind = _output_kind(args.out, args.image, len(spatial))
    io.check_writable(args.out)
    settings = AutoSettings(points_per_side=args.density, seeds=args.seeds, split_depth=split_depth(args))
    rows, cols = spatial[axes[0]], spatial[axes[1]]
    box = None
    if args.box is not None:
        x0, y0, x1, y1 = args.box
        if not (x1 > x0 and y1 > y0 and x0 < cols and y0 < rows and x1 > 0 and y1 > 0):
            raise ValueError(f"--box {args.box} does not overlap the image (width {cols}, height {rows})")
        box = (y0, x0, y1, x1)
    slices = _slice_range(args, spatial)
    args.target_size = args.target_size or 1024
    loaded = load_model(args)
    session = Session(array, loaded.predictor, rgb=bool(metadata.get("rgb")), displayed_axes=axes,
                      position=position, labels=np.zeros(spatial, np.int32), mask_policy=mask_policy(args))
    start = time.perf_counter()
    ids = session.segment_all(settings, box=box, slices=slices,
                              axis=None if slices is None else args.slice[0], link=args.link)
    seconds = time.perf_counter() - start
    labels = np.asarray(session.labels)
    if labels.max() <= np.iinfo(np.uint16).max:
        labels = labels.astype(np.uint16)
    written = _write_mask(args.out, labels, metadata, kind, dtype=labels.dtype)
    print(f"{args.image}: {' x '.join(map(str, array.shape))} {array.dtype}{where}")
    print(f"model: {loaded.describe()}, loaded in {loaded.seconds:.1f} s")
    if loaded.random:
        print("WARNING: random weights: these objects are noise, not a segmentation")
    print(f"objects: {len(ids)}, found in {seconds:.1f} s ({args.seeds}, density {args.density}, "
          f"split depth {settings.split_depth})")
    print(f"wrote {', '.join(written)}")
    return 0


def split_depth(args) -> float:
    """--split-depth, checked (the engine's default when not given)."""
    from ..engine.automatic import AutoSettings

    if args.split_depth is None:
        return AutoSettings().split_depth
    if not 0 <= args.split_depth < 1:
        raise ValueError(f"--split-depth must lie in 0..1 (0: never cut), got {args.split_depth}")
    return args.split_depth


def _slice_range(args, spatial) -> range | None:
    """--range FIRST-LAST (inclusive) along the --slice axis, checked; None without it."""
    if args.range is None:
        if args.link:
            raise ValueError("--link joins objects across slices: give --range FIRST-LAST too")
        return None
    if len(spatial) < 3 or args.slice is None:
        raise ValueError("--range needs a volume and --slice AXIS:INDEX to name the axis")
    try:
        first, last = (int(v) for v in args.range.split("-"))
    except ValueError:
        raise ValueError(f"--range must be FIRST-LAST (two slice indices), got {args.range!r}") from None
    size = spatial[args.slice[0]]
    if not 0 <= first <= last < size:
        raise ValueError(f"--range {args.range} must lie in 0-{size - 1} along axis {args.slice[0]}")
    return range(first, last + 1)
