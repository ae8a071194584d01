"""``python -m hrsam_model.evaluation``: the click protocol's tables for a model and baselines.

    python -m hrsam_model.evaluation --model hrsam_tiny --dataset nuclei --split val \\
        [--target-size 1024] [--baselines grabcut,randomwalker,litemedsam] [--max-instances N]
    python -m hrsam_model.evaluation --model none --data DIR --baselines grabcut

`run_evaluation(...)` returns the same tables as a string for other front ends.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import datasets as dataset_io
from .metrics import Summary, summarize
from .report import format_table, one_pixel_note
from .runner import evaluate

BASELINES = ("grabcut", "randomwalker", "litemedsam")
_ALIASES = {"random_walker": "randomwalker", "random-walker": "randomwalker", "lite_medsam": "litemedsam"}


def make_baseline(name: str, data_root: str | None = None):
    """A predictor-like baseline by name (see `BASELINES`); LiteMedSAM's lite_medsam.pth is looked
    for in `data_root` (default: $HRSAM_DATA)."""
    name = _ALIASES.get(name, name)
    if name == "grabcut":
        from .baselines import GrabCutPredictor

        return GrabCutPredictor()
    if name == "randomwalker":
        from .baselines import RandomWalkerPredictor

        return RandomWalkerPredictor()
    if name == "litemedsam":
        from .litemedsam import LiteMedSAMPredictor

        return LiteMedSAMPredictor(None if data_root is None else Path(data_root) / "lite_medsam.pth")
    raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")


def load_model_predictor(
    model: str, target_size: int = 1024, checkpoint: str | None = None, untrained: bool = False, device=None,
    all_pieces: bool = False, zoom_in: bool | str | None = None,
):
    """(label, predictor, weights) for a named HRSAM model: bundled weights, a checkpoint, or random weights.

    all_pieces: score the decoder's whole mask (the official output) instead of what the plugin
    shows: the pieces that hold a positive click, with every click held (`hrsam_model.postprocess`).
    zoom_in: segment in a crop around the object (`hrsam_model.zoom`; HRSAM's own protocol does
    not zoom): "first" (or True) from the first click on, as the napari widget does; "second"
    from the second click on, RITM's evaluation option.
    """
    from hrsam_model import Predictor, build_model

    if untrained:
        network, weights = build_model(model, pretrained=False), "random weights"
    elif checkpoint:
        network, weights = build_model(model, checkpoint=checkpoint), "checkpoint"
    else:
        network, weights = build_model(model, pretrained=True), "bundled"
    skip_clicks = zoom_skip_clicks(zoom_in)
    zoom_label = "" if skip_clicks is None else " zoom-in" + (" from click 2" if skip_clicks else "")
    label = (f"{model}@{target_size}" + (" all pieces" if all_pieces else "") + zoom_label
             + (" (RANDOM)" if untrained else ""))
    predictor = Predictor(network, device=device, target_size=target_size, clicked_pieces_only=not all_pieces,
                          clicks_hold=not all_pieces)
    if skip_clicks is not None:
        from hrsam_model.zoom import ZoomInPredictor

        predictor = ZoomInPredictor(predictor, skip_clicks=skip_clicks)
    return label, predictor, weights


ZOOM_CHOICES = ("first", "second")


def zoom_skip_clicks(zoom_in) -> int | None:
    """ZoomInPredictor's skip_clicks for a zoom_in setting: None (off), 0 or 1."""
    if zoom_in is None or zoom_in is False:
        return None
    if zoom_in is True or zoom_in == "first":
        return 0
    if zoom_in == "second":
        return 1
    raise ValueError(f"zoom_in must be one of {ZOOM_CHOICES} (or True/False), got {zoom_in!r}")


def add_zoom_option(parser) -> None:
    """--zoom-in [first|second], shared by every evaluation command line."""
    parser.add_argument("--zoom-in", nargs="?", const="first", choices=ZOOM_CHOICES, default=None,
                        help="segment in a crop around the object: from the first click on, as the "
                             "napari widget does (default), or from the 'second' (RITM's option); "
                             "HRSAM's own protocol does not zoom")


def load_groups(
    dataset_names: Sequence[str] = (),
    split: str = "val",
    data: str | None = None,
    data_root: str | None = None,
    max_instances: int | None = None,
) -> dict[str, list]:
    """{title: instances} for named dataset splits or for a folder (`datasets.load_folder`)."""
    if data is not None:
        return {f"{data} (folder)": dataset_io.subsample(dataset_io.load_folder(data), max_instances)}
    if not dataset_names:
        raise ValueError("name at least one dataset (nuclei, ecoli, brain) or a --data folder")
    return {
        f"{name} ({split})": dataset_io.load_instances(name, split, data_root, max_instances=max_instances)
        for name in dataset_names
    }


