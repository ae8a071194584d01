"""Plain `python -m pytest` executes the notebooks top to bottom through nbmake (no
--nbmake flag needed); with --nbmake, nbmake collects them itself."""
from pathlib import Path


def pytest_collect_file(file_path: Path, parent):
    if (file_path.suffix == ".ipynb" and not parent.config.option.nbmake
            and ".ipynb_checkpoints" not in file_path.parts):
        from nbmake.pytest_items import NotebookFile

        return NotebookFile.from_parent(parent, path=file_path)
