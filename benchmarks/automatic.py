"""Segment everything: object-level quality and speed of ``Session.segment_all`` (what the widget
and ``hrsam segment --auto`` run) against scikit-image's classic pipeline, per validation set.

    python benchmarks/automatic.py --datasets nuclei,ecoli,bbbc007,scratch_nuclei
    python benchmarks/automatic.py --seeds grid --tile-zoom 2        # the first version's settings
    python benchmarks/automatic.py --datasets nuclei --split train  # the bundled sample's half

Per set: F1 at IoU >= 0.5 (one-to-one matching), mean IoU of the matched objects, panoptic
quality, seconds per image (encoder / decoder / the rest), the decoder's prompts per second, and
how well the decoder's IoU estimate and the mask stability rank the found masks by their true IoU
(Spearman). The baseline (Otsu threshold on the side with less area, distance-transform peaks,
watershed) runs in the same process on the same images.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import data_root, machine_description, print_table  # noqa: E402
from hrsam_model import predictor as predictor_module  # noqa: E402
from hrsam_model.evaluation import datasets  # noqa: E402
from napari_hrsam.cli.segment import EncoderTimer  # noqa: E402
from napari_hrsam.engine.automatic import AutoSettings  # noqa: E402
from napari_hrsam.engine.model_choice import ModelChoice  # noqa: E402
from napari_hrsam.engine.session import Session  # noqa: E402


def iou_matrix(masks: list[np.ndarray], truth: np.ndarray) -> np.ndarray:
    labels = np.unique(truth)[1:]
    out = np.zeros((len(masks), len(labels)))
    for i, mask in enumerate(masks):
        for value in np.unique(truth[mask]):
            if value == 0:
                continue
            j = np.searchsorted(labels, value)
            true = truth == value
            out[i, j] = (mask & true).sum() / (mask | true).sum()
    return out


def scores(masks: list[np.ndarray], truth: np.ndarray) -> tuple[int, int, int, list[float]]:
    """(TP, FP, FN, IoUs of the matched pairs) with one-to-one matching at IoU >= 0.5."""
    ious = iou_matrix(masks, truth)
    n_true = ious.shape[1]
    if len(masks) == 0 or n_true == 0:
        return 0, len(masks), n_true, []
    rows, cols = linear_sum_assignment(-ious)
    matched = [ious[r, c] for r, c in zip(rows, cols) if ious[r, c] >= 0.5]
    return len(matched), len(masks) - len(matched), n_true - len(matched), matched


def classic(image: np.ndarray) -> list[np.ndarray]:
    """Otsu threshold (foreground: the side with less area), distance-transform peaks, watershed."""
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import watershed

    smooth = gaussian(image.astype(np.float32), 1)
    above = smooth > threshold_otsu(smooth)
    foreground = above if above.mean() <= 0.5 else ~above
    foreground = remove_small_objects(ndi.binary_fill_holes(foreground), 30)
    distance = ndi.distance_transform_edt(foreground)
    peaks = peak_local_max(distance, min_distance=5, labels=ndi.label(foreground)[0])
    markers = np.zeros(image.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, markers, mask=foreground)
    return [labels == v for v in np.unique(labels)[1:]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="nuclei,ecoli")
    parser.add_argument("--split", default="val", choices=datasets.SPLITS)
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--tile-zoom", type=float, default=AutoSettings().tile_zoom)
    parser.add_argument("--seeds", default=AutoSettings().seeds, choices=("blobs", "grid"))
    parser.add_argument("--split-depth", type=float, default=AutoSettings().split_depth,
                        help="cut masks where they pinch by more than this (0: never)")
    parser.add_argument("--batch", type=int, default=AutoSettings().batch, help="prompts per decoder call")
    parser.add_argument("--decoder-fp32", action="store_true",
                        help="decode batches in fp32 even where the CPU has bf16 (the baseline of that choice)")
    parser.add_argument("--untrained", action="store_true", help="random weights (smoke runs only)")
    args = parser.parse_args(argv)
    settings = AutoSettings(points_per_side=args.points_per_side, tile_zoom=args.tile_zoom, seeds=args.seeds,
                            split_depth=args.split_depth, batch=args.batch)
    if args.decoder_fp32:
        predictor_module.BF16_DECODE_MIN_BATCH = sys.maxsize
    choice = ModelChoice(untrained=args.untrained)
    network = choice.build_model()
    print(f"machine: {machine_description()}")
    print(f"model: {choice.describe()}; {settings}")
    rows = []
    for name in filter(None, (n.strip() for n in args.datasets.split(","))):
        pairs = datasets.load_label_images(name, args.split, data_root())[:args.max_images]
        for method in ("hrsam_tiny segment_all", "Otsu + watershed"):
            tp = fp = fn = 0
            matched, ranks, seconds, split = [], {"iou": [], "stability": [], "true": []}, [], [0.0, 0.0, 0]
            for image, truth in pairs:
                start = time.perf_counter()
                if method == "Otsu + watershed":
                    masks = classic(image)
                else:
                    timed = EncoderTimer(choice.predictor(network))
                    session = Session(image, timed)
                    try:
                        found = session.compute_segment_all(session.segment_all_request(settings)).objects
                    except ValueError:  # a frame without contrast: nothing to find
                        found = []
                    masks = [f.mask.dense() for f in found]
                    split = [split[0] + timed.seconds, split[1] + timed.decode_seconds, split[2] + timed.prompts]
                    best = iou_matrix(masks, truth).max(axis=1) if masks else []
                    ranks["iou"] += [f.iou for f in found]
                    ranks["stability"] += [f.stability for f in found]
                    ranks["true"] += list(best)
                seconds.append(time.perf_counter() - start)
                a, b, c, m = scores(masks, truth)
                tp, fp, fn, matched = tp + a, fp + b, fn + c, matched + m
            f1 = 2 * tp / max(2 * tp + fp + fn, 1)
            pq = sum(matched) / max(tp + fp / 2 + fn / 2, 1e-9)
            total = sum(seconds)
            timing = f"{total / len(pairs):.1f}"
            speed = ""
            if split[2]:
                rest = total - split[0] - split[1]
                timing += f" ({split[0] / len(pairs):.1f} / {split[1] / len(pairs):.1f} / {rest / len(pairs):.1f})"
                speed = f"{split[2] / split[1]:.0f}"
            rank = ""
            if len(ranks["true"]) > 2:
                rank = (f"{spearmanr(ranks['iou'], ranks['true']).correlation:+.2f} / "
                        f"{spearmanr(ranks['stability'], ranks['true']).correlation:+.2f}")
            rows.append((f"{name} ({args.split}, {len(pairs)} images)", method, f"{tp + fp}", f"{tp + fn}",
                         f"{f1:.3f}", f"{np.mean(matched) if matched else 0:.3f}", f"{pq:.3f}", timing, speed, rank))
    print()
    print_table(("set", "method", "found", "true", "F1@0.5", "matched IoU", "PQ",
                 "s/image (enc / dec / rest)", "prompts/s", "Spearman: IoU est. / stability"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
