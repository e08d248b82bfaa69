// SwiGLU's gating for rm-distiller: out = silu(gate) * up, and its backward in one pass.
//
// Compiled at run time by NVRTC. Every operand is a contiguous array of n elements of one dtype
// (bf16 or f32); arithmetic in f32, results rounded once (to nearest even for bf16). One thread per
// 8 consecutive elements. `vec` (every pointer 16-byte aligned; the caller checks) turns on 16-byte
// loads and stores for whole groups of 8; the last, partial group (n not a multiple of 8) and
// everything without `vec` go element by element.
//
// With s = sigmoid(gate) = 1 / (1 + e^-gate): silu(gate) = gate * s, and
//   d_gate = g * up * s * (1 + gate * (1 - s)) = g * up * (s + silu * (1 - s)),   d_up = g * silu.
// For |gate| large __expf gives inf or 0, so s is exactly 0 or 1 and nothing is NaN (finite inputs).
#include "common.cuh"

__device__ float sigmoid_f32(float x) { return 1.0f / (1.0f + __expf(-x)); }

__device__ float silu_mul(float a, float b) { return a * sigmoid_f32(a) * b; }

// (d_gate, d_up) for gate a, up b, output gradient g.
__device__ void silu_mul_grad(float a, float b, float g, float& da, float& db) {
    const float s = sigmoid_f32(a), silu = a * s;
    da = g * b * (s + silu * (1.0f - s));
    db = g * silu;
}

template <class T>
__device__ void fwd(const T* __restrict__ gate, const T* __restrict__ up, T* __restrict__ out, long long n, int vec) {
    const long long i0 = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i0 >= n) return;
    if (vec && i0 + 8 <= n) {
        float a[8], b[8];
        load8(gate + i0, a);
        load8(up + i0, b);
        for (int i = 0; i < 8; i++) a[i] = silu_mul(a[i], b[i]);
        store8(out + i0, a);
    } else {
        for (long long i = i0; i < i0 + 8 && i < n; i++) put(out + i, silu_mul(to_float(gate[i]), to_float(up[i])));
    }
}

template <class T>
__device__ void bwd(const T* __restrict__ gate, const T* __restrict__ up, const T* __restrict__ grad, T* __restrict__ d_gate, T* __restrict__ d_up, long long n,
                    int vec) {
    const long long i0 = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (i0 >= n) return;
    if (vec && i0 + 8 <= n) {
        float a[8], b[8], g[8];
        load8(gate + i0, a);
        load8(up + i0, b);
        load8(grad + i0, g);
        for (int i = 0; i < 8; i++) silu_mul_grad(a[i], b[i], g[i], a[i], b[i]);
        store8(d_gate + i0, a);
        store8(d_up + i0, b);
    } else {
        for (long long i = i0; i < i0 + 8 && i < n; i++) {
            float da, db;
            silu_mul_grad(to_float(gate[i]), to_float(up[i]), to_float(grad[i]), da, db);
            put(d_gate + i, da);
            put(d_up + i, db);
        }
    }
}

extern "C" __global__ void swiglu_fwd_bf16(const bf* gate, const bf* up, bf* out, long long n, int vec) { fwd(gate, up, out, n, vec); }

extern "C" __global__ void swiglu_fwd_f32(const float* gate, const float* up, float* out, long long n, int vec) { fwd(gate, up, out, n, vec); }

extern "C" __global__ void swiglu_bwd_bf16(const bf* gate, const bf* up, const bf* grad, bf* d_gate, bf* d_up, long long n, int vec) {
    bwd(gate, up, grad, d_gate, d_up, n, vec);
}

extern "C" __global__ void swiglu_bwd_f32(const float* gate, const float* up, const float* grad, float* d_gate, float* d_up, long long n, int vec) {
    bwd(gate, up, grad, d_gate, d_up, n, vec);
}
