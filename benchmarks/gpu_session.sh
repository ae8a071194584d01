#!/usr/bin/env bash
# Everything the kernels need checked and timed on a CUDA machine, in one go (a lent GPU is
# short-lived): the exactness tests at model scale, then the kernel and encoder benchmarks.
#
#   bash benchmarks/gpu_session.sh [OUT_DIR]
#
# STEPS="tests attention" picks steps (default: tests attention scan encoder).
# Runs from a source checkout without installing (the package maps hrsam_kernels to kernels/).
# Logs go to OUT_DIR (default: runs/gpu); each step has its own time limit so one hang costs
# only that step.
set -u
cd "$(dirname "$0")/.."
out=${1:-${OUT:-runs/gpu}}
mkdir -p "$out" /tmp/hrsam_path
ln -sfn "$PWD/kernels" /tmp/hrsam_path/hrsam_kernels
export PYTHONPATH="/tmp/hrsam_path:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
unset TRITON_INTERPRET HRSAM_KERNELS_BACKEND
py=${PYTHON:-python3}

step() {  # step SECONDS LOG COMMAND...: run, keep the log, say how it ended
    local limit=$1 log=$2; shift 2
    echo "== $* (limit ${limit}s)" | tee -a "$out/$log"
    local start=$SECONDS
    timeout "$limit" "$@" >>"$out/$log" 2>&1
    echo "== exit $? after $((SECONDS - start)) s" | tee -a "$out/$log"
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
    $py -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
} >"$out/env.txt" 2>&1
cat "$out/env.txt"

steps=${STEPS:-tests attention scan encoder}
want() { [[ " $steps " == *" $1 "* ]]; }

if want tests; then
    step 120 pytest.log $py -m pytest -q -o addopts=-ra -p no:cacheprovider \
        tests/test_kernels_on_gpu.py tests/test_window_attention.py tests/test_selective_scan.py
    step 60 pytest.log $py -m pytest -q -o addopts=-ra -p no:cacheprovider tests/test_training.py -k finetune
    tail -5 "$out/pytest.log"
fi
if want attention; then
    for dtype in float32 bfloat16 float16; do
        step 45 attention.txt $py benchmarks/attention.py --grids 64 128 256 --repeats 10 --dtype $dtype
    done
fi
if want scan; then
    step 90 scan.txt $py benchmarks/scan.py --lengths 4096 16384 65536 --backward --naive-max 4096 --repeats 3
fi
if want encoder; then  # the same encoders with the window attention and scan on each path, then bf16
    models="hrsam_tiny hrsam_vit_b hrsam_plusplus_vit_b sam_vit_b"
    for backend in triton torch; do
        export HRSAM_KERNELS_BACKEND=$backend
        echo "HRSAM_KERNELS_BACKEND=$backend" >>"$out/encoder.txt"
        step 100 encoder.txt $py benchmarks/encoder.py --sizes 1024 2048 4096 --repeats 5 --models $models
        models="hrsam_tiny hrsam_vit_b hrsam_plusplus_vit_b"
    done
    unset HRSAM_KERNELS_BACKEND
    step 60 encoder.txt $py benchmarks/encoder.py --sizes 1024 2048 4096 --repeats 5 --autocast bfloat16 \
        --models hrsam_tiny hrsam_vit_b hrsam_plusplus_vit_b sam_vit_b
fi
grep -h "^|\|^machine\|did not run\|exit\|passed\|failed" "$out"/attention.txt "$out"/scan.txt 2>/dev/null || true  # steps left out have no file
grep -h "^HRSAM\|^machine\|^  \|^== exit" "$out"/encoder.txt 2>/dev/null || true
