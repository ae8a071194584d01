#!/usr/bin/env bash
# Click training (`finetune --device cuda`) on a lent GPU, sized to the minutes the lease leaves.
#
#   bash benchmarks/gpu_finetune.sh DATA_ROOT INIT OUT_DIR SECONDS [RUNS] [FIRST_SEED]
#
# A lent machine is short-lived and one training process leaves most of the GPU idle (its steps
# are small launches and CPU-side click simulation), so RUNS processes train at once with seeds
# FIRST_SEED, FIRST_SEED+1, ... (the stage-2j recipe, see MODEL_CARD). A short calibration with the
# same number of processes times a step under that load (and fills Triton's kernel cache); the
# runs then get the steps that fit the seconds left, so their cosine schedule ends on time
# (`--max-minutes` is only the safety net). Each run is exported to OUT_DIR/seed<N>.safetensors
# (only the first EXPORT_EACH runs where the lease brings back few files) and the mean of all runs
# to OUT_DIR/soup.safetensors; logs go to OUT_DIR/logs.tar.gz. If the calibration fails on the
# Triton path, the runs use the PyTorch kernels (HRSAM_KERNELS_BACKEND=torch) and say so.
#
# STEPS skips the calibration (steps per run known from an earlier lease). EXTRA_ARGS adds
# finetune options (e.g. "--source-weights nuclei=1,ecoli=1,brain=2"); THREADS sets each
# process' threads (default: the cores shared out). DEVICE=cpu CAL_STEPS=3 runs the same
# script on a CPU (to check it before a lease).
set -u
cd "$(dirname "$0")/.."
data=$1 init=$2 out=$3 budget=$4 runs=${5:-4} first_seed=${6:-9}
device=${DEVICE:-cuda} cal_steps=${CAL_STEPS:-12}
threads=${THREADS:-$(( $(nproc) / runs > 0 ? $(nproc) / runs : 1 ))}
work=/tmp/hrsam_gpu_finetune_$(basename "$out")  # two of these scripts may run at once
mkdir -p "$out" /tmp/hrsam_path "$work"
ln -sfn "$PWD/kernels" /tmp/hrsam_path/hrsam_kernels  # runs from the checkout without installing
export PYTHONPATH="/tmp/hrsam_path:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
py=${PYTHON:-python3}
start=$SECONDS
recipe=(--data-root "$data" --init "$init" --device "$device" --threads "$threads" --lr 0.0001 --warmup 30
        --large-canvas-fraction 0.3 --zoom-view-fraction 0.5 --unnested-first-click 1.0 --balance-kinds 1
        --max-clicks 20 --click-gamma 0.85 ${EXTRA_ARGS:-})

{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null; nproc
  $py -c "import torch; print('torch', torch.__version__)"; } >"$work/env.txt" 2>&1

calibrate() {  # RUNS processes of cal_steps steps at once; prints the median seconds per step after the first 2
    rm -rf "$work"/cal*
    for i in $(seq "$runs"); do
        $py -m hrsam_model.training.finetune "${recipe[@]}" --out "$work/cal$i" --steps "$cal_steps" \
            --seed $((1000 + i)) >"$work/cal$i.log" 2>&1 &
    done
    wait
    $py - "$work" "$runs" <<'EOF'
import json, statistics, sys
from pathlib import Path
work, runs = Path(sys.argv[1]), int(sys.argv[2])
secs = []
for i in range(1, runs + 1):
    log = work / f"cal{i}" / "log.jsonl"
    steps = [json.loads(line)["sec"] for line in log.read_text().splitlines()] if log.is_file() else []
    if len(steps) < 3:
        sys.exit(f"calibration run {i} stopped after {len(steps)} steps")
    secs += steps[2:]
print(statistics.median(secs))
EOF
}

backend=triton
t0=$SECONDS
if [ -n "${STEPS:-}" ]; then  # steps known from an earlier lease: no calibration
    sec="not measured"
elif ! sec=$(calibrate); then
    echo "calibration failed on the Triton path; using the PyTorch kernels" | tee -a "$work/env.txt"
    tail -3 "$work"/cal*.log
    export HRSAM_KERNELS_BACKEND=torch backend=torch
    t0=$SECONDS
    sec=$(calibrate) || { echo "calibration failed"; tail -20 "$work"/cal*.log; exit 1; }
fi
overhead=$(( SECONDS - t0 ))  # start-up (imports, data, kernel compile) + the calibration steps
left=$(( budget - (SECONDS - start) - overhead / 2 - 45 ))  # start-up again (cached kernels), export
steps=${STEPS:-$($py -c "print(max(40, int($left / $sec * 0.92)))")}
max_minutes=$($py -c "print(round($left / 60, 2))")
echo "backend $backend, $runs runs x $threads threads: $sec s/step at load, calibration ${overhead}s," \
     "$left s left -> $steps steps each" | tee -a "$work/env.txt"

for i in $(seq 0 $((runs - 1))); do
    seed=$((first_seed + i))
    $py -m hrsam_model.training.finetune "${recipe[@]}" --out "$work/seed$seed" --steps "$steps" --seed "$seed" \
        --max-minutes "$max_minutes" >"$work/seed$seed.log" 2>&1 &
done
wait
exported=()  # all to $work (this call's seeds only); the first EXPORT_EACH (default all) to $out too
for i in $(seq 0 $((runs - 1))); do
    seed=$((first_seed + i))
    exported+=("$work/seed$seed.safetensors")
    $py -m hrsam_model.training.export --model-state "$work/seed$seed/model.pt" \
        --out "${exported[i]}" >>"$work/export.log" 2>&1 &
done
wait
keep=("${exported[@]:0:${EXPORT_EACH:-$runs}}")
[ ${#keep[@]} -eq 0 ] || cp "${keep[@]}" "$out/"
if [ "$runs" -gt 1 ]; then  # their mean too (runs from one file and one recipe: a uniform soup)
    $py -m hrsam_model.training.export --average "${exported[@]}" --out "$out/soup.safetensors" \
        >>"$work/export.log" 2>&1
fi
echo "finished after $((SECONDS - start)) s" | tee -a "$work/env.txt"
tail -n 2 "$work"/seed*.log
(cd "$work" && tar czf - env.txt ./*.log ./*/log.jsonl ./*/config.json) >"$out/logs.tar.gz"
