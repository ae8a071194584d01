"""Segment everything over many images as Dask tasks: the same outputs in this process, on a
LocalCluster and on a separately started scheduler; a killed worker, a resume and bad inputs."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from _session_fakes import disk
from napari_hrsam.cli.main import main
from napari_hrsam.engine.model_choice import ModelChoice
from napari_hrsam.scale.batch import AutoUnit, segment_unit, unit_inputs
from napari_hrsam.scale.executor import run_units

CHOICE = ModelChoice("hrsam_tiny", "", "cpu", 1024, False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(0)
    for k in range(6):
        image = np.zeros((96, 96), np.uint8)
        for _ in range(3):
            image = np.maximum(image, disk((96, 96), tuple(rng.integers(15, 80, 2)), 9, value=200))
        tifffile.imwrite(folder / f"img{k}.tif", image)
    return folder


@pytest.fixture(scope="module")
def serial_run(images, tmp_path_factory):
    """The in-process run every other run must match: (summaries, outputs)."""
    out = tmp_path_factory.mktemp("serial")
    summaries = run_units(segment_unit, units_for(images, out), CHOICE, workers=0, threads=1)
    return summaries, outputs(out)


def units_for(folder, out):
    return [AutoUnit(p, str(out), density=8) for p in unit_inputs([folder])]


def outputs(out: Path) -> dict:
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
    return {p.name: tifffile.imread(p) for p in sorted(out.glob("*_labels.tif"))}


def test_a_local_cluster_writes_what_the_serial_run_writes_and_a_resume_encodes_nothing(images, serial_run,
                                                                                           tmp_path):
    serial, first = serial_run
    assert all(s["error"] is None for s in serial) and sum(s["objects"] for s in serial) >= 6
    parallel = run_units(segment_unit, units_for(images, tmp_path / "dask"), CHOICE, workers=2, threads=1,
                         log=lambda text: None)
    assert len({s["pid"] for s in parallel}) == 2  # both workers took units
    second = outputs(tmp_path / "dask")
    assert first.keys() == second.keys() and len(first) == 6
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    again = run_units(segment_unit, units_for(images, tmp_path / "dask"), CHOICE, workers=0, threads=1)
    assert all(s["skipped"] for s in again) and sum(s["encoder_passes"] for s in again) == 0


def test_a_killed_worker_loses_nothing(images, serial_run, tmp_path):
    serial, first = serial_run
    killed = []

    def kill_one(done, total, summary):
        if not killed and summary["pid"] != os.getpid():
            os.kill(summary["pid"], signal.SIGKILL)
            killed.append(summary["pid"])

    results = run_units(segment_unit, units_for(images, tmp_path / "dask"), CHOICE, workers=2, threads=1,
                        progress=kill_one, log=lambda text: None)
    assert killed and all(r is not None and r["error"] is None for r in results)
    second = outputs(tmp_path / "dask")
    assert first.keys() == second.keys() and len(first) == 6
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert len(list((tmp_path / "dask").glob("*.done.json"))) == 6
    assert [s["objects"] for s in serial] == [r["objects"] for r in results]


def test_bad_inputs_are_reported_and_the_rest_is_done(images, tmp_path, capsys):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for k in range(2):
        (mixed / f"img{k}.tif").write_bytes((images / f"img{k}.tif").read_bytes())
    tifffile.imwrite(mixed / "nan.tif", np.full((40, 40), np.nan, np.float32))
    (mixed / "broken.tif").write_bytes(b"not a tiff")
    code = main(["segment", str(mixed), "--auto", "--density", "8", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert "2 of 4 images segmented" in captured.out
    assert "FAILED" in captured.err and "nan.tif" in captured.err and "broken.tif" in captured.err
    assert len(outputs(tmp_path / "out")) == 2


def test_a_scheduler_and_workers_started_apart(images, serial_run, tmp_path, capsys):
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    bin_dir = Path(sys.executable).parent
    procs = [subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(scheduler_file)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(100):
            if scheduler_file.is_file():
                break
            time.sleep(0.2)
        for _ in range(2):
            procs.append(subprocess.Popen([str(bin_dir / "dask"), "worker", "--scheduler-file", str(scheduler_file),
                                           "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(scheduler_file=str(scheduler_file)) as client:
            client.wait_for_workers(2, timeout=60)
        code = main(["segment", str(images / "img*.tif"), "--auto", "--density", "8", "--out", str(tmp_path / "remote"),
                     "--scheduler", str(scheduler_file)])
        assert code == 0 and "6 of 6 images segmented" in capsys.readouterr().out
    finally:
        for proc in procs[::-1]:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    first, second = serial_run[1], outputs(tmp_path / "remote")
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
