"""Precomputed slice embeddings on disk (zarr), reused by ``hrsam segment --embeddings`` and by
sessions and widgets set up from Python (the widget has no setting for stores).

The encoder is the slow part of every click session (seconds per slice on a laptop CPU);
``hrsam embed`` runs it once per slice ahead of time and stores the features here, so a
later session starts clicking at decoder speed.

Reuse needs no session hook: ``embedding_reuse.StoreBackedPredictor`` wraps a predictor and
answers ``embed(image, contrast_limits)`` from the store when the exact same input was stored.
An entry is found by its *content key*: a hash of the image array the session hands to
``embed`` (the slice pixels), its contrast limits and the target size. So a hit can only
happen for identical input, and the store is filled by running a real ``Session`` over
every slice (``embedding_reuse.build_store``). A model check (a fingerprint of the weights)
refuses a store made with other weights.

Layout of a store (zarr group), version 2 (written; many writers at once cannot corrupt it)::

    attrs: format, version, model_name, model_fingerprint, target_size, contrast_limits
           (None = automatic per slice); written once, when the store is created
    sources/<sha>/    attrs: path, shape, dtype, sha, axis, rgb (the same bytes from any writer)
    entries/<key>     float16 array (1, 256, T/16, T/16), one chunk; attrs: source (sha), axis,
                      index, image_shape, resized_shape, slice_contrast_limits, complete (last)

Names are content hashes, so two writers of one slice write the same bytes to the same names,
and a lookup opens one entry (no scan). Version 1 (read only): the sources as a list in the
root attrs, entries ``s<source>_<index>`` at the root with their key in their attrs.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

FORMAT = "napari-hrsam-embeddings"
VERSION = 2
ENTRIES = "entries"  # version 2: entries/<content key>, one float16 chunk each
SOURCES = "sources"  # version 2: sources/<image sha>, attributes only


# ----------------------------------------------------------------------------- keys
def content_key(image, contrast_limits, target_size: int) -> str:
    """Hash naming an ``embed`` input: pixels, shape, dtype, contrast limits, target size."""
    array = np.ascontiguousarray(np.asarray(image))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(array.data)
    limits = None if contrast_limits is None else [float(v) for v in np.ravel(contrast_limits)]
    digest.update(repr((array.shape, array.dtype.str, limits, int(target_size))).encode())
    return digest.hexdigest()


def array_sha(array) -> str:
    """Content hash of a whole image or volume (names the source of a store)."""
    array = np.ascontiguousarray(np.asarray(array))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(array.data)
    digest.update(repr((array.shape, array.dtype.str)).encode())
    return digest.hexdigest()


def model_fingerprint(model) -> str:
    """Hash of a model's weights: a store only serves the weights that made it."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- store
