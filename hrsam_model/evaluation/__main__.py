"""``python -m hrsam_model.evaluation ARGS`` is ``hrsam eval ARGS``."""
import sys

from napari_hrsam.cli.main import main

sys.exit(main(["eval", *sys.argv[1:]]))
