import sys
from pathlib import Path

# tests import their helpers (official_reference, fixtures) by module name
sys.path.insert(0, str(Path(__file__).parent))


import tempfile  # noqa: E402

import pytest  # noqa: E402


def _takes_files(folder) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder nobody here may create files in: a 0o555 folder, or /sys where permissions do
    not bind (root); skips where neither refuses a new file."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        for candidate in (folder, Path("/sys")):
            if candidate.is_dir() and not _takes_files(candidate):
                yield candidate
                return
        pytest.skip("no folder here refuses new files")
    finally:
        folder.chmod(0o755)
