// Flash-style attention forward and backward for rm-distiller (bf16 in, f32 softmax state).
//
// Compiled at run time by NVRTC with -DHD=<head dim> (64 or 128). Layouts:
//   Q, O, dO, dQ: [rows, heads, L, HD] bf16;  K, V, dK, dV: [rows, kv_heads, L, HD] bf16, each
//   through its own (row, head, position) element strides with HD contiguous: the model's
//   [rows, L, heads, HD] projections are read and written in place, no transposes;
//   LSE, Dv: [rows, heads, L] f32;  dQacc: [rows, heads, L, HD] f32 (zeroed by the caller);
//   dKp, dVp: [rows, heads, Lp, HD] f32 per-query-head partials (Lp = L rounded up to 64).
// Grouped queries: head h reads kv head h / (heads / kv_heads). The boolean mask (true = masked)
// is read through four element strides (broadcast dims have stride 0), one byte or four per entry.
// Tiles of 64 queries x 64 keys, 4 warps of 16 query rows; products on tensor cores (WMMA
// 16x16x16, f32 accumulation) from shared memory, whose rows are padded against bank conflicts.
// Each tile's mask is staged in shared memory once (all loads in flight together); a tile whose
// every entry is masked is skipped, which halves the work under a causal mask. Softmax work is
// spread over the warp: two lanes per query row, 32 keys each. A row with no visible key gives
// zeros.
#include <mma.h>

#include "common.cuh"
using namespace nvcuda;

#ifndef HD
#define HD 64
#endif
#define BR 64
#define BC 64
#define NT 128
#define LDH (HD + 8)  // bf16 [.., HD] tiles
#define LDS (BC + 4)  // f32 [.., BC] tiles
#define LDP (BC + 8)  // bf16 [.., BC] tiles
#define LDO (HD + 4)  // f32 [.., HD] tiles
#define LDM (BC + 4)  // mask bytes
// Dynamic shared memory of flash_fwd and flash_bwd (their carve-ups below; flash.rs has the
// same formulas, the CPU emulation in tools/cuda/emulate launches with these).
#define SMEM_FWD (3 * 64 * LDH * 2 + BR * LDS * 4 + BR * LDP * 2 + BR * LDO * 4 + BR * LDM)
#define SMEM_BWD (4 * 64 * LDH * 2 + 2 * BR * LDS * 4 + 2 * BR * LDP * 2 + BR * LDM + 2 * BR * 4)
// Output tiles of a [BC, HD] product per warp (the backward's dK, dV accumulators).
#define TPW ((BC / 16) * (HD / 16) / (NT / 32))

// +inf without <math.h> (NVRTC has no host headers).
#define RMD_INF __int_as_float(0x7f800000)
// The forward's lazy rescaling threshold (natural-log units, see flash_fwd).
#define LAZY 8.0f

typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> Acc;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf, wmma::row_major> ARow;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf, wmma::col_major> ACol;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf, wmma::row_major> BRow;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf, wmma::col_major> BCol;

struct Mask {
    const unsigned char* p;
    long long s0, s1, s2, s3;
    int elem;
    // Byte entries, keys contiguous, every row start 4-aligned, L a multiple of 4: word loads.
    bool words;
    __device__ bool at(int r, int h, int i, int j) const {
        long long o = r * s0 + h * s1 + i * s2 + j * s3;
        return elem == 4 ? (reinterpret_cast<const unsigned int*>(p)[o] != 0u) : (p[o] != 0);
    }
};

#ifndef MASK_WORDS
#define MASK_WORDS 1
#endif
__device__ bool mask_words(const unsigned char* p, long long s0, long long s1, long long s2, long long s3, int elem, int L) {
    return MASK_WORDS && elem == 1 && s3 == 1 && (s0 % 4) == 0 && (s1 % 4) == 0 && (s2 % 4) == 0 && (L % 4) == 0 &&
           (reinterpret_cast<unsigned long long>(p) % 4) == 0;
}

