"""``hrsam segment``: one object from clicks and/or a box on an image or a volume slice."""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from napari_hrsam import io
from napari_hrsam.io import ngff

from .model import add_dask_options, load_model, mask_policy

MASK_2D_SUFFIXES = (".tif", ".tiff", ".png")
GEOMETRY_FORMATS = io.VOLUME_SUFFIXES + io.DICOM_SUFFIXES


def add_segment(commands, parents) -> None:
    segment = commands.add_parser(
        "segment", parents=parents, help="segment one object from clicks and/or a box",
        description="Segment one object in a 2-D image (tif, png, jpg) or on one slice of a "
                    "volume (NIfTI, NRRD, MetaImage, DICOM folder) and write the mask. "
                    "Coordinates are pixels: X = column, Y = row of the image or slice.")
    segment.add_argument("image", metavar="IMAGE", nargs="+",
                         help="image file or DICOM folder; with --auto also several files, folders of "
                              "images or globs (then --out is a folder, one label image per input)")
    segment.add_argument("--point", action="append", type=parse_point, default=[],
                         metavar="X,Y[,1|0]", help="a click: 1 (default) inside the object, "
                                                   "0 outside; repeat for more clicks")
    segment.add_argument("--box", type=parse_box, metavar="X0,Y0,X1,Y1",
                         help="a box around the object")
    segment.add_argument("--slice", type=parse_slice, metavar="AXIS:INDEX",
                         help="for volumes: the slice to prompt on, e.g. 0:40 = index 40 of "
                              "array axis 0 (z of a z,y,x volume); X and Y are then the "
                              "last and the other remaining axis")
    segment.add_argument("--propagate", action="store_true",
                         help="for volumes: carry the mask to neighbouring slices along "
                              "AXIS until the structure ends")
    segment.add_argument("--auto", action="store_true",
                         help="segment every object (no --point; a --box restricts it) and write "
                              "an instance label image: 0 = background, 1..N = objects")
    segment.add_argument("--density", type=int, default=32, metavar="N",
                         help="with --auto: N x N grid prompts, or at most N x N blob centres, per tile (default 32)")
    segment.add_argument("--seeds", choices=("blobs", "grid"), default="blobs",
                         help="with --auto: click the blob centres of each tile (default; crowded small "
                              "objects) or a regular grid (large or textured objects)")
    segment.add_argument("--split-depth", type=float, default=None, metavar="D",
                         help="with --auto: cut an object where its width pinches by more than D (0..1) "
                              "of its half-width: touching nuclei come out apart (default 0.15; 0: never)")
    segment.add_argument("--range", metavar="FIRST-LAST",
                         help="with --auto on a volume: every slice FIRST..LAST along the --slice axis")
    segment.add_argument("--link", action="store_true",
                         help="with --auto --range: objects overlapping across neighbouring slices "
                              "become one 3-D object")
    segment.add_argument("--embeddings", metavar="STORE.zarr",
                         help="reuse embeddings precomputed by `hrsam embed`")
    segment.add_argument("--out", required=True, metavar="MASK",
                         help="mask file: .tif/.png for 2-D images (png: 0/255), "
                              ".nii.gz/.nii/.nrrd/.mha/.mhd (volumes keep their geometry)")
    add_dask_options(segment, "with --auto, for many inputs or one large one: ")
    segment.add_argument("--slices-per-task", type=int, default=16, metavar="K",
                         help="with --auto over Dask or many inputs: a volume of more slices is split "
                              "into tasks of K slices, merged and linked at the end (default 16)")
    segment.add_argument("--tiles-per-task", type=int, default=16, metavar="K",
                         help="likewise, a 2-D image of more tiles into tasks of K tiles (default 16)")
    segment.set_defaults(run=run_segment)



# ---------------------------------------------------------------------------- parsing
def _numbers(text: str, counts: tuple[int, ...], what: str) -> list[float]:
    parts = text.replace(" ", "").split(",")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) not in counts or not np.isfinite(values).all():
        raise argparse.ArgumentTypeError(f"{what} must be {' or '.join(map(str, counts))} "
                                         f"comma-separated numbers, got {text!r}")
    return values


def parse_point(text: str) -> tuple[float, float, int]:
    values = _numbers(text, (2, 3), "a point")
    label = 1 if len(values) == 2 else values[2]
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(f"a point's label is 1 (inside) or 0 (outside), "
                                         f"got {text!r}")
    return values[0], values[1], int(label)


def parse_box(text: str) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = _numbers(text, (4,), "a box")
    if x1 <= x0 or y1 <= y0:
        raise argparse.ArgumentTypeError(f"a box is X0,Y0,X1,Y1 with X0 < X1 and Y0 < Y1, "
                                         f"got {text!r}")
    return x0, y0, x1, y1


