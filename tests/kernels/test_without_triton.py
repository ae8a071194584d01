"""A CPU install has no triton (it is the optional `gpu` extra): everything must still work.

Each check runs in a fresh interpreter where `import triton` raises ImportError
(`sys.modules["triton"] = None`), as on a machine where triton was never installed.
"""
import json
import subprocess
import sys

import pytest

from hrsam_model import bundled_weights_path

NO_TRITON = "import sys\nsys.modules['triton'] = None  # import triton -> ImportError\n"


def run_without_triton(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TRITON + code], capture_output=True, text=True,
                          timeout=600)


def test_kernels_take_the_pytorch_path_and_explain_an_explicit_triton_request():
    code = """
import torch
import hrsam_kernels as hk
from hrsam_kernels._dispatch import import_triton

assert import_triton() is None
u = torch.randn(1, 8, 4)
y = hk.selective_scan(u, u, -torch.ones(4, 2), torch.randn(1, 8, 2), torch.randn(1, 8, 2), cycles=2)
assert y.shape == (1, 2, 8, 4) and torch.isfinite(y).all()
w = hk.window_index([(4, 4)], 1)
q = torch.randn(16, 1, 16)
out = hk.window_attention(q, q, q, w, torch.randn(256, 1, 16), torch.randn(1, 16))
assert out.shape == q.shape and torch.isfinite(out).all()
try:
    hk.window_attention(q, q, q, w, torch.randn(256, 1, 16), torch.randn(1, 16), backend="triton")
except ValueError as error:
    print(error)
"""
    result = run_without_triton(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pip install 'napari-hrsam[gpu]'" in result.stdout


@pytest.mark.skipif(not bundled_weights_path("hrsam_tiny").is_file(),
                    reason="the bundled hrsam_tiny weights are not in this checkout")
def test_demo_segments_with_the_bundled_model_without_triton(tmp_path):
    code = f"""
from napari_hrsam.cli.main import main
sys.exit(main(["demo", "--out", {str(tmp_path)!r}, "--objects", "1", "--clicks", "2"]))
"""
    result = run_without_triton(code)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["weights"] == "bundled"
    assert results["objects"][0]["ious"][-1] >= 0.4, result.stdout