// Rows [row0, row0 + 64) of an [L, HD] bf16 matrix whose rows are `ld` elements apart into
// shared memory (row stride LDH), zeros past L.
__device__ void load_tile(bf* dst, const bf* src, long long ld, int row0, int L) {
    const int vpr = HD / 8;
    for (int idx = threadIdx.x; idx < 64 * vpr; idx += NT) {
        int rr = idx / vpr, cc = idx % vpr;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (row0 + rr < L) v = reinterpret_cast<const uint4*>(src + (row0 + rr) * ld)[cc];
        reinterpret_cast<uint4*>(dst + rr * LDH)[cc] = v;
    }
}

// The tile's visibility (1 = query q0 + ii may see key k0 + jj) into mk; whether any entry is
// visible, for every thread. Also the barrier after which mk is readable. Every load of a
// thread is issued before any is used; byte masks with 4-aligned rows are read a word at a time.
__device__ bool mask_tile(unsigned char* mk, const Mask& m, int r, int h, int q0, int k0, int L) {
    unsigned int any = 0;
    if (m.words) {
#pragma unroll
        for (int e = 0; e < BR * BC / 4 / NT; e++) {
            const int idx = threadIdx.x + e * NT;
            const int ii = idx / (BC / 4), jj = (idx % (BC / 4)) * 4, i = q0 + ii, j = k0 + jj;
            unsigned int vis = 0u;
            if (i < L && j < L) {
                const unsigned int w = *reinterpret_cast<const unsigned int*>(m.p + (r * m.s0 + h * m.s1 + i * m.s2 + j));
                // One byte per entry, nonzero = masked: visible bytes become 1.
                vis = ((w & 0xffu) == 0u) | (((w >> 8) & 0xffu) == 0u) << 8 | (((w >> 16) & 0xffu) == 0u) << 16 | ((w >> 24) == 0u) << 24;
            }
            *reinterpret_cast<unsigned int*>(mk + ii * LDM + jj) = vis;
            any |= vis;
        }
    } else {
#pragma unroll 8
        for (int e = 0; e < BR * BC / NT; e++) {
            const int idx = threadIdx.x + e * NT;
            const int ii = idx / BC, jj = idx % BC, i = q0 + ii, j = k0 + jj;
            const unsigned int vis = (i < L && j < L && !m.at(r, h, i, j)) ? 1u : 0u;
            mk[ii * LDM + jj] = (unsigned char)vis;
            any |= vis;
        }
    }
    return __syncthreads_or(any != 0u) != 0;
}

// c (16 x BC, f32) = a (16 x HD, as fragments) * b^T where b is BC x HD.
template <int LDB, int LDC>
__device__ void frags_bt(float* c, const ARow* fa, const bf* b) {
#pragma unroll
    for (int j = 0; j < BC / 16; j++) {
        Acc acc;
        wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int kk = 0; kk < HD / 16; kk++) {
            BCol fb;
            wmma::load_matrix_sync(fb, b + j * 16 * LDB + kk * 16, LDB);
            wmma::mma_sync(acc, fa[kk], fb, acc);
        }
        wmma::store_matrix_sync(c + j * 16, acc, LDC, wmma::mem_row_major);
    }
}

// c (16 x BC, f32) = a (16 x HD) * b^T where b is BC x HD.
template <int LDA, int LDB, int LDC>
__device__ void a_bt(float* c, const bf* a, const bf* b) {
    ARow fa[HD / 16];
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) wmma::load_matrix_sync(fa[kk], a + kk * 16, LDA);
    frags_bt<LDB, LDC>(c, fa, b);
}

