"""napari plugin, interactive session and command line for HRSAM."""