def parse_slice(text: str) -> tuple[int, int]:
    try:
        axis, index = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a slice is AXIS:INDEX, e.g. 0:40, got {text!r}") \
            from None
    return axis, index


def parse_limits(text: str) -> tuple[float, float]:
    low, high = _numbers(text, (2,), "contrast limits")
    if high <= low:
        raise argparse.ArgumentTypeError(f"contrast limits need LO < HI, got {text!r}")
    return low, high


# ---------------------------------------------------------------------------- segment
def run_segment(args) -> int:
    from ..engine.session import Session
    from ..engine.slice_engine import NoContrastWarning
    from .batch import is_batch, run_batch

    if is_batch(args):
        return run_batch(args)
    args.image = args.image[0]
    array, metadata = io.read_image(args.image)
    rgb = bool(metadata.get("rgb"))
    spatial = array.shape[:-1] if rgb else array.shape
    axes, position, where = _choose_slice(spatial, args.slice, args.image)
    rows, cols = spatial[axes[0]], spatial[axes[1]]
    if args.auto:
        from .segment_all import run_auto

        return run_auto(args, array, metadata, spatial, axes, position, where)
    points, labels, box = _prompts_on_slice(args, rows, cols)
    kind = _output_kind(args.out, args.image, len(spatial))
    io.check_writable(args.out)  # before the model's work, not after it
    if args.propagate and len(spatial) == 2:
        raise ValueError("--propagate needs a volume; IMAGE is a 2-D image")

    store = None
    if args.embeddings:
        from ..engine.embedding_store import EmbeddingStore
        store = EmbeddingStore.open(args.embeddings)
        if store.find_source(array) is None:
            raise ValueError(f"'{args.embeddings}' was embedded from other image data than "
                             f"'{args.image}'; run `hrsam embed` on it again")
        args.target_size = args.target_size or store.target_size
    args.target_size = args.target_size or 1024
    loaded = load_model(args)
    predictor = loaded.predictor
    if store is not None:
        from ..engine.embedding_reuse import StoreBackedPredictor
        predictor = StoreBackedPredictor(predictor, store)

    timed = EncoderTimer(predictor)
    session = Session(array, timed, rgb=rgb, displayed_axes=axes, position=position,
                      contrast_limits=store.contrast_limits if store else None,
                      labels=np.zeros(spatial, np.uint8), mask_policy=mask_policy(args))
    start = time.perf_counter()
    session.prepare_slice()  # a huge slice is encoded later, in a window around the prompts
    with warnings.catch_warnings():  # said below, in one line
        warnings.simplefilter("ignore", NoContrastWarning)
        session.set_prompts(points, labels, box=box)
    encode = timed.seconds
    decode = time.perf_counter() - start - encode
    area = 0 if session.preview is None else int(session.preview.sum())
    iou = session.iou if session.iou is not None else float("nan")
    if session.warning:  # no contrast: the mask is empty, commit says there is nothing to write
        print(f"hrsam: warning: {session.warning}", file=sys.stderr)
    elif area == 0 or session.object.slices[session.slice_key].result.model_empty:
        print("hrsam: warning: the mask is empty" + (" but for the pixels held at your clicks" if area else "")
              + "; add a click inside the object or a box around it", file=sys.stderr)
    propagated = ""
    if args.propagate and area:
        result = session.propagate("both", axis=args.slice[0])
        propagated = f", propagated to {len(result.slices)} more slice(s)"
    session.commit()
    written = _write_mask(args.out, session.labels, metadata, kind)

    prompts = f"{len(points)} point(s)" + (" and a box" if box else "")
    print(f"{args.image}: {' x '.join(map(str, array.shape))} {array.dtype}{where}")
    print(f"model: {loaded.describe()}, loaded in {loaded.seconds:.1f} s")
    if loaded.random:
        print("WARNING: random weights: this mask is noise, not a segmentation")
    reused = ""
    if store is not None:
        reused = " (reused from the store)" if predictor.hits else " (not in the store)"
    print(f"encoder {encode:.2f} s{reused}, decoder {decode:.3f} s")
    print(f"mask: {area} pixels on the slice, predicted IoU {iou:.2f}, from {prompts}"
          f"{propagated}")
    print(f"wrote {', '.join(written)}")
    return 0


class EncoderTimer:
    """The predictor it wraps, adding up the seconds spent in ``embed`` (``seconds``: the
    encoder, wherever the session calls it: ahead of the prompts, or during them for the window
    of a huge slice) and in ``predict_many`` (``decode_seconds``, ``prompts``: segment all's
    batched decoding). Every other attribute is the wrapped predictor's."""

    def __init__(self, predictor):
        self._predictor = predictor
        self.seconds = self.decode_seconds = 0.0
        self.prompts = 0

    def embed(self, image, contrast_limits=None):
        start = time.perf_counter()
        try:
            return self._predictor.embed(image, contrast_limits=contrast_limits)
        finally:
            self.seconds += time.perf_counter() - start

    def predict_many(self, points, labels=None):
        start = time.perf_counter()
        try:
            return self._predictor.predict_many(points, labels)
        finally:
            self.decode_seconds += time.perf_counter() - start
            self.prompts += len(points)

    def __getattr__(self, name):
        return getattr(self._predictor, name)


