// Flash-style attention forward and backward for rm-distiller (bf16 in, f32 softmax state).
//
// Compiled at run time by NVRTC with -DHD=<head dim> (64 or 128). Layouts, all contiguous:
//   Q, O, dO: [rows, heads, L, HD] bf16;  K, V, dK, dV: [rows, kv_heads, L, HD] bf16;
//   LSE, Dv: [rows, heads, L] f32;  dQ: [rows, heads, L, HD] f32 (zeroed by the caller).
// Grouped queries: head h reads kv head h / (heads / kv_heads). The boolean mask (true = masked)
// is read through four element strides (broadcast dims have stride 0), one byte or four per entry.
// Tiles of 64 queries x 64 keys, 4 warps; products on tensor cores (WMMA 16x16x16, f32
// accumulation) from shared memory; a tile whose every entry is masked is skipped, which is
// what halves the work under a causal mask. A row with no visible key gives zeros.
#include <cuda_bf16.h>
#include <mma.h>
using namespace nvcuda;

#ifndef HD
#define HD 64
#endif
#define BR 64
#define BC 64
#define NT 128

// +inf without <math.h> (NVRTC has no host headers).
#define RMD_INF __int_as_float(0x7f800000)

typedef __nv_bfloat16 bf;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> Acc;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf, wmma::row_major> ARow;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf, wmma::col_major> ACol;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf, wmma::row_major> BRow;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf, wmma::col_major> BCol;

struct Mask {
    const unsigned char* p;
    long long s0, s1, s2, s3;
    int elem;
    __device__ bool at(int r, int h, int i, int j) const {
        long long o = r * s0 + h * s1 + i * s2 + j * s3;
        return elem == 4 ? (reinterpret_cast<const unsigned int*>(p)[o] != 0u) : (p[o] != 0);
    }
};

// Rows [row0, row0 + 64) of a [L, HD] bf16 matrix into shared memory, zeros past L.
__device__ void load_tile(bf* dst, const bf* src, int row0, int L) {
    const int vpr = HD / 8;
    for (int idx = threadIdx.x; idx < 64 * vpr; idx += NT) {
        int rr = idx / vpr, cc = idx % vpr;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (row0 + rr < L) v = reinterpret_cast<const uint4*>(src + (long long)(row0 + rr) * HD)[cc];
        reinterpret_cast<uint4*>(dst + rr * HD)[cc] = v;
    }
}

// Whether any (query, key) of the tile is visible; every thread gets the answer.
__device__ bool tile_visible(const Mask& m, int r, int h, int q0, int k0, int L) {
    int any = 0;
    for (int idx = threadIdx.x; idx < BR * BC && !any; idx += NT) {
        int i = q0 + idx / BC, j = k0 + idx % BC;
        if (i < L && j < L && !m.at(r, h, i, j)) any = 1;
    }
    return __syncthreads_or(any) != 0;
}

// out(16 x 64, f32, ld BC) = A(16 x HD rows of a, ld HD) * B^T where B is 64 x HD (ld HD).
__device__ void rows_times_t(float* out, const bf* a, const bf* b) {
    for (int j = 0; j < BC / 16; j++) {
        Acc c;
        wmma::fill_fragment(c, 0.0f);
        for (int kk = 0; kk < HD / 16; kk++) {
            ARow fa;
            BCol fb;
            wmma::load_matrix_sync(fa, a + kk * 16, HD);
            wmma::load_matrix_sync(fb, b + j * 16 * HD + kk * 16, HD);
            wmma::mma_sync(c, fa, fb, c);
        }
        wmma::store_matrix_sync(out + j * 16, c, BC, wmma::mem_row_major);
    }
}

