"""Cycle-scan selective scan against a float64 step-by-step reference."""
import pytest
import torch
import torch.nn.functional as F

from hrsam_kernels import selective_scan
from hrsam_kernels.selective_scan import scan_torch


def reference(u, delta, A, B, C, D, delta_bias, cycles):
    """Mamba-1 recurrence in float64, one step at a time over the repeated sequence."""
    u, delta, A, B, C = (t.double() for t in (u, delta, A, B, C))
    dt = F.softplus(delta + (delta_bias.double() if delta_bias is not None else 0.0))
    b, length, c = u.shape
    h = u.new_zeros(b, c, A.shape[1])
    ys = []
    for step in range(cycles * length):
        t = step % length
        h = torch.exp(dt[:, t, :, None] * A) * h + (dt[:, t] * u[:, t])[..., None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = torch.stack(ys, 1).view(b, cycles, length, c)
    if D is not None:
        y = y + D.double() * u[:, None]
    return y


def random_inputs(b, length, c, n, seed=0, extreme=False, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, length, c, generator=g)
    delta = torch.randn(b, length, c, generator=g)
    A = -torch.exp(torch.randn(c, n, generator=g))
    B = torch.randn(b, length, n, generator=g)
    C = torch.randn(b, length, n, generator=g)
    D = torch.randn(c, generator=g)
    bias = torch.randn(c, generator=g) * 0.5
    if extreme:
        # trained models reach dt of several units and A far below -32: dt*|A| in the hundreds
        delta = delta * 4 + 2
        A = -torch.logspace(-3, 2, n).expand(c, n).clone()
        u = u * 10
    return [t.to(dtype) for t in (u, delta, A, B, C, D, bias)]


def rel_err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize(
    "b,length,c,n,cycles,extreme",
    [(1, 17, 8, 4, 1, False), (2, 33, 12, 16, 3, False), (2, 64, 8, 16, 3, True), (1, 5, 3, 2, 2, True)],
)
def test_torch_path_matches_reference(b, length, c, n, cycles, extreme):
    u, delta, A, B, C, D, bias = random_inputs(b, length, c, n, seed=length, extreme=extreme)
    y = selective_scan(u, delta, A, B, C, D, bias, cycles=cycles, backend="torch")
    assert y.shape == (b, cycles, length, c) and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    assert rel_err(y, reference(u, delta, A, B, C, D, bias, cycles)) < 1e-4


@pytest.mark.parametrize("steps", [1, 3, 8, 64])
def test_any_chunk_length_gives_the_same_scan(steps):
    # chunk lengths that divide the sequence, leave padding, or exceed it
    u, delta, A, B, C, D, bias = random_inputs(2, 21, 5, 4, seed=steps, extreme=True)
    ref = reference(u, delta, A, B, C, D, bias, 3)
    inputs = [t.clone().requires_grad_() for t in (u, delta, A, B, C, D, bias)]
    y = scan_torch(*inputs, cycles=3, steps=steps)
    assert rel_err(y, ref) < 1e-4
    y.sum().backward()
    ref_inputs = [t.double().requires_grad_() for t in (u, delta, A, B, C, D, bias)]
    reference(*ref_inputs, 3).sum().backward()
    for name, a, b in zip(("u", "delta", "A", "B", "C", "D", "delta_bias"), inputs, ref_inputs):
        assert rel_err(a.grad, b.grad) < 1e-4, name


def test_later_cycles_see_the_whole_sequence():
    # The point of the cycle scan: in pass 2 the first token already depends on the last one.
    u, delta, A, B, C, D, bias = random_inputs(1, 20, 4, 8, seed=3)
    y = selective_scan(u, delta, A, B, C, D, bias, cycles=2, backend="torch")
    u2 = u.clone()
    u2[:, -1] += 1.0
    y2 = selective_scan(u2, delta, A, B, C, D, bias, cycles=2, backend="torch")
    assert torch.allclose(y[:, 0, 0], y2[:, 0, 0])  # pass 1 is causal
    assert not torch.allclose(y[:, 1, 0], y2[:, 1, 0])


def test_half_precision_inputs_give_float32_output():
    u, delta, A, B, C, D, bias = random_inputs(1, 24, 8, 4, seed=5)
    y = selective_scan(u.bfloat16(), delta.bfloat16(), A, B.bfloat16(), C.bfloat16(), D, bias, cycles=3,
                       backend="torch")
    ref = reference(u.bfloat16(), delta.bfloat16(), A, B.bfloat16(), C.bfloat16(), D, bias, 3)
    assert y.dtype == torch.float32 and rel_err(y, ref) < 1e-4


@pytest.mark.parametrize("extreme", [False, True])
def test_torch_path_gradients_match_reference(extreme):
    inputs = random_inputs(2, 19, 6, 4, seed=11, extreme=extreme)
    ours = [t.clone().requires_grad_() for t in inputs]
    ref = [t.double().requires_grad_() for t in inputs]
    weight = torch.randn(2, 3, 19, 6)
    (selective_scan(*ours, cycles=3, backend="torch") * weight).sum().backward()
    (reference(*ref, 3) * weight.double()).sum().backward()
    for name, a, b in zip(("u", "delta", "A", "B", "C", "D", "delta_bias"), ours, ref):
        assert rel_err(a.grad, b.grad) < 1e-4, name


def test_bad_shapes_raise():
    u, delta, A, B, C, D, bias = random_inputs(1, 8, 4, 2)
    with pytest.raises(ValueError, match="A must"):
        selective_scan(u, delta, A.T, B, C)
    with pytest.raises(ValueError, match="cycles"):
        selective_scan(u, delta, A, B, C, cycles=0)
    with pytest.raises(ValueError, match="B must"):
        selective_scan(u, delta, A, B[:, :-1], C)


def triton_ready():
    from hrsam_kernels._dispatch import import_triton, triton_interpreted

    return import_triton() is not None and (torch.cuda.is_available() or triton_interpreted())


needs_triton = pytest.mark.skipif(not triton_ready(), reason="triton needs CUDA or TRITON_INTERPRET=1")


@needs_triton
@pytest.mark.parametrize(
    "b,length,c,n,cycles,extreme,chunk",
    [(2, 21, 12, 4, 3, True, 8), (1, 33, 40, 16, 3, False, 16), (1, 5, 3, 2, 2, True, 4),
     (2, 16, 8, 16, 1, False, 256)],
)
def test_triton_kernel_matches_reference(b, length, c, n, cycles, extreme, chunk):
    from hrsam_kernels._triton_scan import scan_triton

    device = "cuda" if torch.cuda.is_available() else "cpu"
    u, delta, A, B, C, D, bias = (t.to(device) for t in random_inputs(b, length, c, n, seed=c, extreme=extreme))
    ref = reference(*(t.cpu() for t in (u, delta, A, B, C, D, bias)), cycles)
    poisoned = torch.full((b, cycles, length, c), float("nan"), device=device)
    y = scan_triton(u, delta, A, B, C, D, bias, True, cycles, chunk=chunk, out=poisoned)
    assert not y.isnan().any(), "some outputs were never written"
    assert rel_err(y.cpu(), ref) < 1e-4
    y = scan_triton(u, delta, A, B, C, None, None, True, cycles, chunk=chunk)
    assert rel_err(y.cpu(), reference(*(t.cpu() for t in (u, delta, A, B, C)), None, None, cycles)) < 1e-4


@needs_triton
def test_triton_backend_dispatch_and_gradients():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    inputs = [t.to(device).requires_grad_() for t in random_inputs(1, 12, 6, 4, seed=2, extreme=True)]
    y = selective_scan(*inputs, cycles=3, backend="triton")
    weight = torch.randn_like(y)
    (y * weight).sum().backward()
    ref_inputs = [t.detach().cpu().double().requires_grad_() for t in inputs]
    (reference(*ref_inputs, 3) * weight.cpu().double()).sum().backward()
    for name, a, b in zip(("u", "delta", "A", "B", "C", "D", "delta_bias"), inputs, ref_inputs):
        assert rel_err(a.grad.cpu(), b.grad) < 1e-4, name


def test_auto_backend_uses_torch_for_cpu_tensors(monkeypatch):
    from hrsam_kernels._dispatch import resolve_backend

    monkeypatch.delenv("HRSAM_KERNELS_BACKEND", raising=False)
    u = torch.zeros(1, 4, 2)
    assert resolve_backend(None, u) == "torch"
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("cuda", u)


def test_import_and_torch_path_leave_triton_unloaded():
    # napari must be able to create its OpenGL context before anything pulls triton in
    import subprocess
    import sys

    code = ("import sys, torch, hrsam_kernels as hk\n"
            "u = torch.randn(1, 8, 4)\n"
            "hk.selective_scan(u, u, -torch.ones(4, 2), torch.randn(1, 8, 2), torch.randn(1, 8, 2), cycles=2)\n"
            "w = hk.window_index([(4, 4)], 1)\n"
            "q = torch.randn(16, 1, 16)\n"
            "hk.window_attention(q, q, q, w, torch.randn(256, 1, 16), torch.randn(1, 16))\n"
            "assert 'triton' not in sys.modules, 'triton was imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_triton_kernels_compile_for_a_gpu():
    # No GPU here: compile every launched variant to sm_80 cubin, which catches what the
    # interpreter cannot (types, tl.dot shapes, shared memory).
    import os
    import subprocess
    import sys

    from hrsam_kernels._dispatch import import_triton

    if import_triton() is None:
        pytest.skip("triton is not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    result = subprocess.run([sys.executable, "-m", "hrsam_kernels._gpu_compile", "80", "scan"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "_carry_kernel" in result.stdout