// a (16 x BC) * b where b is BC x HD, one 16-column output tile at a time: each tile starts
// from `init` (16 x HD f32, row stride LDI; zeros when null) and is handed to emit(n, tile).
template <int LDA, int LDB, int LDI, class Emit>
__device__ void a_b(const bf* a, const bf* b, const float* init, Emit emit) {
    ARow fa[BC / 16];
#pragma unroll
    for (int kk = 0; kk < BC / 16; kk++) wmma::load_matrix_sync(fa[kk], a + kk * 16, LDA);
#pragma unroll
    for (int n = 0; n < HD / 16; n++) {
        Acc acc;
        if (init) wmma::load_matrix_sync(acc, init + n * 16, LDI, wmma::mem_row_major);
        else wmma::fill_fragment(acc, 0.0f);
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) {
            BRow fb;
            wmma::load_matrix_sync(fb, b + kk * 16 * LDB + n * 16, LDB);
            wmma::mma_sync(acc, fa[kk], fb, acc);
        }
        emit(n, acc);
    }
}

extern "C" __global__ void __launch_bounds__(NT) flash_fwd(
    const bf* __restrict__ Q, Strides qs, const bf* __restrict__ K, Strides ks, const bf* __restrict__ V, Strides vs,
    const unsigned char* mask, long long ms0, long long ms1, long long ms2, long long ms3, int melem,
    bf* __restrict__ O, Strides os, float* __restrict__ LSE, int heads, int kvh, int L, float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    bf* Qs = reinterpret_cast<bf*>(smem);
    bf* Ks = Qs + BR * LDH;
    bf* Vs = Ks + BC * LDH;
    float* S = reinterpret_cast<float*>(Vs + BC * LDH);
    bf* P = reinterpret_cast<bf*>(S + BR * LDS);
    float* Os = reinterpret_cast<float*>(P + BR * LDP);
    unsigned char* Mk = reinterpret_cast<unsigned char*>(Os + BR * LDO);

    const Mask m{mask, ms0, ms1, ms2, ms3, melem, mask_words(mask, ms0, ms1, ms2, ms3, melem, L)};
    const int r = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * BR;
    const int g = h / (heads / kvh);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    // This lane's query row and half of the key tile.
    const int half = lane & 1, row = warp * 16 + (lane >> 1), i = q0 + row;
    const bf* Kb = K + ks.at(r, g, 0);
    const bf* Vb = V + vs.at(r, g, 0);

    load_tile(Qs, Q + qs.at(r, h, 0), qs.p, q0, L);
    __syncthreads();
    // This warp's query fragments and output accumulators stay in registers for the whole key loop.
    ARow fq[HD / 16];
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++) wmma::load_matrix_sync(fq[kk], Qs + warp * 16 * LDH + kk * 16, LDH);
    Acc oacc[HD / 16];
#pragma unroll
    for (int n = 0; n < HD / 16; n++) wmma::fill_fragment(oacc[n], 0.0f);
    float* Ow = Os + warp * 16 * LDO;
    float m_run = -RMD_INF, l_run = 0.0f;

    for (int k0 = 0; k0 < L; k0 += BC) {
        if (!mask_tile(Mk, m, r, h, q0, k0, L)) continue;
        load_tile(Ks, Kb, ks.p, k0, L);
        load_tile(Vs, Vb, vs.p, k0, L);
        __syncthreads();

        frags_bt<LDH, LDS>(S + warp * 16 * LDS, fq, Ks);  // S = Q K^T for this warp's 16 rows
        __syncwarp();

        // Online softmax of this row's 64 scores, 32 per lane of the pair. The reference max
        // moves only when a score exceeds it by more than LAZY (p <= e^LAZY stays well inside
        // f32 and bf16), so most tiles leave the accumulators alone.
        const float* srow = S + row * LDS + half * 32;
        const unsigned char* mrow = Mk + row * LDM + half * 32;
        float s[32];
        float mx = -RMD_INF;
#pragma unroll
        for (int c = 0; c < 32; c++) {
            s[c] = mrow[c] ? srow[c] * scale : -RMD_INF;
            mx = fmaxf(mx, s[c]);
        }
        mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 1));
        const float m_new = mx > m_run + LAZY ? mx : m_run;
        const float m_use = m_new == -RMD_INF ? 0.0f : m_new;
        float sum = 0.0f;
        bf2* prow = reinterpret_cast<bf2*>(P + row * LDP + half * 32);
