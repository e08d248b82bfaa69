#!/usr/bin/env bash
# The whole GPU measurement of the speed issue in one device call (numerics, then speed, 0.5B and
# 1.5B, flash attention on (RMD_FLASH=1) and off, PyTorch eager beside each).
# Binaries: gpu-xz/{gpu_step,kernels_cuda}.xz (benches/gpu/run.sh says how to build them).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
source benches/gpu/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
RMD_FLASH=1 ./gpu-dist/kernels_cuda --test-threads=1 --nocapture 2>&1 | grep -E "rel|^rows|test |panicked|result" > "$OUT/kernels.txt"; tail -30 "$OUT/kernels.txt"
nvidia-smi dmon -s u -d 1 > "$OUT/dmon.txt" 2>&1 & DMON=$!
RMD_FLASH=1 SHAPE=0.5b LEN=1024 STEPS=5 TORCH=eager bash benches/gpu/run.sh > "$OUT/run-0.5b.txt" 2>&1; tail -8 "$OUT/run-0.5b.txt"
kill $DMON
for e in RMD_FLASH=0 "RMD_FLASH=1 RMD_PHASE_SYNC=1" "RMD_FLASH=1 RMD_PROFILE_SKIP_ATTENTION=1"; do
  f=$(echo "$e" | tr ' =' '_-')
  env $e timeout 200 ./gpu-dist/gpu_step --shape 0.5b --pairs 8 --len 1024 --steps 4 --warmup 2 > "$OUT/$f.txt" 2> "$OUT/$f.err"
  echo "$e: $(tr '\n' ' ' < "$OUT/$f.txt")"; tail -1 "$OUT/$f.err"
done
RMD_FLASH=1 SHAPE=1.5b LEN=1024 STEPS=3 TORCH=eager bash benches/gpu/run.sh > "$OUT/run-1.5b.txt" 2>&1; tail -8 "$OUT/run-1.5b.txt"
RMD_FLASH=0 ./gpu-dist/kernels_cuda --test-threads=1 --nocapture grouped 2>&1 | grep -E "rel|^rows|test |panicked|result" > "$OUT/kernels-noflash.txt"; tail -12 "$OUT/kernels-noflash.txt"
