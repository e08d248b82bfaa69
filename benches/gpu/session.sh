#!/usr/bin/env bash
# The device calls measuring the GPU speed issue, in parts that each fit one 10-minute call:
#   PARTS=numerics  every GPU test (kernels_cuda) with our CUDA C kernels (RMD_KERNELS=1) and
#                   with the default path (~4 min);
#   PARTS=step      the 0.5B step with the kernels beside PyTorch eager, with memory (run.sh),
#                   and the default path's step (~4 min);
#   PARTS=profile   a CUPTI kernel timeline of the step with the kernels (tools/cuda/trace) and,
#                   where Nsight Compute exists and may read counters, the flash kernels' stall
#                   profile (~4 min).
# Default PARTS="numerics step". Binaries: gpu-xz/{gpu_step,kernels_cuda}.xz and librmd_trace.so
# (benches/gpu/run.sh and tools/cuda/trace/trace.sh say how to build them). Logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source benches/gpu/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"

numerics() {
  # NVRTC compiles and cubecl autotunes on first use: generous timeouts.
  for k in 1 0; do
    RMD_KERNELS=$k timeout 200 ./gpu-dist/kernels_cuda --test-threads=1 --nocapture > "$OUT/kernels-$k.txt" 2>&1
    echo "== kernels_cuda RMD_KERNELS=$k"; grep -E "^test |rel|max|panicked|test result" "$OUT/kernels-$k.txt" | tail -40
  done
}

step() {
  RMD_KERNELS=1 SHAPE=0.5b LEN=1024 STEPS=5 TORCH=eager BURN_TIMEOUT=150 bash benches/gpu/run.sh > "$OUT/run-0.5b.txt" 2>&1
  grep -E "torch|train_step|score|peak|rc=" "$OUT/run-0.5b.txt"
  RMD_KERNELS=0 timeout 120 ./gpu-dist/gpu_step --shape 0.5b --pairs 8 --len 1024 --steps 5 --warmup 2 2>/dev/null \
    | grep -E "train_step|score" | sed 's/^/default path: /'
}

profile() {
  CONFIGS="RMD_KERNELS=1" TORCH=0 timeout 120 bash tools/cuda/trace/trace.sh > "$OUT/trace.txt" 2>&1
  sed -n '/^segments/,$p' "$OUT/trace-RMD_KERNELS-1.txt" | head -32
  local ncu
  ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  echo "ncu: ${ncu:-none}"
  [ -n "$ncu" ] || return 0
  # Launches 23-26 of flash_fwd|flash_bwd: the last two forward layers, the first two backward.
  RMD_KERNELS=1 timeout 150 "$ncu" --kernel-name regex:flash_fwd\|flash_bwd$ --launch-skip 22 --launch-count 4 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis \
    ./gpu-dist/gpu_step --shape 0.5b --pairs 8 --len 1024 --steps 1 --warmup 0 > "$OUT/ncu.txt" 2>&1
  grep -E "==PROF==|ERR|Duration|Throughput|Warp Cycles|Stall|Achieved Occupancy|Registers|Block Limit" "$OUT/ncu.txt" | head -60
}

for part in ${PARTS:-numerics step}; do "$part"; done
