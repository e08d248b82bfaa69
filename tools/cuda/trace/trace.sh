#!/usr/bin/env bash
# Kernel timelines of our step and PyTorch's on the device (no nsys there): CUPTI through the
# injection library rmd_trace.so (build here: gcc -O2 -shared -fPIC -o gpu-xz/librmd_trace.so
# tools/cuda/trace/rmd_trace.c -ldl -lpthread). Steps are separated by 150 ms pauses; the report
# covers the last three steady-state steps (report.py --last). Writes
# $OUT/trace-<config>.txt and the raw timeline trace-<config>.tsv.gz.
# Env: SHAPE, LEN, CONFIGS (gpu_step env settings, one config per word, commas between
# variables, e.g. "RMD_KERNELS=0 RMD_KERNELS=1,RMD_PHASE_SYNC=1"), TORCH=0 to skip PyTorch.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
SHAPE=${SHAPE:-0.5b}; LEN=${LEN:-1024}
source benches/gpu/env.sh
CUPTI=${RMD_CUPTI_LIB:-$(find / -name 'libcupti.so*' -not -path '/proc/*' 2>/dev/null | head -1)}
echo "CUPTI: $CUPTI"
trace() {  # name, command...
  local name=$1; shift
  CUDA_INJECTION64_PATH=$PWD/gpu-xz/librmd_trace.so RMD_CUPTI_LIB=$CUPTI RMD_STEP_PAUSE_MS=150 \
    RMD_TRACE_OUT=/tmp/trace-$name.tsv timeout 240 "$@" > "$OUT/trace-$name-run.txt" 2>&1
  python3 tools/cuda/trace/report.py /tmp/trace-$name.tsv --last 3 --gap-ms 100 > "$OUT/trace-$name.txt" 2>&1
  gzip -c /tmp/trace-$name.tsv > "$OUT/trace-$name.tsv.gz"
  echo "== $name"; grep -E "train_step|torch eager" "$OUT/trace-$name-run.txt"; sed -n '/^segments/,/^top/p' "$OUT/trace-$name.txt"
}
for c in ${CONFIGS:-RMD_KERNELS=0}; do
  trace "$(echo "$c" | tr ',=' '_-')" env $(echo "$c" | tr ',' ' ') ./gpu-dist/gpu_step --shape "$SHAPE" --pairs 8 --len "$LEN" --steps ${TRACE_STEPS:-3} --warmup 2
done
[ "${TORCH:-1}" = 1 ] && trace torch python3 benches/gpu/torch_step.py --shape "$SHAPE" --pairs 8 --len "$LEN" --steps ${TRACE_STEPS:-3} --warmup 2
true