// out(16 x HD, f32, ld HD) (+)= A(16 x 64 rows of a, ld BC) * B where B is 64 x HD (ld HD);
// with `accumulate` the product is added to what `out` holds.
__device__ void rows_times(float* out, const bf* a, const bf* b, bool accumulate) {
    for (int n = 0; n < HD / 16; n++) {
        Acc c;
        if (accumulate) wmma::load_matrix_sync(c, out + n * 16, HD, wmma::mem_row_major);
        else wmma::fill_fragment(c, 0.0f);
        for (int kk = 0; kk < BC / 16; kk++) {
            ARow fa;
            BRow fb;
            wmma::load_matrix_sync(fa, a + kk * 16, BC);
            wmma::load_matrix_sync(fb, b + kk * 16 * HD + n * 16, HD);
            wmma::mma_sync(c, fa, fb, c);
        }
        wmma::store_matrix_sync(out + n * 16, c, HD, wmma::mem_row_major);
    }
}

__device__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

extern "C" __global__ void __launch_bounds__(NT) flash_fwd(
    const bf* __restrict__ Q, const bf* __restrict__ K, const bf* __restrict__ V,
    const unsigned char* mask, long long ms0, long long ms1, long long ms2, long long ms3, int melem,
    bf* __restrict__ O, float* __restrict__ LSE, int heads, int kvh, int L, float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    bf* Qs = reinterpret_cast<bf*>(smem);
    bf* Ks = Qs + BR * HD;
    bf* Vs = Ks + BC * HD;
    float* S = reinterpret_cast<float*>(Vs + BC * HD);
    bf* P = reinterpret_cast<bf*>(S + BR * BC);
    float* Os = reinterpret_cast<float*>(P + BR * BC);
    float* mrow = Os + BR * HD;
    float* lrow = mrow + BR;

    const Mask m{mask, ms0, ms1, ms2, ms3, melem};
    const int r = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * BR;
    const int g = h / (heads / kvh);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const bf* Qb = Q + (long long)(r * heads + h) * L * HD;
    const bf* Kb = K + (long long)(r * kvh + g) * L * HD;
    const bf* Vb = V + (long long)(r * kvh + g) * L * HD;

    load_tile(Qs, Qb, q0, L);
    for (int idx = threadIdx.x; idx < BR * HD; idx += NT) Os[idx] = 0.0f;
    for (int idx = threadIdx.x; idx < BR; idx += NT) {
        mrow[idx] = -RMD_INF;
        lrow[idx] = 0.0f;
    }
    __syncthreads();

    for (int k0 = 0; k0 < L; k0 += BC) {
        if (!tile_visible(m, r, h, q0, k0, L)) continue;
        load_tile(Ks, Kb, k0, L);
        load_tile(Vs, Vb, k0, L);
        __syncthreads();

        float* Sw = S + warp * 16 * BC;
        bf* Pw = P + warp * 16 * BC;
        rows_times_t(Sw, Qs + warp * 16 * HD, Ks);
        __syncwarp();

        // Online softmax over this tile, one row at a time; lanes own columns lane, lane + 32.
        for (int rr = 0; rr < 16; rr++) {
            const int row = warp * 16 + rr, i = q0 + row;
            const float m_old = mrow[row], l_old = lrow[row];
            const int j0 = k0 + lane, j1 = k0 + lane + 32;
            const bool v0 = i < L && j0 < L && !m.at(r, h, i, j0);
            const bool v1 = i < L && j1 < L && !m.at(r, h, i, j1);
            const float s0 = v0 ? Sw[rr * BC + lane] * scale : -RMD_INF;
            const float s1 = v1 ? Sw[rr * BC + lane + 32] * scale : -RMD_INF;
            const float m_new = fmaxf(m_old, warp_max(fmaxf(s0, s1)));
            const float m_use = m_new == -RMD_INF ? 0.0f : m_new;
            const float p0 = v0 ? __expf(s0 - m_use) : 0.0f;
            const float p1 = v1 ? __expf(s1 - m_use) : 0.0f;
            const float sum = warp_sum(p0 + p1);
            const float alpha = m_old == -RMD_INF ? 0.0f : __expf(m_old - m_use);
            Pw[rr * BC + lane] = __float2bfloat16(p0);
            Pw[rr * BC + lane + 32] = __float2bfloat16(p1);
            for (int c = lane; c < HD; c += 32) Os[row * HD + c] *= alpha;
            __syncwarp();
            if (lane == 0) {
                mrow[row] = m_new;
                lrow[row] = l_old * alpha + sum;
            }
            __syncwarp();
        }

        rows_times(Os + warp * 16 * HD, Pw, Vs, true);  // O(rows of this warp) += P V
        __syncthreads();
    }

    for (int rr = 0; rr < 16; rr++) {
        const int row = warp * 16 + rr, i = q0 + row;
        if (i >= L) break;
        const float l = lrow[row];
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        bf* Ob = O + ((long long)(r * heads + h) * L + i) * HD;
        for (int c = lane; c < HD; c += 32) Ob[c] = __float2bfloat16(Os[row * HD + c] * inv);
        if (lane == 0) LSE[(long long)(r * heads + h) * L + i] = l > 0.0f ? mrow[row] + logf(l) : RMD_INF;
    }
}

