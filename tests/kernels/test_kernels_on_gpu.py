"""The Triton kernels and the bundled model on a CUDA GPU, at the sizes the model really runs.

Skipped without CUDA (the interpreter is far too slow at these sizes; the small-size Triton tests
in test_window_attention.py and test_selective_scan.py cover the logic on the CPU). On a GPU
machine: `python -m pytest tests/test_kernels_on_gpu.py` (benchmarks/gpu_session.sh runs it).
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from hrsam_kernels import selective_scan, window_attention, window_index
from test_selective_scan import reference as scan_reference  # float64, one step per token
from test_window_attention import (
    reference as attention_reference,  # float64, dense per window
    rel_err,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
pytestmark = needs_cuda


def triton_imports() -> bool:
    from hrsam_kernels._dispatch import import_triton

    return import_triton() is not None


needs_triton = pytest.mark.skipif(not triton_imports(), reason="needs triton (the gpu extra)")

# limits on ||out - ref|| / ||ref|| against float64 on the same (rounded) inputs: fp32 keeps fp32
# products; half-precision outputs are themselves rounded to 8 (bf16) or 11 (fp16) bits
TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 1e-2, torch.float16: 2e-3}


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shift", [0, 8])
@pytest.mark.parametrize("grids,batch", [([(64, 64)], 1), ([(50, 70)], 2), ([(64, 64), (32, 32), (16, 16)], 1)])
def test_triton_attention_matches_float64_at_vit_b_width(grids, batch, shift, dtype):
    windows = window_index(grids, batch, shift=shift, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(shift + batch)
    heads, dim, slots = 12, 64, 16 * 16
    q, k, v = (torch.randn(windows.num_tokens, heads, dim, device="cuda", generator=g).to(dtype) for _ in range(3))
    pad_k = torch.randn(slots, heads, dim, device="cuda", generator=g).to(dtype)
    pad_v = torch.randn(heads, dim, device="cuda", generator=g).to(dtype)
    ref = attention_reference(q, k, v, windows, pad_k, pad_v, dim**-0.5)
    for backend in ("triton", "torch"):
        out = window_attention(q, k, v, windows, pad_k, pad_v, backend=backend)
        assert out.dtype == dtype and not out.isnan().any(), backend
        assert rel_err(out, ref) < TOLERANCE[dtype], (backend, rel_err(out, ref))


@needs_triton
def test_triton_attention_writes_every_row_at_scale():
    from hrsam_kernels._triton_attention import attention_triton

    windows = window_index([(61, 83)], 2, shift=8, device="cuda")
    q, k, v = (torch.randn(windows.num_tokens, 12, 64, device="cuda") for _ in range(3))
    pad_k, pad_v = torch.randn(256, 12, 64, device="cuda"), torch.randn(12, 64, device="cuda")
    out = attention_triton(q, k, v, windows, pad_k, pad_v, 0.125, out=torch.full_like(q, float("nan")))
    assert not out.isnan().any(), "some token rows were never written"


@needs_triton
def test_triton_attention_gradients_match_torch_path():
    windows = window_index([(40, 56)], 1, shift=8, device="cuda")
    inputs = [torch.randn(windows.num_tokens, 12, 64, device="cuda", dtype=torch.float64) for _ in range(3)]
    inputs += [torch.randn(256, 12, 64, device="cuda", dtype=torch.float64),
               torch.randn(12, 64, device="cuda", dtype=torch.float64)]
    ref_inputs = [t.clone().requires_grad_() for t in inputs]
    ours = [t.float().requires_grad_() for t in inputs]
    weight = torch.randn(windows.num_tokens, 12, 64, device="cuda", dtype=torch.float64)
    (attention_reference(*ref_inputs[:3], windows, *ref_inputs[3:], 0.125) * weight).sum().backward()
    (window_attention(*ours[:3], windows, *ours[3:], backend="triton") * weight.float()).sum().backward()
    for name, a, b in zip(("q", "k", "v", "pad_k", "pad_v"), ours, ref_inputs):
        assert rel_err(a.grad, b.grad) < 1e-4, name


def scan_inputs(b, length, c, n, dtype, seed):
    g = torch.Generator(device="cuda").manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, device="cuda", generator=g)  # noqa: E731
    u, delta = randn(b, length, c), randn(b, length, c) * 2 - 1
    A = -torch.exp(randn(c, n) * 2)  # dt*|A| from ~0 to hundreds, as in trained models
    B, C, D, bias = randn(b, length, n), randn(b, length, n), randn(c), randn(c) * 0.5
    return [t.to(dtype) if t.dim() == 3 else t for t in (u, delta, A, B, C, D, bias)]


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("b,length,c,n", [(1, 4096, 192, 16), (2, 1000, 768, 32), (1, 4096 + 1024 + 256, 192, 16)])
def test_triton_scan_matches_float64_at_model_size(b, length, c, n, dtype):
    data = scan_inputs(b, length, c, n, dtype, seed=length + c)
    ref = scan_reference(*data, 3)
    for backend in ("triton", "torch"):
        y = selective_scan(*data, cycles=3, backend=backend)
        assert y.dtype == torch.float32 and y.shape == ref.shape, backend
        assert rel_err(y, ref) < 1e-4, (backend, rel_err(y, ref))  # float32 state on both paths


@needs_triton
def test_triton_scan_gradients_match_float64():
    data = scan_inputs(1, 300, 64, 16, torch.float64, seed=9)
    ref_inputs = [t.clone().requires_grad_() for t in data]
    ours = [t.float().requires_grad_() for t in data]
    weight = torch.randn(1, 3, 300, 64, device="cuda", dtype=torch.float64)
    (scan_reference(*ref_inputs, 3) * weight).sum().backward()
    (selective_scan(*ours, cycles=3, backend="triton") * weight.float()).sum().backward()
    for name, a, b in zip(("u", "delta", "A", "B", "C", "D", "delta_bias"), ours, ref_inputs):
        assert rel_err(a.grad, b.grad) < 1e-4, name


def test_bundled_model_gives_the_cpu_masks_on_the_gpu():
    """A user with a GPU gets the masks the CPU gives: same embedding, same clicks, same IoUs."""
    import tifffile

    from hrsam_model import Predictor, build_model
    from hrsam_model.evaluation.datasets import Instance
    from hrsam_model.evaluation.runner import evaluate

    data = Path(__file__).parent.parent / "data"
    image = tifffile.imread(data / "nuclei_val_crop.tif")
    labels = tifffile.imread(data / "nuclei_val_crop_labels.tif")
    nuclei = [Instance(image, labels == v, f"nucleus{v}", "nuclei") for v in np.unique(labels) if v]
    cpu, gpu = (Predictor(build_model("hrsam_tiny", pretrained=True), device=d) for d in ("cpu", "cuda"))
    emb_cpu, emb_gpu = cpu.embed(image).features, gpu.embed(image).features
    assert rel_err(emb_gpu.cpu(), emb_cpu) < 1e-2  # cuDNN convolutions may use TF32
    ious_cpu = np.array([r.ious[:3] for r in evaluate(cpu, nuclei, num_clicks=3)])
    ious_gpu = np.array([r.ious[:3] for r in evaluate(gpu, nuclei, num_clicks=3)])
    assert np.abs(ious_gpu - ious_cpu).max() < 0.02, (ious_cpu.round(3), ious_gpu.round(3))
    assert ious_gpu.max(1).mean() >= 0.8
