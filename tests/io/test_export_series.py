"""Export of saved work (COCO, TIFF) and image series, from Python and the command line."""
import json

import numpy as np
import pytest
import tifffile

from _session_fakes import FakePredictor, disk
from napari_hrsam import Session
from napari_hrsam.cli.main import main
from napari_hrsam.io.export import export
from napari_hrsam.io.series import Series


def saved_work(folder, shape=(80, 120)):
    image = disk(shape, (20, 30), 8) + disk(shape, (50, 80), 10)
    session = Session(image, FakePredictor(target_size=256), autosave=folder)
    for point in ((20, 30), (50, 80)):
        session.add_point(point)
        session.commit()
    return session


def test_coco_export_round_trips_through_pycocotools(tmp_path):
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO

    session = saved_work(tmp_path / "a.tif.hrsam")
    volume = np.stack([disk((60, 60), (30, 30), 9)] * 3)
    vol_session = Session(volume, FakePredictor(target_size=256), position=(1,), autosave=tmp_path / "vol.hrsam")
    vol_session.add_point((30, 30))
    vol_session.commit()
    counts = export(tmp_path, tmp_path / "out", "coco")
    assert counts == {"images": 2, "objects": 3, "annotations": 3}  # the volume's one labelled slice
    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    first = coco.loadImgs(coco.getImgIds())[0]
    assert first["file_name"] == "a.tif" and (first["height"], first["width"]) == (80, 120)
    for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[first["id"]])):
        mask = coco.annToMask(annotation).astype(bool)
        assert annotation["area"] == coco_mask.area(coco.annToRLE(annotation))
        assert annotation["bbox"] == coco_mask.toBbox(coco.annToRLE(annotation)).tolist()
        np.testing.assert_array_equal(mask, session.labels == annotation["attributes"]["label_id"])
    assert coco.loadImgs(coco.getImgIds())[1]["file_name"] == "vol_z0001"
    prompts = json.loads((tmp_path / "out" / "a.tif_prompts.json").read_text())
    assert prompts["1"]["slices"][0]["prompts"]["points"] == [[20.0, 30.0]]


def test_tiff_export_and_the_command_line(tmp_path, capsys):
    session = saved_work(tmp_path / "work")
    assert main(["export", str(tmp_path / "work"), "--format", "tiff", "--out", str(tmp_path / "out")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "work_labels.tif"), session.labels)
    assert "exported 2 object(s) of 1 image(s)" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) != 0
    assert "is not a folder" in capsys.readouterr().err


def test_a_series_keeps_its_progress_and_each_images_work(tmp_path, capsys):
    for name in ("b.tif", "a.tif", "c.png"):
        tifffile.imwrite(tmp_path / name, np.zeros((8, 8), np.uint8)) if name.endswith("tif") else \
            (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    series = Series.open(tmp_path)
    assert [p.name for p in series.images] == ["a.tif", "b.tif", "c.png"] and series.progress == (0, 3)
    series.set_done(0)
    series.go(1)
    saved_work(series.autosave_folder(1))
    reopened = Series.open(tmp_path)
    assert reopened.progress == (1, 3) and reopened.current == 1 and reopened.is_done(0)
    assert [e.objects for e in reopened.entries()] == [0, 2, 0]
    assert main(["series", "status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1 of 3 done" in out and "b.tif" in out and "2 object(s)  current" in out


def test_bad_series_are_refused(tmp_path):
    with pytest.raises(ValueError, match="holds no images"):
        Series.open(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        Series.open(tmp_path / "missing")
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for folder in ("x", "y"):
        tifffile.imwrite(tmp_path / folder / "same.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="share a file name"):
        Series.open([tmp_path / "x" / "same.tif", tmp_path / "y" / "same.tif"])
