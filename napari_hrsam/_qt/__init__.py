"""The napari dock widget and everything that needs Qt; segmentation itself lives in
``napari_hrsam.engine``."""
