#!/usr/bin/env bash
# Runs flash.cu's kernels on the CPU (emu.h: host threads for CUDA threads, WMMA tiles as plain
# arrays) against a float64 reference, for head dims 64 and 128 and both mask-read paths.
# Needs g++ with C++20; no GPU. Exit status 0 when every case is within tolerance.
set -euo pipefail
cd "$(dirname "$0")"
W=${W:-/tmp/rmd-flash-emu}; mkdir -p "$W"
sed -e 's|#include <cuda_bf16.h>||' -e 's|#include <mma.h>||' \
    -e 's|extern __shared__ __align__(128) unsigned char smem\[\];|unsigned char* smem = ctx->smem;|' \
    ../../../crates/rmd-kernels/src/cuda/flash.cu > "$W/flash_emu.inc"
status=0
for hd in 64 128; do
  for words in 1 0; do
    g++ -std=c++20 -O2 -pthread -DHD=$hd -DMASK_WORDS=$words -I. -I"$W" check_flash.cpp -o "$W/check_${hd}_${words}"
    echo "MASK_WORDS=$words"; timeout 900 "$W/check_${hd}_${words}" || status=1
  done
done
# embedding.cu: the embedding's weight gradient (check_embedding.cpp).
sed -e 's|#include <cuda_bf16.h>||' ../../../crates/rmd-kernels/src/cuda/embedding.cu > "$W/embedding_emu.inc"
g++ -std=c++20 -O2 -pthread -I. -I"$W" check_embedding.cpp -o "$W/check_embedding"
timeout 300 "$W/check_embedding" || status=1
# swiglu.cu: SwiGLU's gating forward and backward (check_swiglu.cpp).
sed -e 's|#include <cuda_bf16.h>||' ../../../crates/rmd-kernels/src/cuda/swiglu.cu > "$W/swiglu_emu.inc"
g++ -std=c++20 -O2 -fno-strict-aliasing -pthread -I. -I"$W" check_swiglu.cpp -o "$W/check_swiglu"
timeout 300 "$W/check_swiglu" || status=1
# rms_norm.cu: RMSNorm forward and backward (check_rms_norm.cpp), bf16 and f32 weights. The
# kernels pun 16-byte vectors into bf16 lanes as CUDA code does; g++ must not assume otherwise.
sed -e 's|#include <cuda_bf16.h>||' -e 's|extern __shared__ float acc\[\];|float* acc = reinterpret_cast<float*>(ctx->smem);|' \
    ../../../crates/rmd-kernels/src/cuda/rms_norm.cu > "$W/rms_norm_emu.inc"
for g in bf16 f32; do
  g++ -std=c++20 -O2 -fno-strict-aliasing -pthread $([ $g = f32 ] && echo -DGAMMA_F32) -I. -I"$W" check_rms_norm.cpp -o "$W/check_rms_norm_$g"
  timeout 300 "$W/check_rms_norm_$g" || status=1
done
# rotary.cu: rotary embeddings forward and backward on strided projections (check_rotary.cpp).
sed -e 's|#include <cuda_bf16.h>||' ../../../crates/rmd-kernels/src/cuda/rotary.cu > "$W/rotary_emu.inc"
g++ -std=c++20 -O2 -fno-strict-aliasing -pthread -I. -I"$W" check_rotary.cpp -o "$W/check_rotary"
timeout 300 "$W/check_rotary" || status=1
exit $status
