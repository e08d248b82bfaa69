#!/usr/bin/env bash
# One device call measuring the GPU speed issue: GPU numerics of every fast path (the whole
# kernels_cuda test binary, flash attention on), the 0.5B step beside PyTorch eager with memory
# (run.sh), a CUPTI kernel timeline of our step (tools/cuda/trace), and, where Nsight Compute
# exists and may read counters, the flash kernels' stall profile. Binaries:
# gpu-xz/{gpu_step,kernels_cuda}.xz and librmd_trace.so (benches/gpu/run.sh and
# tools/cuda/trace/trace.sh say how to build them). Logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source benches/gpu/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
export RMD_FLASH=1
# NVRTC compiles and cubecl autotunes on first use: generous timeout.
timeout 300 ./gpu-dist/kernels_cuda --test-threads=1 --nocapture > "$OUT/kernels.txt" 2>&1
grep -E "^test |rel|max|panicked|test result" "$OUT/kernels.txt" | tail -40
SHAPE=0.5b LEN=1024 STEPS=5 TORCH=eager BURN_TIMEOUT=150 bash benches/gpu/run.sh > "$OUT/run-0.5b.txt" 2>&1
grep -E "torch|train_step|score|peak|rc=" "$OUT/run-0.5b.txt"
CONFIGS="RMD_FLASH=1" TORCH=0 timeout 120 bash tools/cuda/trace/trace.sh > "$OUT/trace.txt" 2>&1
sed -n '/^segments/,/flash_bwd_dq/p' "$OUT/trace-RMD_FLASH-1.txt" | head -30
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: ${NCU:-none}"
if [ -n "$NCU" ]; then
  timeout 150 "$NCU" --kernel-name regex:flash_fwd\|flash_bwd$ --launch-skip 22 --launch-count 4 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis \
    ./gpu-dist/gpu_step --shape 0.5b --pairs 8 --len 1024 --steps 1 --warmup 0 > "$OUT/ncu.txt" 2>&1
  grep -E "==PROF==|ERR|Duration|Throughput|Warp Cycles|Stall|Achieved Occupancy|Registers|Block Limit" "$OUT/ncu.txt" | head -60
fi
