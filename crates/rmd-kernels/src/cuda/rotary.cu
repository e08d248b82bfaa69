// Rotary position embeddings in HF's rotate_half layout for rm-distiller:
//   y[c] = x[c] cos[c] - x[c + d/2] sin[c],   y[c + d/2] = x[c + d/2] cos[c + d/2] + x[c] sin[c + d/2]
// and its transpose for the backward (cos, sin are constants):
//   dx[c] = g[c] cos[c] + g[c + d/2] sin[c + d/2],   dx[c + d/2] = g[c + d/2] cos[c + d/2] - g[c] sin[c].
// burn's version (two slices, a negation, a concatenation, two products) cost ~0.6 ms per layer
// at Qwen2.5-0.5B's training shape; this is one bandwidth-bound pass each way.
//
// x, y: [rows, heads, L, d] bf16 through (row, head, position) element strides with d contiguous
// (the model's [rows, L, heads, d] projections read in place); cos, sin: [rows, 1, L, d] f32
// through (row, position) strides, rounded to bf16 before use as transformers does under bf16
// compute. One thread per two adjacent column pairs (c, c + 1) and (c + d/2, c + d/2 + 1).
#include "common.cuh"

__device__ float table(const float* t, long long o) { return __bfloat162float(__float2bfloat16(t[o])); }

extern "C" __global__ void rotary(const bf* __restrict__ x, Strides xs, const float* __restrict__ cos_t, const float* __restrict__ sin_t,
                                  long long ts_r, long long ts_p, bf* __restrict__ y, Strides ys, int heads, int L, int d, int backward,
                                  long long n) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= n) return;
    // e enumerates (row, head, position, c / 2) with c < d / 2 even.
    const int quarter = d / 4;
    const int c = (int)(e % quarter) * 2, half = d / 2;
    long long t = e / quarter;
    const int i = (int)(t % L);
    t /= L;
    const int h = (int)(t % heads), r = (int)(t / heads);
    const bf2 a = *reinterpret_cast<const bf2*>(x + xs.at(r, h, i) + c);
    const bf2 b = *reinterpret_cast<const bf2*>(x + xs.at(r, h, i) + c + half);
    const long long to = r * ts_r + i * ts_p + c;
    const float a0 = __bfloat162float(a.x), a1 = __bfloat162float(a.y), b0 = __bfloat162float(b.x), b1 = __bfloat162float(b.y);
    const float cl0 = table(cos_t, to), cl1 = table(cos_t, to + 1), ch0 = table(cos_t, to + half), ch1 = table(cos_t, to + half + 1);
    const float sl0 = table(sin_t, to), sl1 = table(sin_t, to + 1), sh0 = table(sin_t, to + half), sh1 = table(sin_t, to + half + 1);
    float lo0, lo1, hi0, hi1;
    if (backward) {
        lo0 = a0 * cl0 + b0 * sh0, lo1 = a1 * cl1 + b1 * sh1;
        hi0 = b0 * ch0 - a0 * sl0, hi1 = b1 * ch1 - a1 * sl1;
    } else {
        lo0 = a0 * cl0 - b0 * sl0, lo1 = a1 * cl1 - b1 * sl1;
        hi0 = b0 * ch0 + a0 * sh0, hi1 = b1 * ch1 + a1 * sh1;
    }
    *reinterpret_cast<bf2*>(y + ys.at(r, h, i) + c) = __floats2bfloat162_rn(lo0, lo1);
    *reinterpret_cast<bf2*>(y + ys.at(r, h, i) + c + half) = __floats2bfloat162_rn(hi0, hi1);
}
