"""``python -m napari_hrsam.cli``: the ``hrsam`` command without its console script."""
import sys

from .main import main

sys.exit(main())