#pragma unroll
        for (int c = 0; c < 32; c += 2) {
            const float p0 = __expf(s[c] - m_use), p1 = __expf(s[c + 1] - m_use);
            sum += p0 + p1;
            prow[c / 2] = __floats2bfloat162_rn(p0, p1);
        }
        sum += __shfl_xor_sync(FULL, sum, 1);
        // O and l are still zero while m_run is -inf: nothing to rescale then.
        const bool moved = m_new != m_run && m_run != -RMD_INF;
        const float alpha = moved ? __expf(m_run - m_use) : 1.0f;
        l_run = l_run * alpha + sum;
        m_run = m_new;
        if (__any_sync(FULL, moved)) {
            // Row scaling through shared memory: accumulator fragments' layouts are opaque.
#pragma unroll
            for (int n = 0; n < HD / 16; n++) wmma::store_matrix_sync(Ow + n * 16, oacc[n], LDO, wmma::mem_row_major);
            __syncwarp();
            float* orow = Ow + (lane >> 1) * LDO + half * (HD / 2);
#pragma unroll
            for (int c = 0; c < HD / 2; c++) orow[c] *= alpha;
            __syncwarp();
#pragma unroll
            for (int n = 0; n < HD / 16; n++) wmma::load_matrix_sync(oacc[n], Ow + n * 16, LDO, wmma::mem_row_major);
        }
        __syncwarp();

        // O += P V
        ARow fp[BC / 16];
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) wmma::load_matrix_sync(fp[kk], P + warp * 16 * LDP + kk * 16, LDP);
#pragma unroll
        for (int n = 0; n < HD / 16; n++) {
#pragma unroll
            for (int kk = 0; kk < BC / 16; kk++) {
                BRow fb;
                wmma::load_matrix_sync(fb, Vs + kk * 16 * LDH + n * 16, LDH);
                wmma::mma_sync(oacc[n], fp[kk], fb, oacc[n]);
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int n = 0; n < HD / 16; n++) wmma::store_matrix_sync(Ow + n * 16, oacc[n], LDO, wmma::mem_row_major);
    __syncwarp();
    if (i < L) {
        const float inv = l_run > 0.0f ? 1.0f / l_run : 0.0f;
        const float* orow = Os + row * LDO + half * (HD / 2);
        bf2* Ob = reinterpret_cast<bf2*>(O + os.at(r, h, i) + half * (HD / 2));
#pragma unroll
        for (int c = 0; c < HD / 2; c += 2) Ob[c / 2] = __floats2bfloat162_rn(orow[c] * inv, orow[c + 1] * inv);
        if (half == 0) LSE[(long long)(r * heads + h) * L + i] = l_run > 0.0f ? m_run + logf(l_run) : RMD_INF;
    }
}

// Dv[(r, h, i)] = sum_c dO[r, h, i, c] * O[r, h, i, c], one warp per (row, head, query).
extern "C" __global__ void flash_bwd_prep(const bf* __restrict__ O, Strides os, const bf* __restrict__ dO, Strides dos,
                                         float* __restrict__ Dv, int heads, int L, long long n) {
    const long long row = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= n) return;
    const int i = (int)(row % L), h = (int)((row / L) % heads), r = (int)(row / L / heads);
    const bf* o = O + os.at(r, h, i);
    const bf* d = dO + dos.at(r, h, i);
    float acc = 0.0f;
    for (int c = lane; c < HD; c += 32) acc += __bfloat162float(o[c]) * __bfloat162float(d[c]);
    acc = warp_sum(acc);
    if (lane == 0) Dv[row] = acc;
}

