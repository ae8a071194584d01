"""Choice between the Triton kernels and the PyTorch paths.

Order of precedence: the `backend` argument, then the HRSAM_KERNELS_BACKEND environment variable,
then automatic (Triton for CUDA tensors when Triton imports, PyTorch otherwise).
"""
from __future__ import annotations

import functools
import os
import sys

import torch

BACKENDS = ("torch", "triton")
ENV_VAR = "HRSAM_KERNELS_BACKEND"


@functools.lru_cache(maxsize=1)
def import_triton():
    """Import triton once, or return None when it is not installed or cannot load.

    RTLD_DEEPBIND keeps Triton's bundled LLVM symbols apart from the system libLLVM that Mesa
    loads for napari's OpenGL context; without it the process segfaults when triton is imported
    after a napari viewer exists.
    """
    old = sys.getdlopenflags() if hasattr(sys, "getdlopenflags") else None
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    try:
        if old is not None and deepbind:
            sys.setdlopenflags(old | deepbind)
        import triton  # noqa: F401
        import triton.language  # noqa: F401

        return triton
    except Exception:  # a broken install must degrade to the PyTorch path, not crash napari
        return None
    finally:
        if old is not None and deepbind:
            sys.setdlopenflags(old)


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def resolve_backend(backend: str | None, *tensors: torch.Tensor) -> str:
    """Return "torch" or "triton" for a call on `tensors`."""
    choice = backend if backend is not None else (os.environ.get(ENV_VAR) or None)
    if choice is not None and choice not in BACKENDS:
        source = "backend" if backend is not None else ENV_VAR
        raise ValueError(f"{source} must be one of {BACKENDS} or unset, got {choice!r}")
    on_cuda = all(t.is_cuda for t in tensors)
    if choice is None:
        return "triton" if on_cuda and import_triton() is not None else "torch"
    if choice == "triton":
        if import_triton() is None:
            raise ValueError("backend 'triton' was requested but triton cannot be imported; install "
                             "it (pip install 'napari-hrsam[gpu]') or use backend='torch'")
        if not on_cuda and not triton_interpreted():
            raise ValueError("the Triton kernels need CUDA tensors (or TRITON_INTERPRET=1 set before "
                             "triton is first imported); use backend='torch' on this device")
    return choice
