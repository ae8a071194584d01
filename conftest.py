"""Process-wide test set-up that must happen before any other import.

Triton must be imported before napari creates an OpenGL context: Mesa's llvmpipe
loads a system libLLVM whose symbols clash with Triton's and the process segfaults.
On a machine without CUDA the Triton kernels can only run in interpreter mode,
which has to be switched on before the first ``import triton``.
"""
import os

if os.environ.get("TRITON_INTERPRET") is None:
    try:
        import torch

        if not torch.cuda.is_available():
            os.environ["TRITON_INTERPRET"] = "1"
    except ImportError:
        pass
try:
    import triton  # noqa: F401
except ImportError:
    pass
