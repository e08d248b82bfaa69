#!/usr/bin/env bash
# One device call measuring the GPU speed issue (session 4): flash-attention numerics on the GPU,
# then the 0.5B step with PyTorch eager beside it (run.sh), then a CUPTI kernel timeline of our
# step (tools/cuda/trace). Binaries: gpu-xz/{gpu_step,kernels_cuda}.xz and librmd_trace.so
# (benches/gpu/run.sh and tools/cuda/trace/trace.sh say how to build them). Logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source benches/gpu/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
export RMD_FLASH=1
numerics() {
  timeout 90 ./gpu-dist/kernels_cuda --test-threads=1 --nocapture grouped > "$OUT/kernels$1.txt" 2>&1
  grep -E "^rows|rel|panicked|result" "$OUT/kernels$1.txt"
  grep -q "test result: ok" "$OUT/kernels$1.txt"
}
if ! numerics ""; then
  echo "numerics failed with word-wide mask reads; retrying with RMD_FLASH_MASK_WORDS=0"
  export RMD_FLASH_MASK_WORDS=0
  numerics "-bytes" || echo "FLASH NUMERICS FAILED"
fi
SHAPE=0.5b LEN=1024 STEPS=5 TORCH=eager BURN_TIMEOUT=150 bash benches/gpu/run.sh > "$OUT/run-0.5b.txt" 2>&1
grep -E "torch|train_step|score|peak|rc=" "$OUT/run-0.5b.txt"
CONFIGS="RMD_FLASH=1" TORCH=0 timeout 120 bash tools/cuda/trace/trace.sh > "$OUT/trace.txt" 2>&1
python3 tools/cuda/trace/report.py /tmp/trace-RMD_FLASH-1.tsv --gap-ms 100 --first 0 --steps 0 2>/dev/null | grep segment | tail -6 > "$OUT/segments.txt"
tail -4 "$OUT/segments.txt"
