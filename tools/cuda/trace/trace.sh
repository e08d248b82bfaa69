#!/usr/bin/env bash
# Kernel timelines of our step and PyTorch's on the device (no nsys there): CUPTI through the
# injection library rmd_trace.so (build here: gcc -O2 -shared -fPIC -o gpu-xz/librmd_trace.so
# tools/cuda/trace/rmd_trace.c -ldl -lpthread). Steps are separated by 150 ms pauses; segments
# 3..5 are timed steps (0: setup, 1-2: warm-up). Writes $OUT/trace-{burn,torch}.txt.
# Env: SHAPE, LEN, EXTRA (env for gpu_step, e.g. "RMD_FLASH=1").
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
SHAPE=${SHAPE:-0.5b}; LEN=${LEN:-1024}
source benches/gpu/env.sh
CUPTI=${RMD_CUPTI_LIB:-$(find / -name 'libcupti.so*' -not -path '/proc/*' 2>/dev/null | head -1)}
export CUDA_INJECTION64_PATH=$PWD/gpu-xz/librmd_trace.so RMD_CUPTI_LIB=$CUPTI RMD_STEP_PAUSE_MS=150
RMD_TRACE_OUT=/tmp/trace-burn.tsv env ${EXTRA:-} timeout 240 ./gpu-dist/gpu_step --shape "$SHAPE" --pairs 8 --len "$LEN" --steps 3 --warmup 2 > "$OUT/trace-burn-run.txt" 2>&1
python3 tools/cuda/trace/report.py /tmp/trace-burn.tsv --first 3 --steps 3 --gap-ms 100 > "$OUT/trace-burn.txt" 2>&1
RMD_TRACE_OUT=/tmp/trace-torch.tsv timeout 200 python3 benches/gpu/torch_step.py --shape "$SHAPE" --pairs 8 --len "$LEN" --steps 3 --warmup 2 > "$OUT/trace-torch-run.txt" 2>&1
python3 tools/cuda/trace/report.py /tmp/trace-torch.tsv --first 3 --steps 3 --gap-ms 100 > "$OUT/trace-torch.txt" 2>&1
head -12 "$OUT/trace-burn.txt"; head -12 "$OUT/trace-torch.txt"
