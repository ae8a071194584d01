"""The widget's autosave in a real viewer: on by default for an image from a file, resumed when
the image is opened again (fake predictor)."""
import numpy as np
import tifffile

from test_widget import click, dock, messages, two_disks, wait_idle  # noqa: F401 (fixture)


def test_work_on_a_file_is_autosaved_and_resumed_in_a_new_viewer(make_napari_viewer, qtbot, tmp_path):
    path = tmp_path / "disks.tif"
    tifffile.imwrite(path, two_disks())
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari")
    widget = dock(viewer)
    assert widget.autosave_edit.text() == str(tmp_path / "disks.tif.hrsam")
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    widget.commit()
    assert (tmp_path / "disks.tif.hrsam" / "session.json").is_file()
    assert "autosaving to" in widget.status_label.text()
    saved = widget.labels_layer.data.copy()
    viewer.close()

    again = make_napari_viewer()
    again.open(str(path), plugin="napari")
    widget = dock(again)
    wait_idle(qtbot, widget)
    assert widget.session is not None and set(widget.session.objects) == {1}
    np.testing.assert_array_equal(widget.labels_layer.data, saved)
    click(widget.points_layer, (80, 115))
    wait_idle(qtbot, widget)
    widget.commit()
    assert widget.labels_layer.data[80, 115] == 2  # the ids continue


def test_an_image_without_a_file_is_not_autosaved_until_a_folder_is_given(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    viewer.add_image(two_disks(), name="disks")
    widget = dock(viewer)
    assert widget.autosave_folder() is None
    widget.autosave_edit.setText(str(tmp_path / "mine"))
    widget.autosave_edit.editingFinished.emit()
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    widget.commit()
    assert (tmp_path / "mine" / "session.json").is_file()


def test_a_series_goes_image_by_image_and_resumes(make_napari_viewer, qtbot, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    tifffile.imwrite(folder / "one.tif", two_disks())
    tifffile.imwrite(folder / "two.tif", two_disks((100, 140)))  # another size
    viewer = make_napari_viewer()
    widget = dock(viewer)
    assert widget.open_series(folder)
    assert widget.image_layer.name == "one" and "image 1 of 2, 0 of 2 done" in widget.series_label.text()
    click(widget.points_layer, (40, 50))
    wait_idle(qtbot, widget)
    widget.commit()
    assert widget.next_image()
    assert widget.image_layer.name == "two" and [layer.name for layer in viewer.layers].count("one") == 0
    assert "image 2 of 2, 1 of 2 done" in widget.series_label.text()
    click(widget.points_layer, (80, 115))
    wait_idle(qtbot, widget)
    assert not widget.previous_image()  # an object in progress: commit or reset it first
    widget.commit()
    assert widget.previous_image()
    np.testing.assert_array_equal(widget.labels_layer.data[40, 50], 1)  # its work came back
    viewer.close()

    again = make_napari_viewer()
    widget = dock(again)
    assert widget.open_series(folder)  # resumes at the image the user was on
    assert widget.image_layer.name == "one" and "1 of 2 done" in widget.series_label.text()
    assert set(widget.session.objects) == {1}
