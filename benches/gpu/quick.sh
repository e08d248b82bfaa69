#!/usr/bin/env bash
# Short device call (when little device time is left): flash numerics on the GPU, then one
# 0.5B step run with nvidia-smi memory sampling and the CUPTI kernel timeline attached
# (tracing adds ~2-3% to the step time). Logs under $OUT; the raw timeline as trace.tsv.gz.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source benches/gpu/env.sh
export RMD_FLASH=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/card.txt"
timeout 60 ./gpu-dist/kernels_cuda --test-threads=1 --nocapture grouped > "$OUT/kernels.txt" 2>&1
grep -E "^rows|rel|result" "$OUT/kernels.txt"
if ! grep -q "test result: ok" "$OUT/kernels.txt"; then
  echo "word-wide mask reads failed; bytes:"; export RMD_FLASH_MASK_WORDS=0
  timeout 60 ./gpu-dist/kernels_cuda --test-threads=1 --nocapture grouped > "$OUT/kernels-bytes.txt" 2>&1
  grep -E "^rows|rel|result" "$OUT/kernels-bytes.txt"
fi
CUPTI=${RMD_CUPTI_LIB:-$(ls /usr/local/cuda*/targets/x86_64-linux/lib/libcupti.so* 2>/dev/null | head -1)}
(while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done) > "$OUT/mem.txt" &
MON=$!
CUDA_INJECTION64_PATH=$PWD/gpu-xz/librmd_trace.so RMD_CUPTI_LIB=$CUPTI RMD_TRACE_OUT=/tmp/trace.tsv RMD_STEP_PAUSE_MS=150 \
  timeout "${BURN_TIMEOUT:-110}" ./gpu-dist/gpu_step --shape 0.5b --pairs 8 --len 1024 --steps 4 --warmup 2 > "$OUT/step.txt" 2> "$OUT/step.err"
echo "gpu_step rc=$?"
kill $MON
cat "$OUT/step.txt"; grep "^step" "$OUT/step.err" | tail -4
echo "peak GPU memory (nvidia-smi, MiB): $(sort -n "$OUT/mem.txt" | tail -1)"
gzip -c /tmp/trace.tsv > "$OUT/trace.tsv.gz"
