import sys
from pathlib import Path

# tests import their helpers (official_reference, fixtures) by module name
sys.path.insert(0, str(Path(__file__).parent))
