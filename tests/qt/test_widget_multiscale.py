"""A multiscale image layer (an OME-Zarr pyramid) in the widget: the session gets the pyramid and
masks land at full resolution."""

from _session_fakes import disk
from test_widget import click, dock, wait_idle


def test_a_pyramid_layer_is_segmented_at_full_resolution(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    full = disk((1024, 1024), (300, 400), 60)
    viewer.add_image([full, full[::2, ::2], full[::4, ::4]], multiscale=True, name="pyramid")
    widget = dock(viewer)
    click(widget.points_layer, (300, 400))
    wait_idle(qtbot, widget)
    assert widget.preview_layer.data.shape == (1024, 1024)
    truth = full > 0
    shown = widget.preview_layer.data > 0
    assert (shown & truth).sum() / (shown | truth).sum() >= 0.97