// One block per (key tile, query head, row): loops over the query tiles, accumulating this
// head's dK, dV for the key tile in registers (written to the f32 partials dKp, dVp; summed over
// each kv head's query heads by flash_bwd_reduce); dQacc accumulates in global f32 with atomics.
extern "C" __global__ void __launch_bounds__(NT) flash_bwd(
    const bf* __restrict__ Q, Strides qs, const bf* __restrict__ K, Strides ks, const bf* __restrict__ V, Strides vs,
    const bf* __restrict__ dO, Strides dos, const float* __restrict__ LSE, const float* __restrict__ Dv,
    const unsigned char* mask, long long ms0, long long ms1, long long ms2, long long ms3, int melem,
    float* __restrict__ dQacc, float* __restrict__ dKp, float* __restrict__ dVp, int heads, int kvh, int L, int Lp, float scale) {
    extern __shared__ __align__(128) unsigned char smem[];
    bf* Ks = reinterpret_cast<bf*>(smem);
    bf* Vs = Ks + BC * LDH;
    bf* Qs = Vs + BC * LDH;
    bf* dOs = Qs + BR * LDH;
    float* S = reinterpret_cast<float*>(dOs + BR * LDH);  // scores; later this warp's dQ staging
    float* dP = S + BR * LDS;
    bf* Pb = reinterpret_cast<bf*>(dP + BR * LDS);
    bf* dSb = Pb + BR * LDP;
    unsigned char* Mk = reinterpret_cast<unsigned char*>(dSb + BR * LDP);
    float* lse_s = reinterpret_cast<float*>(Mk + BR * LDM);
    float* d_s = lse_s + BR;

    const Mask m{mask, ms0, ms1, ms2, ms3, melem, mask_words(mask, ms0, ms1, ms2, ms3, melem, L)};
    const int r = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * BC;
    const int g = h / (heads / kvh);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int half = lane & 1, row = warp * 16 + (lane >> 1);
    const long long base = (long long)(r * heads + h) * L;

    load_tile(Ks, K + ks.at(r, g, 0), ks.p, k0, L);
    load_tile(Vs, V + vs.at(r, g, 0), vs.p, k0, L);
    Acc cv[TPW], ck[TPW];
#pragma unroll
    for (int u = 0; u < TPW; u++) {
        wmma::fill_fragment(cv[u], 0.0f);
        wmma::fill_fragment(ck[u], 0.0f);
    }

    for (int q0 = 0; q0 < L; q0 += BR) {
        if (!mask_tile(Mk, m, r, h, q0, k0, L)) continue;
        load_tile(Qs, Q + qs.at(r, h, 0), qs.p, q0, L);
        load_tile(dOs, dO + dos.at(r, h, 0), dos.p, q0, L);
        for (int idx = threadIdx.x; idx < BR; idx += NT) {
            const int i = q0 + idx;
            lse_s[idx] = i < L ? LSE[base + i] : RMD_INF;
            d_s[idx] = i < L ? Dv[base + i] : 0.0f;
        }
        __syncthreads();

        a_bt<LDH, LDH, LDS>(S + warp * 16 * LDS, Qs + warp * 16 * LDH, Ks);    // S = Q K^T
        a_bt<LDH, LDH, LDS>(dP + warp * 16 * LDS, dOs + warp * 16 * LDH, Vs);  // dP = dO V^T
        __syncwarp();
        {
            const float lse = lse_s[row], dd = d_s[row];
            const float* srow = S + row * LDS + half * 32;
            const float* dprow = dP + row * LDS + half * 32;
            const unsigned char* mrow = Mk + row * LDM + half * 32;
            bf2* prow = reinterpret_cast<bf2*>(Pb + row * LDP + half * 32);
            bf2* dsrow = reinterpret_cast<bf2*>(dSb + row * LDP + half * 32);
#pragma unroll
            for (int c = 0; c < 32; c += 2) {
                const float p0 = mrow[c] ? __expf(srow[c] * scale - lse) : 0.0f;
                const float p1 = mrow[c + 1] ? __expf(srow[c + 1] * scale - lse) : 0.0f;
                prow[c / 2] = __floats2bfloat162_rn(p0, p1);
                dsrow[c / 2] = __floats2bfloat162_rn(p0 * (dprow[c] - dd) * scale, p1 * (dprow[c + 1] - dd) * scale);
            }
        }
        __syncthreads();

        // dV += P^T dO and dK += dS^T Q: (BC x BR)(BR x HD), this warp's output tiles.
#pragma unroll
        for (int u = 0; u < TPW; u++) {
            const int t = warp + u * (NT / 32), mi = t / (HD / 16), ni = t % (HD / 16);
#pragma unroll
            for (int kk = 0; kk < BR / 16; kk++) {
                ACol fp, fs;
                BRow fo, fq;
                wmma::load_matrix_sync(fp, Pb + kk * 16 * LDP + mi * 16, LDP);
                wmma::load_matrix_sync(fo, dOs + kk * 16 * LDH + ni * 16, LDH);
                wmma::mma_sync(cv[u], fp, fo, cv[u]);
                wmma::load_matrix_sync(fs, dSb + kk * 16 * LDP + mi * 16, LDP);
                wmma::load_matrix_sync(fq, Qs + kk * 16 * LDH + ni * 16, LDH);
                wmma::mma_sync(ck[u], fs, fq, ck[u]);
            }
        }

        // dQ (this warp's 16 rows) += dS K, 16 columns at a time staged in this warp's rows of S.
        float* stage = S + warp * 16 * LDS;
        a_b<LDP, LDH, 16>(dSb + warp * 16 * LDP, Ks, nullptr, [&](int n, const Acc& acc) {
            wmma::store_matrix_sync(stage, acc, 16, wmma::mem_row_major);
            __syncwarp();
#pragma unroll
            for (int e = 0; e < 8; e++) {
                const int idx = lane + 32 * e, rr = idx >> 4, cc = idx & 15, i = q0 + warp * 16 + rr;
                if (i < L) atomicAdd(dQacc + (base + i) * HD + n * 16 + cc, stage[idx]);
            }
            __syncwarp();
        });
        __syncthreads();
    }

    const long long pbase = ((long long)(r * heads + h) * Lp + k0) * HD;
#pragma unroll
    for (int u = 0; u < TPW; u++) {
        const int t = warp + u * (NT / 32), mi = t / (HD / 16), ni = t % (HD / 16);
        wmma::store_matrix_sync(dKp + pbase + mi * 16 * HD + ni * 16, ck[u], HD, wmma::mem_row_major);
        wmma::store_matrix_sync(dVp + pbase + mi * 16 * HD + ni * 16, cv[u], HD, wmma::mem_row_major);
    }
}

