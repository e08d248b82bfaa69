// RMSNorm over the last dim for rm-distiller: y = x / s * gamma, s = sqrt(mean(x^2) + eps), f32
// arithmetic on bf16 activations. burn's op-by-op version costs ~0.25 ms forward and ~1 ms
// backward per call at Qwen2.5-0.5B's training shape (f32 intermediates, a slow row reduction);
// these are one pass each, plus a small column reduction for d gamma.
//
// Layouts (contiguous): x, y, g, dx: [rows, n] bf16; gamma, d gamma: [n] bf16 (GAMMA_F32: f32);
// s: [rows] f32; partials: [ceil(rows / RPB), n] f32. One warp per row; 8-column vectors when
// VEC (n a multiple of 8, buffers 16-byte aligned), single columns otherwise.
#include "common.cuh"

#define NT 128
// Rows per backward block (each block sums its rows' d gamma contributions into one partial row).
#define RPB 64
#ifdef GAMMA_F32
typedef float G;
#else
typedef bf G;
#endif

extern "C" __global__ void __launch_bounds__(NT) rms_fwd(const bf* __restrict__ x, const G* __restrict__ gamma, bf* __restrict__ y,
                                                          float* __restrict__ s_out, long long rows, int n, float eps, int vec) {
    const long long row = (long long)blockIdx.x * (NT / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    const bf* xr = x + row * n;
    bf* yr = y + row * n;
    float ss = 0.0f;
    if (vec) {
        for (int c = lane * 8; c < n; c += 256) {
            float f[8];
            load8(xr + c, f);
#pragma unroll
            for (int e = 0; e < 8; e++) ss += f[e] * f[e];
        }
    } else {
        for (int c = lane; c < n; c += 32) {
            const float f = to_float(xr[c]);
            ss += f * f;
        }
    }
    const float s = sqrtf(warp_sum(ss) / n + eps);
    if (lane == 0) s_out[row] = s;
    if (vec) {
        for (int c = lane * 8; c < n; c += 256) {
            float f[8], w[8];
            load8(xr + c, f);
            load8(gamma + c, w);
#pragma unroll
            for (int e = 0; e < 8; e++) f[e] = f[e] / s * w[e];
            store8(yr + c, f);
        }
    } else {
        for (int c = lane; c < n; c += 32) put(yr + c, to_float(xr[c]) / s * to_float(gamma[c]));
    }
}

// Columns [c, c + 8) of x, g and gamma (the backward reads them twice: for the row's mean, then dx).
__device__ void load_xgw(const bf* xr, const bf* gr, const G* gamma, int c, float* f, float* gg, float* w) {
    load8(xr + c, f);
    load8(gr + c, gg);
    load8(gamma + c, w);
}

// dx = (h - xh * mean(h * xh)) / s with xh = x / s, h = g * gamma; block b adds sum over its
// RPB rows of g * xh into partials[b] (shared-memory accumulation, n floats).
extern "C" __global__ void __launch_bounds__(NT) rms_bwd(const bf* __restrict__ x, const G* __restrict__ gamma, const float* __restrict__ s_in,
                                                          const bf* __restrict__ g, bf* __restrict__ dx, float* __restrict__ partials,
                                                          long long rows, int n, int vec) {
    extern __shared__ float acc[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int c = threadIdx.x; c < n; c += NT) acc[c] = 0.0f;
    __syncthreads();
    const long long row0 = (long long)blockIdx.x * RPB;
    for (int rr = warp; rr < RPB; rr += NT / 32) {
        const long long row = row0 + rr;
        if (row >= rows) break;
        const bf* xr = x + row * n;
        const bf* gr = g + row * n;
        bf* dr = dx + row * n;
        const float s = s_in[row];
        float dot = 0.0f;
        if (vec) {
            for (int c = lane * 8; c < n; c += 256) {
                float f[8], gg[8], w[8];
                load_xgw(xr, gr, gamma, c, f, gg, w);
#pragma unroll
                for (int e = 0; e < 8; e++) {
                    const float xh = f[e] / s;
                    dot += gg[e] * w[e] * xh;
                    atomicAdd(acc + c + e, gg[e] * xh);
                }
            }
        } else {
            for (int c = lane; c < n; c += 32) {
                const float xh = to_float(xr[c]) / s, gg = to_float(gr[c]);
                dot += gg * to_float(gamma[c]) * xh;
                atomicAdd(acc + c, gg * xh);
            }
        }
        const float m = warp_sum(dot) / n;
        if (vec) {
            for (int c = lane * 8; c < n; c += 256) {
                float f[8], gg[8], w[8];
                load_xgw(xr, gr, gamma, c, f, gg, w);
#pragma unroll
                for (int e = 0; e < 8; e++) f[e] = (gg[e] * w[e] - f[e] / s * m) / s;
                store8(dr + c, f);
            }
        } else {
            for (int c = lane; c < n; c += 32) {
                const float xh = to_float(xr[c]) / s;
                put(dr + c, (to_float(gr[c]) * to_float(gamma[c]) - xh * m) / s);
            }
        }
    }
    __syncthreads();
    float* pr = partials + (long long)blockIdx.x * n;
    for (int c = threadIdx.x; c < n; c += NT) pr[c] = acc[c];
}

// d gamma[c] = sum over the partial rows; one thread per column.
extern "C" __global__ void __launch_bounds__(NT) rms_dgamma(const float* __restrict__ partials, G* __restrict__ dgamma, int blocks, int n) {
    const int c = blockIdx.x * NT + threadIdx.x;
    if (c >= n) return;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    int b = 0;
    for (; b + 4 <= blocks; b += 4) {
        a0 += partials[(long long)b * n + c];
        a1 += partials[(long long)(b + 1) * n + c];
        a2 += partials[(long long)(b + 2) * n + c];
        a3 += partials[(long long)(b + 3) * n + c];
    }
    for (; b < blocks; b++) a0 += partials[(long long)b * n + c];
    put(dgamma + c, (a0 + a1) + (a2 + a3));
}
