"""``hrsam demo``: simulated clicks on the bundled nuclei sample, scored against its labels.

Offline and headless: the bundled model, the bundled image and ground truth, the standard
click protocol of ``hrsam_model.evaluation.clicker`` (each click at the point farthest
inside the larger error region, positive or negative), run through the same ``Session``
as the napari widget, zoom-in included (``--no-zoom`` turns it off). Writes the labels
(TIFF), an overlay (PNG) and the numbers (JSON).
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

from .model import load_model, mask_policy

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE_IMAGE = DATA / "nuclei_2d.tif"
SAMPLE_TRUTH = DATA / "nuclei_2d_mask.tif"
MIN_AREA = 150  # smaller specks are not what a user clicks on
PALETTE = np.array([(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48),
                    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60)], np.uint8)


def add_demo(commands, parents) -> None:
    demo = commands.add_parser(
        "demo", parents=parents, help="segment a bundled sample with simulated clicks",
        description="Simulate clicks on a few nuclei of the bundled DSB-2018 sample, write "
                    "the mask and an overlay, and print IoU against the ground truth and "
                    "the time per click. Needs no data and no network.")
    demo.add_argument("--out", default="hrsam-demo", metavar="DIR",
                      help="folder for labels.tif, overlay.png, results.json (hrsam-demo)")
    demo.add_argument("--objects", type=int, default=5, metavar="K",
                      help="how many nuclei to segment (default 5)")
    demo.add_argument("--clicks", type=int, default=3, metavar="C",
                      help="simulated clicks per nucleus (default 3)")
    demo.add_argument("--no-zoom", action="store_true",
                      help="segment on the whole image at every click (the widget zooms in on the "
                           "object)")
    demo.set_defaults(run=run_demo)


def choose_objects(truth: np.ndarray, count: int) -> list[int]:
    """``count`` label ids spread over the image: whole nuclei (not cut by the image edge)
    of at least MIN_AREA pixels, evenly spaced in top-to-bottom order."""
    from skimage.measure import regionprops

    edge = set(np.unique(np.concatenate([truth[0], truth[-1], truth[:, 0], truth[:, -1]])))
    whole = [r for r in regionprops(truth) if r.label not in edge and r.area >= MIN_AREA]
    whole.sort(key=lambda r: r.centroid)
    if count < 1 or count > len(whole):
        raise ValueError(f"--objects must be between 1 and {len(whole)}, got {count}")
    picks = np.linspace(0, len(whole) - 1, count).round().astype(int)
    return [int(whole[i].label) for i in picks]


def run_demo(args) -> int:
    import tifffile

    from hrsam_model.evaluation.clicker import Clicker
    from hrsam_model.evaluation.metrics import iou

    from ..engine.session import Session

    if args.clicks < 1:
        raise ValueError(f"--clicks must be >= 1, got {args.clicks}")
    image, truth = tifffile.imread(SAMPLE_IMAGE), tifffile.imread(SAMPLE_TRUTH)
    objects = choose_objects(truth, args.objects)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out '{out}' is a file; name a folder")
    from ..io.images import check_writable
    check_writable(out / "results.json")  # before the clicks are simulated, not after
    loaded = load_model(args)
    print(f"hrsam demo: {len(objects)} nuclei of {SAMPLE_IMAGE.name} "
          f"({image.shape[0]} x {image.shape[1]} {image.dtype}, DSB-2018, CC0), "
          f"{args.clicks} simulated clicks each")
    print(f"model: {loaded.describe()} (loaded in {loaded.seconds:.1f} s)")
    if loaded.random:
        print("WARNING: bundled weights not found, using random weights: results are noise")

    session = Session(image, loaded.predictor, labels=np.zeros(image.shape, np.uint16),
                      zoom_in=not args.no_zoom, mask_policy=mask_policy(args))
    start = time.perf_counter()
    session.prepare_slice()
    encode_seconds = time.perf_counter() - start
    zoom = "; zoom-in windows are encoded inside the click time" if session.zoom_in else ""
    print(f"encoding: {encode_seconds:.2f} s (once per image{zoom})")

    records, click_seconds = [], []
    for label in objects:
        gt = truth == label
        clicker, pred, ious = Clicker(gt), None, []
        for _ in range(args.clicks):
            click = clicker.click(pred)
            if click is None:  # nothing left to correct
                break
            start = time.perf_counter()
            session.add_point((click.row, click.col), positive=click.positive)
            click_seconds.append(time.perf_counter() - start)
            pred = session.preview
            ious.append(iou(pred, gt))
        # an object whose last click emptied the mask has nothing to commit
        object_id = session.commit() if session.object_masks() else None
        if object_id is None:
            session.reset()
        records.append({"truth_label": label, "id": object_id, "area": int(gt.sum()),
                        "clicks": [list(c) for c in clicker.clicks], "ious": ious})

    out.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(session.labels)
    tifffile.imwrite(out / "labels.tif", labels, compression="zlib")
    _save_png(out / "overlay.png", overlay(image, labels, [truth == r["truth_label"] for r in records],
                                          [r["clicks"] for r in records]))
    summary = {"image": SAMPLE_IMAGE.name, "model": loaded.predictor.model.name,
               "weights": loaded.choice.weights()[0], "target_size": loaded.predictor.target_size,
               "device": str(loaded.predictor.device), "zoom_in": session.zoom_in,
               "encode_seconds": encode_seconds,
               "click_seconds": click_seconds, "objects": records}
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    _print_table(records, args.clicks)
    print(f"click to mask: {statistics.median(click_seconds):.3f} s per click (median of "
          f"{len(click_seconds)} clicks), encoder {encode_seconds:.2f} s per image")
    print(f"wrote {out / 'labels.tif'}, {out / 'overlay.png'}, {out / 'results.json'}")
    return 0


def _print_table(records: list[dict], clicks: int) -> None:
    header = f"{'nucleus':>8} {'area':>6}  {'clicks':<{2 * clicks}}" + "".join(
        f"{f'IoU@{k}':>8}" for k in range(1, clicks + 1))
    print(header)
    for r in records:
        curve = r["ious"] + [r["ious"][-1]] * (clicks - len(r["ious"]))  # stopped early: kept
        signs = " ".join("+" if c[2] else "-" for c in r["clicks"])
        print(f"{'#' + str(r['truth_label']):>8} {r['area']:>6}  {signs:<{2 * clicks}}"
              + "".join(f"{v:8.3f}" for v in curve))
    means = [np.mean([(r["ious"] + [r["ious"][-1]] * clicks)[k] for r in records])
             for k in range(clicks)]
    print(f"{'mean':>8} {'':>6}  {'':<{2 * clicks}}" + "".join(f"{v:8.3f}" for v in means))


def overlay(image: np.ndarray, labels: np.ndarray, truths: list[np.ndarray],
            clicks: list[list], scale: int = 2) -> np.ndarray:
    """RGB uint8 picture: the image in grey, each segmented object tinted and outlined in
    its colour, the ground truth outlined in white, clicks as green (+) / red (-) dots."""
    from skimage.draw import disk
    from skimage.segmentation import find_boundaries

    from hrsam_model.pixels import to_display_range

    grey = to_display_range(image)[..., 0]
    big = lambda a: np.kron(a, np.ones((scale, scale), a.dtype))  # noqa: E731 (nearest upscale)
    rgb = np.repeat(big(grey)[..., None], 3, axis=2).astype(np.float32)
    labels = big(labels)
    for object_id in np.unique(labels[labels > 0]):
        colour = PALETTE[(int(object_id) - 1) % len(PALETTE)].astype(np.float32)
        inside = labels == object_id
        rgb[inside] = 0.6 * rgb[inside] + 0.4 * colour
        rgb[find_boundaries(inside, mode="inner")] = colour
    for truth in truths:
        rgb[find_boundaries(big(truth.astype(np.uint8)) > 0, mode="outer")] = 255
    for object_clicks in clicks:
        for row, col, positive in object_clicks:
            centre = (row * scale + scale // 2, col * scale + scale // 2)
            rr, cc = disk(centre, 2.5 * scale, shape=rgb.shape[:2])
            rgb[rr, cc] = (0, 0, 0)
            rr, cc = disk(centre, 1.5 * scale, shape=rgb.shape[:2])
            rgb[rr, cc] = (40, 220, 40) if positive else (230, 30, 30)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from skimage.io import imsave

    imsave(path, rgb, check_contrast=False)
