"""Compile every Triton kernel variant for a CUDA architecture, without a GPU.

    python -m hrsam_kernels._gpu_compile 90 attention scan

Triton lowers a kernel to PTX and cubin with its bundled ptxas, so type errors, bad tl.dot shapes
and shared-memory overflows show up here on a machine that has no GPU (the tests use this; the
interpreter alone would not catch them). Must run with TRITON_INTERPRET unset.
"""
from __future__ import annotations

import os
import sys


def _signature(fn, pointer_types: dict, scalar_floats=(), default_pointer="*fp32"):
    sig = {}
    for name in fn.arg_names:
        if name in fn.constexprs or name.isupper() or name.startswith("BLOCK"):
            sig[name] = "constexpr"
        elif name.endswith("_ptr"):
            sig[name] = pointer_types.get(name, default_pointer)
        else:
            sig[name] = "fp32" if name in scalar_floats else "i32"
    return sig


def _attention_variants():
    from . import _triton_attention as ta

    fn = ta._window_attention_kernel
    for dtype, torch_name in (("fp32", "float32"), ("bf16", "bfloat16"), ("fp16", "float16")):
        pointers = {n: f"*{dtype}" for n in ("q_ptr", "k_ptr", "v_ptr", "out_ptr", "pad_k_ptr", "pad_v_ptr")}
        pointers.update(index_ptr="*i64", blocks_ptr="*i32")
        import torch

        block_n = ta._key_block(getattr(torch, torch_name), 64)
        for tf32x3 in ((False, True) if dtype == "fp32" else (False,)):
            const = dict(BLOCK_M=ta.QUERY_BLOCK, BLOCK_N=block_n, BLOCK_D=64, IEEE=dtype == "fp32",
                         TF32X3=tf32x3)  # as attention_triton launches it
            yield fn, _signature(fn, pointers, scalar_floats=("scale",)), const


def _scan_variants():
    from . import _triton_scan as ts

    for dtype in ("fp32", "bf16"):
        pointers = {n: f"*{dtype}" for n in ("u_ptr", "delta_ptr", "B_ptr", "C_ptr")}
        for from_starts in (False, True):
            const = dict(HAS_D=True, HAS_BIAS=True, SOFTPLUS=True, FROM_STARTS=from_starts,
                         WRITE_Y=from_starts, BLOCK_C=ts.BLOCK_C, BLOCK_N=32)
            yield ts._chunk_kernel, _signature(ts._chunk_kernel, pointers), const
    yield ts._carry_kernel, _signature(ts._carry_kernel, {}), dict(BLOCK_C=ts.BLOCK_C, BLOCK_N=16)


def compile_all(arch: int, which=("attention", "scan")) -> list[str]:
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        raise RuntimeError("unset TRITON_INTERPRET: the interpreter does not compile kernels")
    from ._dispatch import import_triton

    triton = import_triton()
    if triton is None:
        raise RuntimeError("triton is not installed: pip install 'napari-hrsam[gpu]'")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", arch, 32)
    done = []
    variants = {"attention": _attention_variants, "scan": _scan_variants}
    for name in which:
        for fn, sig, const in variants[name]():
            kernel = triton.compile(ASTSource(fn, sig, const), target=target)
            done.append(f"{fn.__name__} {const} shared={kernel.metadata.shared}")
    return done


if __name__ == "__main__":
    arch = int(sys.argv[1]) if len(sys.argv) > 1 else 90
    for line in compile_all(arch, tuple(sys.argv[2:]) or ("attention", "scan")):
        print(line)
