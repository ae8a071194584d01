"""The click protocol's tables for methods and baselines: ``run_evaluation(...)`` returns them as
text. ``hrsam eval`` (``napari_hrsam.cli.eval``) is the command line; it measures HRSAM through the
interactive engine (``napari_hrsam.engine.click_method.SessionMethod``), as the widget runs it.
"""

from __future__ import annotations

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
    methods: Sequence[tuple[str, object]] = (),
    datasets: Sequence[str] = ("nuclei",),
    split: str = "val",
    data: str | None = None,
    data_root: str | None = None,
    baselines: Sequence[str] = (),
    max_instances: int | None = None,
    num_clicks: int = 20,
    log: Callable[[str], None] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The tables (one per dataset; rows = ``methods`` as (label, method), then ``baselines`` by
    name) as text, after ``notes``."""
    if num_clicks < 1:
        raise ValueError(f"num_clicks must be >= 1, got {num_clicks}")
    groups = load_groups(datasets, split, data, data_root, max_instances)
    methods, notes = list(methods), list(notes)
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
