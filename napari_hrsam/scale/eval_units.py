"""``hrsam eval`` as units of work: a run of consecutive instances of one dataset split (or
folder) through one method (the model behind the interactive engine, or a named baseline).

A unit loads its own instances (every worker must see the data at the same paths) and returns one
small record per instance (its IoU curve, decoder seconds, the yardstick IoUs); the client puts the
records back in the instances' order and prints the same tables as the in-process run. With an
output folder, each unit's records are written there as one JSON file (through a temporary file
and a rename) holding the weights' fingerprint and the settings: a rerun with the same ones reads
the file instead of clicking again (resume), and the tables are written last as ``eval.txt``."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from napari_hrsam.engine.autosave import replace_file

INSTANCES_PER_TASK = 8
MODEL = "model"  # the method name of the model's units; other names are baselines


@dataclass(frozen=True)
class GroupSpec:
    """One table: a named dataset split, or a folder of image/mask pairs (``data``)."""

    dataset: str | None = None
    split: str = "val"
    data: str | None = None
    data_root: str | None = None
    max_instances: int | None = None

    @property
    def title(self) -> str:
        return f"{self.data} (folder)" if self.data is not None else f"{self.dataset} ({self.split})"

    def load(self) -> list:
        from hrsam_model.evaluation.command import load_groups

        names = () if self.dataset is None else (self.dataset,)
        groups = load_groups(names, self.split, self.data, self.data_root, self.max_instances)
        return next(iter(groups.values()))


@dataclass(frozen=True)
class EvalUnit:
    """Instances ``start:stop`` of ``group`` through ``method`` with ``num_clicks`` clicks each."""

    group: GroupSpec
    method: str
    start: int
    stop: int
    num_clicks: int = 20
    zoom_in: bool = False
    keep_clicked_pieces: bool = True
    hold_clicks: bool = True
    out_dir: str | None = None

    def settings(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "out_dir"}

    @property
    def record(self) -> Path | None:
        if self.out_dir is None:
            return None
        token = hashlib.blake2b(json.dumps(self.settings(), sort_keys=True).encode(), digest_size=6).hexdigest()
        slug = "".join(ch if ch.isalnum() else "-" for ch in self.group.title).strip("-")
        return Path(self.out_dir) / "units" / f"{slug}_{self.method}_{self.start:05d}-{self.stop:05d}_{token}.json"


def plan_units(groups: dict[GroupSpec, int], methods, per_task: int, **settings) -> list[EvalUnit]:
    """Units for every group (with its instance count) and method, ``per_task`` instances each
    (0: a group's instances in one unit)."""
    if per_task < 0:
        raise ValueError(f"--instances-per-task must be >= 0, got {per_task}")
    units = []
    for group, count in groups.items():
        step = per_task or max(count, 1)
        for method in methods:
            units += [EvalUnit(group, method, start, min(start + step, count), **settings)
                      for start in range(0, count, step)]
    return units


def eval_unit(unit: EvalUnit, plugin=None, instances: dict | None = None) -> dict:
    """Run one unit (in a Dask worker, or here with ``plugin`` and, to skip reloading, the groups'
    ``instances`` already loaded); {"unit", "results": [InstanceResult as dict], "yardsticks",
    "resumed", "error"}."""
    from .worker_model import worker_plugin

    plugin = plugin if plugin is not None else worker_plugin()
    fingerprint = plugin.fingerprint if unit.method == MODEL else f"baseline:{unit.method}"
    summary = {"unit": unit, "results": [], "yardsticks": [], "resumed": False, "error": None}
    stored = _stored(unit, fingerprint)
    if stored is not None:
        summary.update(stored, resumed=True)
        return summary
    try:
        group = instances[unit.group] if instances is not None else unit.group.load()
        chosen = group[unit.start:unit.stop]
        summary["results"], summary["yardsticks"] = _run(unit, chosen, plugin)
    except (ValueError, OSError, ImportError) as err:  # the data's or the setup's fault: reported
        summary["error"] = f"{type(err).__name__}: {err}"
        return summary
    if unit.record is not None:
        payload = {"fingerprint": fingerprint, "settings": unit.settings(),
                   "results": summary["results"], "yardsticks": summary["yardsticks"]}
        replace_file(unit.record, lambda tmp: Path(tmp).write_text(json.dumps(payload)))
    return summary


def _run(unit: EvalUnit, instances, plugin) -> tuple[list[dict], list[list[float]]]:
    from hrsam_model.evaluation.command import make_baseline
    from hrsam_model.evaluation.metrics import one_pixel_off_ious
    from hrsam_model.evaluation.runner import evaluate
    from napari_hrsam.engine.click_method import SessionMethod
    from napari_hrsam.engine.mask_policy import MaskPolicy

    if unit.method == MODEL:
        method = SessionMethod(plugin.predictor, zoom_in=unit.zoom_in,
                               mask_policy=MaskPolicy(unit.keep_clicked_pieces, unit.hold_clicks))
    else:
        method = make_baseline(unit.method, unit.group.data_root)
    results = evaluate(method, instances, num_clicks=unit.num_clicks)
    return [asdict(r) for r in results], [list(one_pixel_off_ious(i.mask)) for i in instances]


def _stored(unit: EvalUnit, fingerprint: str) -> dict | None:
    if unit.record is None or not unit.record.is_file():
        return None
    try:
        payload = json.loads(unit.record.read_text())
    except ValueError:
        return None
    if payload.get("fingerprint") != fingerprint or payload.get("settings") != json.loads(
            json.dumps(unit.settings())):
        return None
    return {"results": payload["results"], "yardsticks": payload["yardsticks"]}


def tables(summaries: list[dict], labels: dict[str, str], notes=()) -> str:
    """The click protocol's tables from the units' summaries (in the units' order): one per group, a row per
    method (``labels``: method name -> row label), as ``run_evaluation`` prints them."""
    from hrsam_model.evaluation.metrics import InstanceResult, summarize
    from hrsam_model.evaluation.report import format_table, yardstick_note

    by_group: dict[GroupSpec, dict[str, list]] = {}
    for summary in summaries:  # in the units' order: groups and methods as asked
        unit = summary["unit"]
        by_group.setdefault(unit.group, {}).setdefault(unit.method, []).append(summary)
    out = []
    for group, methods in by_group.items():
        rows, yardsticks, clicks = [], None, None
        for method, parts in methods.items():
            results = [InstanceResult(**r) for part in parts for r in part["results"]]
            clicks = parts[0]["unit"].num_clicks
            rows.append((labels.get(method, method), summarize(results, max_clicks=clicks)))
            yardsticks = yardsticks or [y for part in parts for y in part["yardsticks"]]
        out.append(format_table(rows, title=f"{group.title}, {rows[0][1].count} instances, {clicks} clicks",
                                note=yardstick_note(yardsticks)))
    return "\n".join(list(notes) + [""] + ["\n\n".join(out)])

