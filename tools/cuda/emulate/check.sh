#!/usr/bin/env bash
# Runs every CUDA C source of crates/rmd-kernels/src/cuda on the CPU (emu.h: a host thread per
# CUDA thread, WMMA tiles as plain arrays, shared memory poisoned and exactly sized) against
# float64 references (check_<source>.cpp): flash attention for head dims 64 and 128 and both
# mask-read paths, the embedding gradient, SwiGLU, RMSNorm (bf16 and f32 weights), rotary
# embeddings. Needs g++ with C++20; no GPU. Exit status 0 when every case is within tolerance.
set -euo pipefail
cd "$(dirname "$0")"
W=${W:-/tmp/rmd-cuda-emu}; mkdir -p "$W"
K=../../../crates/rmd-kernels/src/cuda
# The sources include common.cuh (from $K) and CUDA headers (empty stubs: emu.h defines what the
# kernels use). The kernels pun 16-byte vectors into bf16 lanes as CUDA code does; g++ must not
# assume otherwise (-fno-strict-aliasing).
CXX=(g++ -std=c++20 -O2 -fno-strict-aliasing -pthread -I. -Istub -I"$K" -I"$W")
# Dynamic shared memory becomes the emulated block's buffer.
for src in flash embedding swiglu rms_norm rotary; do
  sed -e 's|extern __shared__ __align__(128) unsigned char smem\[\];|unsigned char* smem = ctx->smem;|' \
      -e 's|extern __shared__ float acc\[\];|float* acc = reinterpret_cast<float*>(ctx->smem);|' \
      "$K/$src.cu" > "$W/${src}_emu.inc"
done
status=0
for hd in 64 128; do
  for words in 1 0; do
    "${CXX[@]}" -DHD=$hd -DMASK_WORDS=$words check_flash.cpp -o "$W/check_flash_${hd}_${words}"
    echo "MASK_WORDS=$words"; timeout 900 "$W/check_flash_${hd}_${words}" || status=1
  done
done
"${CXX[@]}" check_embedding.cpp -o "$W/check_embedding" && { timeout 300 "$W/check_embedding" || status=1; }
"${CXX[@]}" check_swiglu.cpp -o "$W/check_swiglu" && { timeout 300 "$W/check_swiglu" || status=1; }
for g in bf16 f32; do
  "${CXX[@]}" $([ $g = f32 ] && echo -DGAMMA_F32) check_rms_norm.cpp -o "$W/check_rms_norm_$g"
  timeout 300 "$W/check_rms_norm_$g" || status=1
done
"${CXX[@]}" check_rotary.cpp -o "$W/check_rotary" && { timeout 300 "$W/check_rotary" || status=1; }
exit $status
