"""``hrsam embed``: precompute slice embeddings into a zarr store, so that ``hrsam segment
--embeddings STORE.zarr`` starts at decoder speed."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

from napari_hrsam import io
from napari_hrsam.io.inputs import expand_inputs

from .model import add_dask_options, model_choice
from .segment import parse_limits


def add_embed(commands, parents) -> None:
    embed = commands.add_parser(
        "embed", parents=parents, help="precompute slice embeddings into a zarr store",
        description="Run the image encoder once per slice (or per image of a folder) and "
                    "store the features, so that `hrsam segment --embeddings STORE.zarr` "
                    "starts at decoder speed. From Python, a Session reuses the store through "
                    "napari_hrsam.engine.embedding_reuse.StoreBackedPredictor, and a napari widget "
                    "through its predictor_factory (embedding_reuse.wrap_factory); the widget "
                    "has no setting for stores.")
    embed.add_argument("image", metavar="IMAGE_OR_DIR", nargs="+",
                       help="image files, a DICOM folder, folders of images or globs")
    embed.add_argument("--out", required=True, metavar="STORE.zarr", help="store to create")
    embed.add_argument("--resume", action="store_true",
                       help="add to an existing store made with the same model and settings: "
                            "slices already in it are not embedded again")
    add_dask_options(embed)
    embed.add_argument("--slices-per-task", type=int, default=32, metavar="K",
                       help="with Dask: slices of a volume per task (default 32)")
    embed.add_argument("--axis", type=int, default=0,
                       help="for volumes: slices along this array axis (default 0)")
    embed.add_argument("--contrast-limits", type=parse_limits, metavar="LO,HI",
                       help="one intensity window for every slice (default: 0.5/99.5 "
                            "percentiles per slice); `hrsam segment --embeddings` uses the "
                            "store's window, a Python session must pass the same limits")
    embed.add_argument("--overwrite", action="store_true", help="replace an existing store")
    embed.set_defaults(run=run_embed)



def run_embed(args) -> int:
    from ..engine.embedding_store import EmbeddingStore
    from ..scale.embed_units import embed_unit, plan_units
    from ..scale.executor import default_workers, run_units
    from ..scale.worker_model import ModelPlugin

    sources = expand_inputs(args.image)
    out = Path(args.out)
    if out.exists() and not (args.overwrite or args.resume):
        raise FileExistsError(f"'{out}' already exists; choose another --out, pass --resume to add "
                              "to it or --overwrite to replace it")
    io.check_writable(out)
    io.read_image(sources[0])  # an unreadable first input fails before the model loads
    args.target_size = args.target_size or 1024
    choice = model_choice(args)
    start = time.perf_counter()
    local = ModelPlugin(choice, threads=default_workers())  # the store records these weights' fingerprint
    local.setup()
    model = local.predictor.model
    if args.resume and out.exists():
        store = EmbeddingStore.open(out, writable=True)
        _check_same_settings(store, local.fingerprint, args)
    else:
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        store = EmbeddingStore.create(out, model_name=model.name, model_fingerprint=local.fingerprint,
                                      target_size=args.target_size, contrast_limits=args.contrast_limits)
    limits = None if args.contrast_limits is None else tuple(args.contrast_limits)
    units, failures = plan_units([str(p) for p in sources], str(out), args.axis, limits, args.slices_per_task)
    bar = tqdm(total=sum(u.stop - u.start for u in units), desc=f"embed {sources[0].name}"
               + (f" and {len(sources) - 1} more" if len(sources) > 1 else ""),
               unit="slice", file=sys.stderr, mininterval=1.0)
    summaries = run_units(embed_unit, units, choice, workers=args.workers, scheduler=args.scheduler,
                          progress=lambda done, total, summary: bar.update(summary["slices"]),
                          log=lambda text: print(text, file=sys.stderr), local=local)
    bar.close()
    failures += [s for s in summaries if s["error"]]
    count = sum(s["embedded"] for s in summaries if not s["error"])
    passes = sum(s["encoder_passes"] for s in summaries if not s["error"])
    skipped = sum(len(s["skipped"]) for s in summaries if not s["error"])
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"model: {choice.describe()}, target size {args.target_size}")
    if choice.weights()[0] == "random":
        print("WARNING: random weights: these embeddings are only good for testing")
    print(f"stored {count} embedding(s) from {len(sources) - len({f['image'] for f in failures})} image(s) in "
          f"{out} ({size / 2**20:.1f} MiB, float16), {passes} encoder pass(es) "
          f"({count - passes} already there), {seconds:.1f} s")
    if skipped:
        print(f"skipped {skipped} slice(s) larger than {2 * args.target_size} px: their "
              "window follows the clicks, so they are embedded while segmenting")
    print(f"reuse: hrsam segment IMAGE --embeddings {out} ... (same --target-size and model)")
    for failure in failures:
        print(f"FAILED {failure['image']}: {failure['error']}", file=sys.stderr)
    return 1 if failures else 0


def _check_same_settings(store, fingerprint: str, args) -> None:
    from ..engine.embedding_store import jsonable_limits

    if store.model_fingerprint != fingerprint:
        raise ValueError(f"'{args.out}' was made with other weights: embed into another store")
    if store.target_size != args.target_size:
        raise ValueError(f"'{args.out}' holds target size {store.target_size}, not {args.target_size}")
    if store.contrast_limits != jsonable_limits(args.contrast_limits):
        raise ValueError(f"'{args.out}' was made with contrast limits {store.contrast_limits}")
