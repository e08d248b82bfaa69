// Device helpers every rm-distiller CUDA source shares. nvrtc.rs splices this file in where a
// source says #include "common.cuh" (NVRTC sees one self-contained program); the CPU emulation
// (tools/cuda/emulate) and tools/cuda/check-cuda.sh find it on their include path.
#pragma once
#include <cuda_bf16.h>

typedef __nv_bfloat16 bf;
typedef __nv_bfloat162 bf2;

#define FULL 0xffffffffu

__device__ inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
    return v;
}

// Element strides of a [rows, heads, L, d] operand's first three dims (d contiguous): lets a
// kernel read the model's [rows, L, heads, d] projections in place.
struct Strides {
    long long r, h, p;
    __device__ long long at(int row, int head, int pos) const { return row * r + head * h + pos * p; }
};

__device__ inline float to_float(bf x) { return __bfloat162float(x); }
__device__ inline float to_float(float x) { return x; }
__device__ inline void put(bf* p, float v) { *p = __float2bfloat16(v); }
__device__ inline void put(float* p, float v) { *p = v; }

// Eight bf16 as one 16-byte word.
union Pack8 {
    uint4 u;
    bf h[8];
};

// Eight consecutive values from / to a 16-byte aligned p, as floats.
__device__ inline void load8(const bf* p, float* v) {
    Pack8 k;
    k.u = *reinterpret_cast<const uint4*>(p);
    for (int i = 0; i < 8; i++) v[i] = __bfloat162float(k.h[i]);
}
__device__ inline void load8(const float* p, float* v) {
    const float4* q = reinterpret_cast<const float4*>(p);
    const float4 a = q[0], b = q[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
    v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}
__device__ inline void store8(bf* p, const float* v) {
    Pack8 k;
    for (int i = 0; i < 8; i++) k.h[i] = __float2bfloat16(v[i]);
    *reinterpret_cast<uint4*>(p) = k.u;
}
__device__ inline void store8(float* p, const float* v) {
    float4* q = reinterpret_cast<float4*>(p);
    float4 a, b;
    a.x = v[0], a.y = v[1], a.z = v[2], a.w = v[3];
    b.x = v[4], b.y = v[5], b.z = v[6], b.w = v[7];
    q[0] = a;
    q[1] = b;
}