def evaluate_methods(
    methods: Sequence[tuple[str, object]],
    instances: Sequence,
    num_clicks: int = 20,
    log: Callable[[str], None] | None = None,
) -> list[tuple[str, Summary]]:
    """(method label, Summary) rows for one group of instances."""
    rows = []
    for label, method in methods:
        if log is not None:
            log(f"  {label}: {len(instances)} instances")
        results = evaluate(method, instances, num_clicks=num_clicks)
        rows.append((label, summarize(results, max_clicks=num_clicks)))
    return rows


def run_evaluation(
    model: str | None = "hrsam_tiny",
    datasets: Sequence[str] = ("nuclei",),
    split: str = "val",
    data: str | None = None,
    data_root: str | None = None,
    target_size: int = 1024,
    baselines: Sequence[str] = (),
    max_instances: int | None = None,
    num_clicks: int = 20,
    checkpoint: str | None = None,
    untrained: bool = False,
    device=None,
    log: Callable[[str], None] | None = None,
    all_pieces: bool = False,
    zoom_in: bool | str | None = None,
) -> str:
    """The tables (one per dataset; rows = methods) as text."""
    if num_clicks < 1:
        raise ValueError(f"num_clicks must be >= 1, got {num_clicks}")
    groups = load_groups(datasets, split, data, data_root, max_instances)
    methods = []
    notes = []
    if model and model.lower() != "none":
        label, predictor, weights = load_model_predictor(model, target_size, checkpoint, untrained, device, all_pieces,
                                                          zoom_in)
        methods.append((label, predictor))
        notes.append(f"{label}: {weights}, device {predictor.device}")
        if untrained:
            notes.append("WARNING: random weights: the model's numbers measure nothing")
    for name in baselines:
        try:
            methods.append((_ALIASES.get(name, name), make_baseline(name, data_root)))
        except (ImportError, FileNotFoundError) as error:
            notes.append(f"skipped baseline {name}: {error}")
    if not methods:
        raise ValueError("nothing to evaluate: give --model and/or --baselines")
    tables = []
    for title, instances in groups.items():
        if log is not None:
            log(title)
        rows = evaluate_methods(methods, instances, num_clicks, log)
        tables.append(format_table(rows, title=f"{title}, {len(instances)} instances, {num_clicks} clicks",
                                   note=one_pixel_note([instance.mask for instance in instances])))
    return "\n".join(notes + [""] + ["\n\n".join(tables)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hrsam_model.evaluation",
        description="Simulated-click evaluation (RITM/SimpleClick/HRSAM protocol): NoC@85/90, NoF@85, "
        "mIoU@1/3/5/10 (and mIoU@1 on objects touching another) and seconds per click, per dataset.",
    )
    parser.add_argument("--model", default="hrsam_tiny", help="model name, or 'none' for baselines only")
    parser.add_argument("--checkpoint", help="weights file for --model (default: the bundled weights)")
    parser.add_argument("--untrained", action="store_true", help="random weights (smoke tests only)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="comma-separated: nuclei, ecoli, brain")
    source.add_argument("--data", help="folder of image_ID.tif + mask_ID.tif pairs or .npz files")
    parser.add_argument("--split", default="val", choices=dataset_io.SPLITS)
    parser.add_argument("--data-root", help="where the datasets lie (default $HRSAM_DATA)")
    parser.add_argument("--target-size", type=int, default=1024)
    parser.add_argument("--baselines", default="", help=f"comma-separated: {', '.join(BASELINES)}")
    parser.add_argument("--max-instances", type=int, help="deterministic random subset per dataset")
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: auto)")
    parser.add_argument("--all-pieces", action="store_true",
                        help="score the model's raw mask (the official output), not the plugin's: only the "
                             "pieces holding a positive click, every click held")
    add_zoom_option(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [n.strip() for n in (args.dataset or "").split(",") if n.strip()]
    baselines = [n.strip() for n in args.baselines.split(",") if n.strip()]
    try:
        text = run_evaluation(
            model=args.model, datasets=names, split=args.split, data=args.data, data_root=args.data_root,
            target_size=args.target_size, baselines=baselines, max_instances=args.max_instances,
            num_clicks=args.clicks, checkpoint=args.checkpoint, untrained=args.untrained, device=args.device,
            all_pieces=args.all_pieces, zoom_in=args.zoom_in,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(text)
    return 0