class EmbeddingStore:
    """A zarr group of slice embeddings. ``open`` to read (versions 1 and 2), ``create`` to write
    (version 2)."""

    def __init__(self, group, path: Path):
        self._group = group
        self.path = path
        attrs = dict(group.attrs)
        if attrs.get("format") != FORMAT:
            raise ValueError(f"'{path}' is not an embedding store made by `hrsam embed` "
                             "(no napari-hrsam-embeddings marker)")
        if int(attrs.get("version", 0)) > VERSION:
            raise ValueError(f"'{path}' was written by a newer napari-hrsam "
                             f"(format version {attrs['version']}); upgrade napari-hrsam")
        self.attrs = attrs
        self.version = int(attrs.get("version", 1))
        # version 1 names entries by position and keeps the content key in each entry's attrs
        self._by_key = ({dict(group[name].attrs)["key"]: name for name, _ in group.arrays()}
                        if self.version == 1 else None)

    # -- opening
    @classmethod
    def open(cls, path, writable: bool = False) -> "EmbeddingStore":
        """An existing store (``writable``: to add to it, e.g. from many workers at once)."""
        zarr = _zarr()
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"No embedding store at '{path}'; make one with "
                                    "`hrsam embed IMAGE --out STORE.zarr`")
        try:
            group = zarr.open_group(str(path), mode="r+" if writable else "r")
        except Exception as err:  # zarr raises several types for a non-store folder
            raise ValueError(f"'{path}' is not a zarr embedding store ({err})") from None
        store = cls(group, path)
        if writable and store.version < VERSION:
            raise ValueError(f"'{path}' is a version {store.version} store, read-only here: embed into a new store")
        return store

    @classmethod
    def create(cls, path, *, model_name: str, model_fingerprint: str, target_size: int,
               contrast_limits=None, overwrite: bool = False) -> "EmbeddingStore":
        zarr = _zarr()
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"'{path}' already exists; choose another --out or pass "
                                  "--overwrite")
        group = zarr.open_group(str(path), mode="w")
        group.create_group(ENTRIES)
        group.create_group(SOURCES)
        group.attrs.update({
            "format": FORMAT, "version": VERSION, "model_name": model_name,
            "model_fingerprint": model_fingerprint, "target_size": int(target_size),
            "contrast_limits": jsonable_limits(contrast_limits),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })
        return cls(group, path)

    # -- metadata
    @property
    def model_name(self) -> str:
        return self.attrs["model_name"]

    @property
    def model_fingerprint(self) -> str:
        return self.attrs["model_fingerprint"]

    @property
    def target_size(self) -> int:
        return int(self.attrs["target_size"])

    @property
    def contrast_limits(self):
        """The contrast setting the slices were embedded with: pass it to ``Session``."""
        return self.attrs["contrast_limits"]

    @property
    def sources(self) -> list[dict]:
        """The images embedded (version 2: in path order, each with its ``sha``)."""
        if self.version == 1:
            return list(self.attrs["sources"])
        return sorted((dict(group.attrs) for _, group in self._group[SOURCES].groups()), key=lambda s: s["path"])

    def entry_names(self) -> list[str]:
        if self.version == 1:
            return sorted(name for name, _ in self._group.arrays())
        return sorted(name for name, array in self._group[ENTRIES].arrays() if array.attrs.get("complete"))

    def entries(self) -> list[dict]:
        """Metadata of every stored slice (no features read)."""
        return [dict(self._entry_array(name).attrs) | {"name": name} for name in self.entry_names()]

    def __len__(self) -> int:
        return len(self._by_key) if self.version == 1 else len(self.entry_names())

    def __contains__(self, key: str) -> bool:
        return self._name_of(key) is not None

    def find_source(self, array):
        """The source with ``array``'s content (version 1: its index, version 2: its sha), or None."""
        sha = array_sha(array)
        if self.version == 1:
            return next((i for i, s in enumerate(self.sources) if s["sha"] == sha), None)
        return sha if sha in self._group[SOURCES] else None

    # -- reading and writing
    def load(self, key: str):
        """The stored ``ImageEmbedding`` (float32 features on the CPU) for a content key,
        or None."""
        import torch

        from hrsam_model import ImageEmbedding

        name = self._name_of(key)
        if name is None:
            return None
        array = self._entry_array(name)
        attrs = dict(array.attrs)
        features = torch.from_numpy(np.asarray(array[...], dtype=np.float32))
        return ImageEmbedding(features, tuple(attrs["image_shape"]),
                              tuple(attrs["resized_shape"]), self.target_size,
                              self.model_name)

    def add_source(self, path: str, array, axis: int | None, rgb: bool) -> str:
        """Record a source image; returns its sha. Writers of the same image write the same bytes."""
        sha = array_sha(array)
        group = self._group[SOURCES].require_group(sha)
        group.attrs.update({"path": str(path), "shape": list(np.shape(array)), "dtype": str(np.asarray(array).dtype),
                            "sha": sha, "axis": axis, "rgb": bool(rgb)})
        return sha

    def add(self, key: str, embedding, contrast_limits, **info) -> None:
        """Store one embedding (float16) under its content key, ``complete`` marked last: a
        writer killed before that leaves an entry no reader takes, and a rerun rewrites it."""
        features = embedding.features.detach().float().cpu().numpy().astype(np.float16)
        array = _create_array(self._group[ENTRIES], key, features)
        array.attrs.update({
            "image_shape": list(embedding.image_shape), "resized_shape": list(embedding.resized_shape),
            "slice_contrast_limits": jsonable_limits(contrast_limits), **info,
        })
        array.attrs["complete"] = True

    def _name_of(self, key: str) -> str | None:
        if self.version == 1:
            return self._by_key.get(key)
        entries = self._group[ENTRIES]
        return key if key in entries and entries[key].attrs.get("complete") else None

    def _entry_array(self, name: str):
        return self._group[name] if self.version == 1 else self._group[ENTRIES][name]


# ----------------------------------------------------------------------------- helpers
def _zarr():
    try:
        import zarr
    except ImportError:
        raise ImportError("embedding stores need zarr: pip install zarr") from None
    return zarr


def _create_array(group, name: str, data: np.ndarray):
    if hasattr(group, "create_array"):  # zarr 3
        array = group.create_array(name, shape=data.shape, chunks=data.shape, dtype=data.dtype, overwrite=True)
    else:  # zarr 2
        array = group.create_dataset(name, shape=data.shape, chunks=data.shape, dtype=data.dtype, overwrite=True)
    array[...] = data
    return array


def jsonable_limits(limits):
    if limits is None:
        return None
    return np.asarray(limits, dtype=float).tolist()
