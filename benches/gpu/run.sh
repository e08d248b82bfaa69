#!/usr/bin/env bash
# One command on the H200: burn (our gpu_step) and PyTorch side by side, logs under $OUT.
# Expects release binaries in gpu-dist/ (built here with
#   cargo build --release -p rmd-benches --features cuda --bin gpu_step
#   cargo test --release -p rmd-kernels --features cuda --no-run   # -> gpu-dist/kernels_cuda
# and copied, stripped, to gpu-dist/), or xz-compressed in gpu-xz/ (name.xz -> gpu-dist/name; the
# device call's carry limit is 64 MiB and a stripped binary is ~53 MB).
# Env: SHAPE (0.5b|1.5b), PAIRS, LEN, PRECISION (bf16|f32), STEPS, TORCH (eager|compile|both|none),
#      BIN (default gpu-dist/gpu_step), CHECK=1 to run the GPU numerics tests first, COMPARE=1 for
#      the fast-vs-plain step comparison (the plain bf16 path crashes in cubecl 0.10's autotuner).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
SHAPE=${SHAPE:-0.5b}; PAIRS=${PAIRS:-8}; LEN=${LEN:-1024}; PRECISION=${PRECISION:-bf16}
STEPS=${STEPS:-5}; TORCH=${TORCH:-eager}; CHECK=${CHECK:-0}
BIN=${BIN:-gpu-dist/gpu_step}
TAG="$SHAPE-p$PAIRS-l$LEN-$PRECISION-$(basename "$BIN")"

source benches/gpu/env.sh
echo "cuBLAS from $RMD_CUBLAS_DIR" | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$OUT/env.txt"

if [ "$CHECK" = 1 ]; then
  ./gpu-dist/kernels_cuda --test-threads=1 --nocapture 2>&1 | tail -40 | tee "$OUT/kernels_cuda.txt"
fi
if [ "${COMPARE:-0}" = 1 ]; then
  timeout 300 "$BIN" --shape "$SHAPE" --pairs 2 --len 256 --steps 1 --warmup 0 --precision "$PRECISION" --compare 2>&1 \
    | grep -E "compare|fast path" | tee "$OUT/compare-$PRECISION.txt"
fi

case "$TORCH" in
  eager|both) python3 benches/gpu/torch_step.py --shape "$SHAPE" --pairs "$PAIRS" --len "$LEN" 2>&1 | tail -1 | tee "$OUT/torch-eager-$SHAPE-l$LEN.txt";;
esac
case "$TORCH" in
  compile|both) python3 benches/gpu/torch_step.py --shape "$SHAPE" --pairs "$PAIRS" --len "$LEN" --compile 2>&1 | tail -1 | tee "$OUT/torch-compile-$SHAPE-l$LEN.txt";;
esac

(while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done) > "$OUT/mem-$TAG.txt" &
MON=$!
timeout "${BURN_TIMEOUT:-400}" "$BIN" --shape "$SHAPE" --pairs "$PAIRS" --len "$LEN" --steps "$STEPS" --warmup 2 --precision "$PRECISION" \
  > "$OUT/burn-$TAG.txt" 2> "$OUT/burn-$TAG.err"
echo "gpu_step rc=$?" >> "$OUT/burn-$TAG.txt"
kill $MON
cat "$OUT/burn-$TAG.txt"; tail -4 "$OUT/burn-$TAG.err"
echo "burn peak GPU memory (nvidia-smi, MiB): $(sort -n "$OUT/mem-$TAG.txt" | tail -1)" | tee -a "$OUT/burn-$TAG.txt"
