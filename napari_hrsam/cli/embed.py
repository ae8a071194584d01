"""``hrsam embed``: precompute slice embeddings into a zarr store, so that ``hrsam segment
--embeddings STORE.zarr`` starts at decoder speed."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

from napari_hrsam import io

from .model import load_model
from .segment import parse_limits


def add_embed(commands, parents) -> None:
    embed = commands.add_parser(
        "embed", parents=parents, help="precompute slice embeddings into a zarr store",
        description="Run the image encoder once per slice (or per image of a folder) and "
                    "store the features, so that `hrsam segment --embeddings STORE.zarr` "
                    "starts at decoder speed. From Python, a Session reuses the store through "
                    "napari_hrsam.engine.embedding_store.StoreBackedPredictor, and a napari widget "
                    "through its predictor_factory (embedding_store.wrap_factory); the widget "
                    "has no setting for stores.")
    embed.add_argument("image", metavar="IMAGE_OR_DIR",
                       help="image file, DICOM folder, or a folder of 2-D images")
    embed.add_argument("--out", required=True, metavar="STORE.zarr", help="store to create")
    embed.add_argument("--axis", type=int, default=0,
                       help="for volumes: slices along this array axis (default 0)")
    embed.add_argument("--contrast-limits", type=parse_limits, metavar="LO,HI",
                       help="one intensity window for every slice (default: 0.5/99.5 "
                            "percentiles per slice); `hrsam segment --embeddings` uses the "
                            "store's window, a Python session must pass the same limits")
    embed.add_argument("--overwrite", action="store_true", help="replace an existing store")
    embed.set_defaults(run=run_embed)



def run_embed(args) -> int:
    from ..engine.embedding_store import EmbeddingStore, build_store, model_fingerprint

    sources = _embed_sources(Path(args.image))
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"'{out}' already exists; choose another --out or pass "
                              "--overwrite")
    io.check_writable(out)
    first = io.read_image(sources[0])  # unreadable input fails before the model loads
    args.target_size = args.target_size or 1024
    loaded = load_model(args)
    model = loaded.predictor.model
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    store = EmbeddingStore.create(out, model_name=model.name,
                                  model_fingerprint=model_fingerprint(model),
                                  target_size=args.target_size,
                                  contrast_limits=args.contrast_limits)
    start, count, skipped = time.perf_counter(), 0, 0
    try:
        for number, path in enumerate(sources):
            array, metadata = first if number == 0 else io.read_image(path)
            rgb = bool(metadata.get("rgb"))
            spatial = array.shape[:-1] if rgb else array.shape
            total = spatial[args.axis] if len(spatial) == 3 and -3 <= args.axis < 3 else 1
            with tqdm(total=total, desc=f"embed {path.name}", unit="slice", file=sys.stderr,
                      mininterval=1.0) as bar:
                def show(done, _total, bar=bar):
                    bar.update(done - bar.n)
                done = build_store(store, array, loaded.predictor, source=str(path),
                                   axis=args.axis, rgb=rgb,
                                   contrast_limits=args.contrast_limits, progress=show)
            count += done["embedded"]
            skipped += len(done["skipped"])
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # a half-written store would only mislead
        raise
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"model: {loaded.describe()}")
    if loaded.random:
        print("WARNING: random weights: these embeddings are only good for testing")
    print(f"stored {count} embedding(s) from {len(sources)} image(s) in {out} "
          f"({size / 2**20:.1f} MiB, float16), {seconds / max(count, 1):.2f} s each")
    if skipped:
        print(f"skipped {skipped} slice(s) larger than {2 * args.target_size} px: their "
              "window follows the clicks, so they are embedded while segmenting")
    print(f"reuse: hrsam segment IMAGE --embeddings {out} ... (same --target-size and model)")
    return 0


def _embed_sources(path: Path) -> list[Path]:
    """What to embed: an image file, a DICOM folder, or every image of a folder."""
    if not path.exists():
        raise FileNotFoundError(f"No such file or folder: '{path}'")
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and io.path_suffix(p) in io.PLANAR_SUFFIXES + io.VOLUME_SUFFIXES)
    return files or [path]  # no images: a DICOM folder (read_image says if it is not)