def _choose_slice(spatial, chosen, path):
    """(displayed axes, position, text) for a 2-D image or the --slice of a volume."""
    ndim = len(spatial)
    shape = " x ".join(map(str, spatial))
    if ndim == 2:
        if chosen is not None:
            raise ValueError(f"'{path}' is a 2-D image ({shape}); --slice is for volumes")
        return (0, 1), None, ""
    if ndim != 3:
        raise ValueError(f"'{path}' has {ndim} spatial axes ({shape}); segment works on "
                         "2-D images and 3-D volumes")
    if chosen is None:
        raise ValueError(f"'{path}' is a volume ({shape}): choose the slice to click on with "
                         f"--slice AXIS:INDEX, e.g. --slice 0:{spatial[0] // 2}")
    axis, index = chosen
    if not 0 <= axis < 3:
        raise ValueError(f"--slice axis {axis} does not exist: the volume has axes 0, 1, 2 "
                         f"({shape})")
    if not 0 <= index < spatial[axis]:
        raise ValueError(f"--slice index {index} is outside axis {axis} (0..{spatial[axis] - 1})")
    axes = tuple(a for a in range(3) if a != axis)
    return axes, [index], f", slice {axis}:{index}"


def _prompts_on_slice(args, rows: int, cols: int):
    """Session prompts ((row, col) points, labels, (row0, col0, row1, col1) box), checked
    against the slice so no model is built for prompts that cannot work."""
    if not args.point and args.box is None:
        raise ValueError("give at least one --point X,Y or a --box X0,Y0,X1,Y1")

    def check(x, y, what):
        if not (-0.5 <= x < cols - 0.5 and -0.5 <= y < rows - 0.5):
            raise ValueError(f"{what} ({x:g}, {y:g}) lies outside the image (width {cols}, "
                             f"height {rows}); X is the column, Y the row")

    for x, y, _ in args.point:
        check(x, y, "point")
    box = None
    if args.box is not None:
        x0, y0, x1, y1 = args.box
        check(x0, y0, "box corner")
        check(x1, y1, "box corner")
        box = (y0, x0, y1, x1)
    points = [(y, x) for x, y, _ in args.point]
    labels = [label for _, _, label in args.point]
    if labels and 1 not in labels and box is None:
        raise ValueError("every point is negative (,0): add a positive point or a box")
    return points, labels, box


def _output_kind(out: str, image: str, ndim: int) -> str:
    """"geometry" (SimpleITK with spacing/origin/direction), "ngff" (OME-Zarr labels), "tiff" or "png"."""
    suffix = io.path_suffix(out)
    if Path(out).name.endswith(ngff.SUFFIXES):
        return "ngff"
    has_geometry = Path(image).is_dir() or io.path_suffix(image) in GEOMETRY_FORMATS
    if suffix in io.LABEL_SUFFIXES:
        return "geometry"
    if suffix in MASK_2D_SUFFIXES and has_geometry:
        raise ValueError(f"'{out}' cannot keep the spacing, origin and direction of "
                         f"'{image}': write {', '.join(io.LABEL_SUFFIXES)}")
    if suffix in (".tif", ".tiff"):
        return "tiff"
    if suffix == ".png":
        if ndim != 2:
            raise ValueError(f"a PNG holds one 2-D mask; write a volume mask as .tif or "
                             f"{', '.join(io.LABEL_SUFFIXES)}")
        return "png"
    raise ValueError(f"cannot write a mask as '{suffix or Path(out).name}': use "
                     f"{', '.join(MASK_2D_SUFFIXES + io.LABEL_SUFFIXES + ngff.SUFFIXES)}")


def _write_mask(out: str, labels: np.ndarray, metadata: dict, kind: str, dtype=np.uint8) -> list[str]:
    """Write ``labels`` as ``kind``; a TIFF holds them as ``dtype`` (uint8 for one object)."""
    path = Path(out)
    if kind == "geometry":
        return io.write_labels(path, labels, metadata)
    if kind == "ngff":  # into the image's store when OUT is the input OME-Zarr, else a new store
        return [str(ngff.write_ngff_labels(path, labels.astype(dtype, copy=False), scale=metadata.get("spacing")))]
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "tiff":
        import tifffile
        tifffile.imwrite(path, labels.astype(dtype, copy=False), compression="zlib")
    else:
        from skimage.io import imsave
        imsave(path, (labels > 0).astype(np.uint8) * 255, check_contrast=False)
    return [str(path)]