// Dv[row] = sum_c dO[row, c] * O[row, c], one warp per (row, head, query).
extern "C" __global__ void flash_bwd_prep(const bf* __restrict__ O, const bf* __restrict__ dO, float* __restrict__ Dv, long long n) {
    const long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= n) return;
    float acc = 0.0f;
    for (int c = lane; c < HD; c += 32) acc += __bfloat162float(O[row * HD + c]) * __bfloat162float(dO[row * HD + c]);
    acc = warp_sum(acc);
    if (lane == 0) Dv[row] = acc;
}

// One block per (key tile, kv head, row): loops over the kv head's query heads and query tiles,
// accumulating dK, dV in shared memory; dQ accumulates in global f32 with atomics.
extern "C" __global__ void __launch_bounds__(NT) flash_bwd(
    const bf* __restrict__ Q, const bf* __restrict__ K, const bf* __restrict__ V, const bf* __restrict__ dO,
    const float* __restrict__ LSE, const float* __restrict__ Dv,
    const unsigned char* mask, long long ms0, long long ms1, long long ms2, long long ms3, int melem,
    float* __restrict__ dQ, bf* __restrict__ dK, bf* __restrict__ dV, int heads, int kvh, int L, float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    bf* Ks = reinterpret_cast<bf*>(smem);
    bf* Vs = Ks + BC * HD;
    bf* Qs = Vs + BC * HD;
    bf* dOs = Qs + BR * HD;
    float* S = reinterpret_cast<float*>(dOs + BR * HD);  // scores, then probabilities
    float* dP = S + BR * BC;
    bf* Pb = reinterpret_cast<bf*>(dP + BR * BC);
    bf* dSb = Pb + BR * BC;
    float* dKs = reinterpret_cast<float*>(dSb + BR * BC);
    float* dVs = dKs + BC * HD;
    float* dQs = dVs + BC * HD;
    float* lse_s = dQs + BR * HD;
    float* d_s = lse_s + BR;

    const Mask m{mask, ms0, ms1, ms2, ms3, melem};
    const int r = blockIdx.z, g = blockIdx.y, k0 = blockIdx.x * BC;
    const int n_rep = heads / kvh;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

    load_tile(Ks, K + (long long)(r * kvh + g) * L * HD, k0, L);
    load_tile(Vs, V + (long long)(r * kvh + g) * L * HD, k0, L);
    for (int idx = threadIdx.x; idx < BC * HD; idx += NT) {
        dKs[idx] = 0.0f;
        dVs[idx] = 0.0f;
    }
    __syncthreads();

    for (int hh = 0; hh < n_rep; hh++) {
        const int h = g * n_rep + hh;
        const long long base = (long long)(r * heads + h) * L;
        for (int q0 = 0; q0 < L; q0 += BR) {
            if (!tile_visible(m, r, h, q0, k0, L)) continue;
            load_tile(Qs, Q + base * HD, q0, L);
            load_tile(dOs, dO + base * HD, q0, L);
            for (int idx = threadIdx.x; idx < BR; idx += NT) {
                const int i = q0 + idx;
                lse_s[idx] = i < L ? LSE[base + i] : RMD_INF;
                d_s[idx] = i < L ? Dv[base + i] : 0.0f;
            }
            __syncthreads();

            float* Sw = S + warp * 16 * BC;
            float* dPw = dP + warp * 16 * BC;
            rows_times_t(Sw, Qs + warp * 16 * HD, Ks);    // S = Q K^T
            rows_times_t(dPw, dOs + warp * 16 * HD, Vs);  // dP = dO V^T
            __syncwarp();
            for (int idx = lane; idx < 16 * BC; idx += 32) {
                const int rr = idx / BC, c = idx % BC;
                const int row = warp * 16 + rr, i = q0 + row, j = k0 + c;
                const bool v = i < L && j < L && !m.at(r, h, i, j);
                const float p = v ? __expf(Sw[idx] * scale - lse_s[row]) : 0.0f;
                const float ds = p * (dPw[idx] - d_s[row]) * scale;
                Pb[row * BC + c] = __float2bfloat16(p);
                dSb[row * BC + c] = __float2bfloat16(ds);
            }
            __syncthreads();

            // dV += P^T dO and dK += dS^T Q: (BC x BR)(BR x HD), output tiles spread over warps.
            for (int t = warp; t < (BC / 16) * (HD / 16); t += NT / 32) {
                const int mi = t / (HD / 16), ni = t % (HD / 16);
                Acc cv, ck;
                wmma::load_matrix_sync(cv, dVs + mi * 16 * HD + ni * 16, HD, wmma::mem_row_major);
                wmma::load_matrix_sync(ck, dKs + mi * 16 * HD + ni * 16, HD, wmma::mem_row_major);
                for (int kk = 0; kk < BR / 16; kk++) {
                    ACol fp, fs;
                    BRow fo, fq;
                    wmma::load_matrix_sync(fp, Pb + kk * 16 * BC + mi * 16, BC);
                    wmma::load_matrix_sync(fs, dSb + kk * 16 * BC + mi * 16, BC);
                    wmma::load_matrix_sync(fo, dOs + kk * 16 * HD + ni * 16, HD);
                    wmma::load_matrix_sync(fq, Qs + kk * 16 * HD + ni * 16, HD);
                    wmma::mma_sync(cv, fp, fo, cv);
                    wmma::mma_sync(ck, fs, fq, ck);
                }
                wmma::store_matrix_sync(dVs + mi * 16 * HD + ni * 16, cv, HD, wmma::mem_row_major);
                wmma::store_matrix_sync(dKs + mi * 16 * HD + ni * 16, ck, HD, wmma::mem_row_major);
            }

            rows_times(dQs + warp * 16 * HD, dSb + warp * 16 * BC, Ks, false);  // this warp's rows of dS K
            __syncwarp();
            for (int idx = lane; idx < 16 * HD; idx += 32) {
                const int row = warp * 16 + idx / HD, i = q0 + row;
                if (i < L) atomicAdd(dQ + (base + i) * HD + idx % HD, dQs[warp * 16 * HD + idx]);
            }
            __syncthreads();
        }
    }

    const long long kbase = (long long)(r * kvh + g) * L;
    for (int idx = threadIdx.x; idx < BC * HD; idx += NT) {
        const int j = k0 + idx / HD;
        if (j < L) {
            dK[(kbase + j) * HD + idx % HD] = __float2bfloat16(dKs[idx]);
            dV[(kbase + j) * HD + idx % HD] = __float2bfloat16(dVs[idx]);
        }
    }
}
