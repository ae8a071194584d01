"""hrsam embed over many volumes as Dask tasks: slabs written at once into one version 2 store by
two worker processes hold what the in-process run holds; a rerun encodes nothing."""
import numpy as np
import SimpleITK as sitk

from _session_fakes import disk
from napari_hrsam.cli.main import main
from napari_hrsam.engine.embedding_store import EmbeddingStore


def volumes(folder, count=2, depth=4):
    folder.mkdir()
    for k in range(count):
        volume = np.stack([disk((48, 64), (24, 20 + 8 * k + 2 * z), 8 + z).astype(np.int16) * 5 for z in range(depth)])
        sitk.WriteImage(sitk.GetImageFromArray(volume), str(folder / f"vol{k}.nii.gz"))
    return folder


def stored(path):
    store = EmbeddingStore.open(path)
    return {e["name"]: np.asarray(store._group["entries"][e["name"]][...]) for e in store.entries()}


def test_slabs_from_two_workers_fill_the_store_the_serial_run_fills(tmp_path, capsys):
    folder = volumes(tmp_path / "in")
    assert main(["embed", str(folder), "--out", str(tmp_path / "serial.zarr")]) == 0
    code = main(["embed", str(folder / "*.nii.gz"), "--out", str(tmp_path / "dask.zarr"), "--workers", "2",
                 "--slices-per-task", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "stored 8 embedding(s) from 2 image(s)" in out and "8 encoder pass(es)" in out
    serial, parallel = stored(tmp_path / "serial.zarr"), stored(tmp_path / "dask.zarr")
    assert serial.keys() == parallel.keys() and len(serial) == 8
    for key in serial:
        np.testing.assert_array_equal(serial[key], parallel[key])
    assert len(EmbeddingStore.open(tmp_path / "dask.zarr").sources) == 2

    code = main(["embed", str(folder), "--out", str(tmp_path / "dask.zarr"), "--resume"])
    assert code == 0 and "0 encoder pass(es) (8 already there)" in capsys.readouterr().out


def test_a_bad_volume_among_good_ones_is_reported(tmp_path, capsys):
    folder = volumes(tmp_path / "in", count=1)
    (folder / "broken.nii.gz").write_bytes(b"not a volume")
    code = main(["embed", str(folder / "vol0.nii.gz"), str(folder / "broken.nii.gz"), "--out",
                 str(tmp_path / "s.zarr")])
    captured = capsys.readouterr()
    assert code == 1 and "FAILED" in captured.err and "broken.nii.gz" in captured.err
    assert len(EmbeddingStore.open(tmp_path / "s.zarr")) == 4
