"""Device choice: CUDA (Triton kernels) when present, else Apple MPS, else CPU; and the encoder's
precision on a CPU (bf16 where the CPU computes it natively)."""
import os

import torch

from .configs import DEVICES


def resolve_device(device=None):
    """None or "auto" picks the best available; an explicit device must exist."""
    if isinstance(device, torch.device):
        device = str(device)
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    name = str(device).split(":")[0]
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' was asked for but Apple MPS is not available; use 'auto' or 'cpu'")
    return torch.device(device)


PRECISIONS = ("auto", "fp32", "bf16")
CPU_BF16_SWITCH = "HRSAM_CPU_BF16"  # "0" turns the automatic CPU bf16 off


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bf16 matmuls natively (AVX-512 BF16 or AMX), per oneDNN."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def encoder_autocast_dtype(device: torch.device, precision: str = "auto"):
    """The dtype the encoder runs under ``torch.autocast`` on ``device``, or None (fp32).

    "auto": bf16 on a CPU that computes it natively, unless ``HRSAM_CPU_BF16=0``; fp32 elsewhere
    (a GPU's Triton kernels choose their own). "bf16" asks for it (ValueError on a CPU without it);
    "fp32" turns it off."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if device.type != "cpu" or precision == "fp32":
        return None
    supported = cpu_bf16_supported()
    if precision == "bf16":
        if not supported:
            raise ValueError("precision 'bf16' was asked for but this CPU has no native bf16 (AVX-512 BF16 or "
                             "AMX); use 'auto' or 'fp32'")
        return torch.bfloat16
    return torch.bfloat16 if supported and os.environ.get(CPU_BF16_SWITCH, "1") != "0" else None
