#!/usr/bin/env bash
# One command on the H200: burn (our gpu_step) and PyTorch side by side, logs under $OUT.
# Expects release binaries in gpu-dist/ (built here with
#   cargo build --release -p rmd-benches --features cuda --bin gpu_step
#   cargo test --release -p rmd-kernels --features cuda --no-run   # -> gpu-dist/kernels_cuda
# and copied, stripped, to gpu-dist/).
# Env: SHAPE (0.5b|1.5b), PAIRS, LEN, PRECISION (bf16|f32), STEPS, TORCH (eager|compile|both|none),
#      CHECK=1 to run the GPU numerics tests and the fast-vs-plain step comparison first.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
SHAPE=${SHAPE:-0.5b}; PAIRS=${PAIRS:-8}; LEN=${LEN:-1024}; PRECISION=${PRECISION:-bf16}
STEPS=${STEPS:-5}; TORCH=${TORCH:-eager}; CHECK=${CHECK:-0}
TAG="$SHAPE-p$PAIRS-l$LEN-$PRECISION"

# cuBLAS comes from PyTorch's wheels on this machine; cudarc loads it by name.
if [ -z "${RMD_CUBLAS_DIR:-}" ]; then
  lib=$(find / -name 'libcublas.so*' -not -path '*/proc/*' 2>/dev/null | head -1)
  RMD_CUBLAS_DIR=$(dirname "$lib")
fi
mkdir -p /tmp/rmd-lib
for f in "$RMD_CUBLAS_DIR"/libcublas*.so*; do
  base=$(basename "$f"); ln -sf "$f" "/tmp/rmd-lib/$base"; ln -sf "$f" "/tmp/rmd-lib/${base%%.so*}.so"
done
export LD_LIBRARY_PATH="/tmp/rmd-lib:$RMD_CUBLAS_DIR:${LD_LIBRARY_PATH:-}"
echo "cuBLAS from $RMD_CUBLAS_DIR" | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$OUT/env.txt"

if [ "$CHECK" = 1 ]; then
  ./gpu-dist/kernels_cuda --test-threads=1 --nocapture 2>&1 | tail -25 | tee "$OUT/kernels_cuda.txt"
  timeout 300 ./gpu-dist/gpu_step --shape "$SHAPE" --pairs 2 --len 256 --steps 1 --warmup 0 --precision "$PRECISION" --compare 2>&1 \
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
timeout "${BURN_TIMEOUT:-400}" ./gpu-dist/gpu_step --shape "$SHAPE" --pairs "$PAIRS" --len "$LEN" --steps "$STEPS" --warmup 2 --precision "$PRECISION" \
  > "$OUT/burn-$TAG.txt" 2> "$OUT/burn-$TAG.err"
echo "gpu_step rc=$?" >> "$OUT/burn-$TAG.txt"
kill $MON
cat "$OUT/burn-$TAG.txt"; tail -4 "$OUT/burn-$TAG.err"
echo "burn peak GPU memory (nvidia-smi, MiB): $(sort -n "$OUT/mem-$TAG.txt" | tail -1)" | tee -a "$OUT/burn-$TAG.txt"
