"""HRSAM's two special kernels, as Triton kernels for GPUs and PyTorch paths for CPU/MPS.

- `window_attention`: Flash Swin attention inside 16x16 windows with KV-only padding.
- `selective_scan`: the Mamba-1 selective scan over a sequence repeated `cycles` times.

Triton is imported lazily, only when a Triton path is taken; it is optional (the `gpu` extra),
and without it every call takes the PyTorch path.

This folder is `kernels/` in the repository but installs as the package `hrsam_kernels`
(pyproject.toml's package-dir), so it is imported as `import hrsam_kernels`, never `kernels`.
"""
from .selective_scan import selective_scan
from .window_attention import window_attention
from .windows import WindowGroup, WindowIndex, window_index

__all__ = ["window_index", "window_attention", "selective_scan", "WindowIndex", "WindowGroup"]
