"""Window layout and Flash Swin attention against a plain float64 reference."""
import pytest
import torch

from hrsam_kernels import window_attention, window_index
from hrsam_kernels.window_attention import attention_torch

SHAPES = [
    ([(16, 16)], 1),
    ([(24, 20)], 2),
    ([(5, 37)], 1),
    ([(20, 24), (8, 8)], 2),
]


def official_layout(hw_shapes, batch, ws, shift):
    """The official make_indices construction, written out step by step (padding slot = -1)."""
    top = (ws - shift) % ws
    per_item = sum(h * w for h, w in hw_shapes)
    item, start = [], 0
    for h, w in hw_shapes:
        ph, pw = -(-(top + h) // ws) * ws, -(-(top + w) // ws) * ws
        for wr in range(ph // ws):
            for wc in range(pw // ws):
                window = []
                for r in range(wr * ws, wr * ws + ws):
                    for c in range(wc * ws, wc * ws + ws):
                        row, col = r - top, c - top
                        inside = 0 <= row < h and 0 <= col < w
                        window.append(start + row * w + col if inside else -1)
                item.append(window)
        start += h * w
    return torch.tensor([[t + b * per_item if t >= 0 else -1 for t in win]
                         for b in range(batch) for win in item])


def reference(q, k, v, windows, pad_k, pad_v, scale):
    """Dense attention over every full window in float64, then real slots read back."""
    q, k, v, pad_k, pad_v = (t.double() for t in (q, k, v, pad_k, pad_v))
    index = windows.index
    real = index >= 0
    safe = index.clamp(min=0)
    slots = torch.arange(index.shape[1], device=index.device).expand_as(index)
    keys = torch.where(real[..., None, None], k[safe], pad_k[slots])
    values = torch.where(real[..., None, None], v[safe], pad_v.expand_as(v[safe]))
    queries = q[safe]
    logits = torch.einsum("wshd,wthd->whst", queries, keys) * scale
    out = torch.einsum("whst,wthd->wshd", logits.softmax(-1), values)
    result = torch.zeros_like(q)
    result[index[real]] = out[real]
    return result


def random_inputs(n, heads=2, dim=16, ws=16, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(n, heads, dim, generator=g, dtype=dtype) for _ in range(3))
    pad_k = torch.randn(ws * ws, heads, dim, generator=g, dtype=dtype)
    pad_v = torch.randn(heads, dim, generator=g, dtype=dtype)
    return q, k, v, pad_k, pad_v


def rel_err(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("shift", [0, 8])
@pytest.mark.parametrize("hw_shapes,batch", SHAPES)
def test_index_matches_official_layout(hw_shapes, batch, shift):
    idx = window_index(hw_shapes, batch, window_size=16, shift=shift)
    expected = official_layout(hw_shapes, batch, 16, shift)
    assert torch.equal(idx.index, expected)
    n = batch * sum(h * w for h, w in hw_shapes)
    real = idx.index[idx.index >= 0]
    assert torch.equal(real.sort().values, torch.arange(n))  # every token exactly once
    rows, cols = torch.nonzero(idx.index >= 0, as_tuple=True)
    assert torch.equal(idx.slot[idx.index[rows, cols]], cols)
    assert torch.equal(idx.window[idx.index[rows, cols]], rows)
    # the attention groups cover every real token once and name every padding slot
    grouped = torch.cat([g.tokens.flatten() for g in idx.groups])
    assert torch.equal(grouped.sort().values, torch.arange(n))
    for g in idx.groups:
        rows_of_group = idx.index[g.windows]
        assert torch.equal(rows_of_group[rows_of_group >= 0].view_as(g.tokens), g.tokens)
        assert (idx.index[g.windows.unsqueeze(1), g.pad_slots] == -1).all()
        assert ((idx.index[g.windows] >= 0).sum(1) == g.tokens.shape[1]).all()


def test_index_small_grid_by_hand():
    # 3x5 grid, windows of 4, shift 2: 2 pad rows on top and 2 pad columns on the left.
    idx = window_index([(3, 5)], 1, window_size=4, shift=2)
    assert idx.padded_shapes == ((8, 8),)
    assert idx.index.shape == (4, 16)
    top_left = idx.index[0].view(4, 4)
    assert (top_left[:2] == -1).all() and (top_left[:, :2] == -1).all()
    assert top_left[2:, 2:].tolist() == [[0, 1], [5, 6]]
    top_right = idx.index[1].view(4, 4)
    assert top_right[2].tolist() == [2, 3, 4, -1]
    bottom_left = idx.index[2].view(4, 4)
    assert bottom_left[0, 2:].tolist() == [10, 11] and (bottom_left[1:] == -1).all()


def test_index_rejects_bad_input():
    with pytest.raises(ValueError, match="shift"):
        window_index([(16, 16)], 1, window_size=16, shift=16)
    with pytest.raises(ValueError, match="hw_shapes"):
        window_index([(0, 16)], 1)
    with pytest.raises(ValueError, match="batch_size"):
        window_index([(16, 16)], 0)


@pytest.mark.parametrize("shift", [0, 8])
@pytest.mark.parametrize("hw_shapes,batch", SHAPES)
def test_torch_path_matches_reference(hw_shapes, batch, shift):
    windows = window_index(hw_shapes, batch, shift=shift)
    q, k, v, pad_k, pad_v = random_inputs(windows.num_tokens, seed=shift + batch)
    scale = 16**-0.5
    poisoned = torch.full_like(q, float("nan"))
    out = attention_torch(q, k, v, windows, pad_k, pad_v, scale, out=poisoned)
    assert not out.isnan().any(), "some token rows were never written"
    assert out.dtype == q.dtype
    assert rel_err(out, reference(q, k, v, windows, pad_k, pad_v, scale)) < 1e-4
    public = window_attention(q, k, v, windows, pad_k, pad_v, backend="torch")
    assert rel_err(public, out) < 1e-6


def test_padding_token_changes_only_border_windows():
    # A user-visible consequence of KV-only padding: the learned padding token reaches only tokens
    # whose window has padding slots.
    windows = window_index([(24, 20)], 1, shift=8)
    q, k, v, pad_k, pad_v = random_inputs(windows.num_tokens)
    a = window_attention(q, k, v, windows, pad_k, pad_v, backend="torch")
    b = window_attention(q, k, v, windows, pad_k, pad_v + 1.0, backend="torch")
    has_pad = (windows.index < 0).any(1)[windows.window]
    changed = (a - b).abs().amax((1, 2)) > 1e-6
    assert torch.equal(changed, has_pad)


@pytest.mark.parametrize("shift", [0, 8])
def test_torch_path_gradients_match_reference(shift):
    windows = window_index([(20, 24), (8, 8)], 2, shift=shift)
    inputs = random_inputs(windows.num_tokens, seed=7)
    scale = 0.3
    ours = [t.clone().requires_grad_() for t in inputs]
    ref = [t.double().requires_grad_() for t in inputs]
    weight = torch.randn_like(inputs[0])
    (window_attention(*ours[:3], windows, *ours[3:], scale=scale, backend="torch") * weight).sum().backward()
    (reference(*ref[:3], windows, *ref[3:], scale) * weight.double()).sum().backward()
    for name, a, b in zip(("q", "k", "v", "pad_k", "pad_v"), ours, ref):
        assert rel_err(a.grad, b.grad) < 1e-4, name


def test_torch_path_under_bf16_autocast_stays_close_and_trainable():
    # Training runs the backbone under CPU bf16 autocast: SDPA then returns bf16 per group.
    windows = window_index([(20, 24)], 1, shift=8)
    inputs = [t.clone().requires_grad_() for t in random_inputs(windows.num_tokens, seed=3)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = window_attention(*inputs[:3], windows, *inputs[3:], backend="torch")
    ref = reference(*(t.detach() for t in inputs[:3]), windows, *(t.detach() for t in inputs[3:]), 16**-0.5)
    assert out.dtype == torch.float32 and rel_err(out.detach(), ref) < 2e-2
    out.sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in inputs)


def test_bad_shapes_raise():
    windows = window_index([(16, 16)], 1)
    q, k, v, pad_k, pad_v = random_inputs(windows.num_tokens)
    with pytest.raises(ValueError, match="rebuild"):
        window_attention(q[:-1], k[:-1], v[:-1], windows, pad_k, pad_v)
    with pytest.raises(ValueError, match="pad_k"):
        window_attention(q, k, v, windows, pad_k[:-1], pad_v)
    with pytest.raises(ValueError, match="backend"):
        window_attention(q, k, v, windows, pad_k, pad_v, backend="cuda")


def triton_ready():
    from hrsam_kernels._dispatch import import_triton, triton_interpreted

    return import_triton() is not None and (torch.cuda.is_available() or triton_interpreted())


needs_triton = pytest.mark.skipif(not triton_ready(), reason="triton needs CUDA or TRITON_INTERPRET=1")
TRITON_SHAPES = [([(24, 20)], 1), ([(5, 37)], 2), ([(20, 24), (8, 8)], 1), ([(16, 16)], 2)]  # <= 544 tokens


@needs_triton
@pytest.mark.parametrize("shift", [0, 8])
@pytest.mark.parametrize("hw_shapes,batch", TRITON_SHAPES)
def test_triton_kernel_matches_reference(hw_shapes, batch, shift):
    from hrsam_kernels._triton_attention import attention_triton

    device = "cuda" if torch.cuda.is_available() else "cpu"
    windows = window_index(hw_shapes, batch, shift=shift, device=device)
    q, k, v, pad_k, pad_v = (t.to(device) for t in random_inputs(windows.num_tokens, seed=3 + shift))
    poisoned = torch.full_like(q, float("nan"))
    out = attention_triton(q, k, v, windows, pad_k, pad_v, 0.3, out=poisoned)
    assert not out.isnan().any(), "some token rows were never written"
    cpu = windows if device == "cpu" else window_index(hw_shapes, batch, shift=shift)
    ref = reference(*(t.cpu() for t in (q, k, v)), cpu, pad_k.cpu(), pad_v.cpu(), 0.3)
    assert rel_err(out.cpu(), ref) < 1e-4


@needs_triton
def test_triton_skips_query_blocks_of_padding_only():
    # 5x37 shifted: the top 8 rows of every window are padding, so 2 of its 4 query blocks are void
    windows = window_index([(5, 37)], 1, shift=8)
    assert windows.query_blocks.shape[0] == 2 * windows.num_windows
    assert (windows.query_blocks[:, 1] >= 128).all()


@needs_triton
def test_triton_backend_dispatch_and_gradients():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    windows = window_index([(20, 24)], 1, shift=8)
    inputs = [t.to(device).requires_grad_() for t in random_inputs(windows.num_tokens, seed=5)]
    out = window_attention(*inputs[:3], window_index([(20, 24)], 1, shift=8, device=device), *inputs[3:],
                           backend="triton")
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    ref_inputs = [t.detach().cpu().double().requires_grad_() for t in inputs]
    (reference(*ref_inputs[:3], windows, *ref_inputs[3:], 16**-0.5) * weight.cpu().double()).sum().backward()
    for name, a, b in zip(("q", "k", "v", "pad_k", "pad_v"), inputs, ref_inputs):
        assert rel_err(a.grad.cpu(), b.grad) < 1e-4, name


@needs_triton
def test_triton_gradients_where_no_window_needs_padding():
    # 16x16 tokens in one 16x16 window: the padding token is never attended to, so pad_k and pad_v get
    # no gradient (a first GPU click-training run stopped here)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    windows = window_index([(16, 16)], 1)
    inputs = [t.to(device).requires_grad_() for t in random_inputs(windows.num_tokens, seed=6)]
    out = window_attention(*inputs[:3], window_index([(16, 16)], 1, device=device), *inputs[3:],
                           backend="triton")
    weight = torch.randn_like(out)
    (out * weight).sum().backward()
    ref_inputs = [t.detach().cpu().double().requires_grad_() for t in inputs[:3]]
    (attention_torch(*ref_inputs, windows, *(t.detach().cpu().double() for t in inputs[3:]), 16**-0.5)
     * weight.cpu().double()).sum().backward()
    for name, a, b in zip(("q", "k", "v"), inputs, ref_inputs):
        assert rel_err(a.grad.cpu(), b.grad) < 1e-4, name
    assert all(t.grad is None or not t.grad.any() for t in inputs[3:])


def test_backend_env_var_forces_torch(monkeypatch):
    windows = window_index([(16, 16)], 1)
    q, k, v, pad_k, pad_v = random_inputs(windows.num_tokens)
    monkeypatch.setenv("HRSAM_KERNELS_BACKEND", "torch")
    a = window_attention(q, k, v, windows, pad_k, pad_v)
    assert rel_err(a, attention_torch(q, k, v, windows, pad_k, pad_v, 16**-0.5)) < 1e-6
    monkeypatch.setenv("HRSAM_KERNELS_BACKEND", "gpu")
    with pytest.raises(ValueError, match="HRSAM_KERNELS_BACKEND"):
        window_attention(q, k, v, windows, pad_k, pad_v)


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
    result = subprocess.run([sys.executable, "-m", "hrsam_kernels._gpu_compile", "80", "attention"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "_window_attention_kernel" in result.stdout