// dK, dV (bf16, [rows, kv_heads, L, HD] through the strides kvs) = the sums of each kv head's
// query-head partials.
extern "C" __global__ void flash_bwd_reduce(const float* __restrict__ dKp, const float* __restrict__ dVp, bf* __restrict__ dK,
                                            bf* __restrict__ dV, Strides kvs, int heads, int kvh, int L, int Lp, long long n) {
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= n) return;
    const int c = (int)(e % HD);
    long long t = e / HD;
    const int j = (int)(t % L);
    t /= L;
    const int g = (int)(t % kvh);
    const long long r = t / kvh;
    const int n_rep = heads / kvh;
    float sk = 0.0f, sv = 0.0f;
    for (int hh = 0; hh < n_rep; hh++) {
        const long long o = ((r * heads + g * n_rep + hh) * Lp + j) * HD + c;
        sk += dKp[o];
        sv += dVp[o];
    }
    const long long o = kvs.at((int)r, g, j) + c;
    dK[o] = __float2bfloat16(sk);
    dV[o] = __float2bfloat16(sv);
}

// dQ (bf16 through the strides qs) = the f32 accumulator dQacc ([rows, heads, L, HD]), two
// elements per thread.
extern "C" __global__ void flash_bwd_dq(const float* __restrict__ dQacc, bf* __restrict__ dQ, Strides qs, int heads, int L, long long n) {
    const long long e = 2 * ((long long)blockIdx.x * blockDim.x + threadIdx.x);
    if (e >= n) return;
    const int c = (int)(e % HD);
    const long long t = e / HD;
    const int i = (int)(t % L), h = (int)((t / L) % heads), r = (int)(t / L / heads);
    *reinterpret_cast<bf2*>(dQ + qs.at(r, h, i) + c) = __floats2bfloat162_rn(dQacc[e], dQacc[e + 1]);
}
