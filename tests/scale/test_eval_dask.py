"""`hrsam eval` as Dask tasks: the same tables in this process and on a LocalCluster, results kept
per unit in --out, and a rerun that clicks nothing again."""
import numpy as np
import pytest
import tifffile

from _session_fakes import disk
from napari_hrsam.cli.main import main


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(3)
    for k in range(5):
        centre = tuple(int(v) for v in rng.integers(30, 66, 2))
        image = disk((96, 96), centre, int(rng.integers(8, 16)), value=200).astype(np.uint8)
        tifffile.imwrite(folder / f"image_{k:04d}.tif", image)
        tifffile.imwrite(folder / f"mask_{k:04d}.tif", (image > 100).astype(np.uint8))
    return folder


def without_times(table: str) -> list[str]:
    """The table's lines with the two timing columns (s/click, enc s) cut off the rows."""
    lines = []
    for line in table.splitlines():
        fields = line.split()
        lines.append(" ".join(fields[:-2]) if fields and fields[0].startswith(("hrsam_tiny", "grabcut")) else line)
    return lines


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_local_cluster_prints_the_serial_tables_and_a_rerun_reads_its_units(pairs, tmp_path, capsys):
    argv = ["eval", "--data", pairs, "--clicks", "3", "--baselines", "grabcut"]
    code, serial, _ = run(capsys, *argv)
    assert code == 0 and "5 instances, 3 clicks" in serial
    code, parallel, err = run(capsys, *argv, "--workers", "2", "--instances-per-task", "2", "--out", tmp_path / "out")
    assert code == 0, err
    assert "dask dashboard" in err
    assert without_times(parallel) == without_times(serial)
    units = sorted((tmp_path / "out" / "units").glob("*.json"))
    assert len(units) == 6  # 3 runs of <= 2 instances, for the model and for grabcut
    assert (tmp_path / "out" / "eval.txt").read_text().strip() == parallel.strip()
    stamps = [p.stat().st_mtime_ns for p in units]
    code, again, err = run(capsys, *argv, "--instances-per-task", "2", "--out", tmp_path / "out")
    assert code == 0 and "6 of 6 unit(s) read" in err
    assert again == parallel  # the stored units, timings included
    assert [p.stat().st_mtime_ns for p in units] == stamps  # nothing rewritten


def test_other_settings_do_not_reuse_stored_units(pairs, tmp_path, capsys):
    out = tmp_path / "out"
    code, first, _ = run(capsys, "eval", "--data", pairs, "--clicks", "2", "--no-model", "--baselines", "grabcut",
                         "--out", out)
    assert code == 0 and "2 clicks" in first
    code, second, err = run(capsys, "eval", "--data", pairs, "--clicks", "3", "--no-model", "--baselines", "grabcut",
                            "--out", out)
    assert code == 0 and "read from" not in err and "3 clicks" in second
    assert len(list((out / "units").glob("*.json"))) == 2


def test_several_data_folders_by_glob_give_one_table_each(pairs, tmp_path, capsys):
    import shutil

    for name in ("plate_a", "plate_b"):
        shutil.copytree(pairs, tmp_path / name)
    code, out, _ = run(capsys, "eval", "--data", tmp_path / "plate_*", "--no-model", "--baselines", "grabcut",
                       "--clicks", "2")
    assert code == 0
    assert f"{tmp_path / 'plate_a'} (folder), 5 instances" in out and f"{tmp_path / 'plate_b'} (folder)" in out
    code, _, err = run(capsys, "eval", "--data", tmp_path / "none_*", "--no-model", "--baselines", "grabcut")
    assert code == 1 and err.count("\n") == 1 and "No folders match" in err
