// A CPU stand-in for the CUDA features flash.cu uses, so its index arithmetic, tiling,
// shared-memory carve-up and barriers can be checked without a GPU: every CUDA thread is a
// host thread, blocks run one after another, barriers are std::barrier, and each WMMA fragment
// holds its whole 16x16 tile in every lane (loads and products are computed per lane; stores
// are done by lane 0 between warp barriers). bf16 rounding matches the device (round to
// nearest even). Slow, and meant for tiny shapes only.
#pragma once
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

struct Dim3 {
    unsigned x = 0, y = 0, z = 0;
};
inline thread_local Dim3 threadIdx, blockIdx;
inline Dim3 blockDim, gridDim;

struct BlockCtx {
    std::barrier<>* block;
    std::barrier<>* warps[32];
    unsigned char* smem;
    size_t smem_bytes;
    std::atomic<int> any{0};
    float shfl[1024];
};
inline thread_local BlockCtx* ctx = nullptr;

#define __global__
#define __device__
#define __restrict__
#define __launch_bounds__(n)
#define __align__(n)

inline void __syncthreads() { ctx->block->arrive_and_wait(); }
inline int __syncthreads_or(int v) {
    ctx->block->arrive_and_wait();
    if (threadIdx.x == 0) ctx->any = 0;
    ctx->block->arrive_and_wait();
    if (v) ctx->any = 1;
    ctx->block->arrive_and_wait();
    int r = ctx->any;
    ctx->block->arrive_and_wait();
    return r;
}
inline void __syncwarp() { ctx->warps[threadIdx.x / 32]->arrive_and_wait(); }
inline float __shfl_xor_sync(unsigned, float v, int mask) {
    ctx->shfl[threadIdx.x] = v;
    __syncwarp();
    float r = ctx->shfl[(threadIdx.x & ~31u) | ((threadIdx.x & 31u) ^ (unsigned)mask)];
    __syncwarp();
    return r;
}
inline int __any_sync(unsigned, int v) {
    ctx->shfl[threadIdx.x] = v ? 1.0f : 0.0f;
    __syncwarp();
    int r = 0;
    for (unsigned l = 0; l < 32; l++) r |= ctx->shfl[(threadIdx.x & ~31u) | l] != 0.0f;
    __syncwarp();
    return r;
}
inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline float __expf(float x) { return std::exp(x); }
inline void atomicAdd(float* p, float v) { std::atomic_ref<float>(*p).fetch_add(v); }

struct float4 {
    float x, y, z, w;
};

struct __nv_bfloat16 {
    uint16_t bits;
};
struct __nv_bfloat162 {
    __nv_bfloat16 x, y;
};
inline __nv_bfloat16 __float2bfloat16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return __nv_bfloat16{(uint16_t)(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 b) {
    uint32_t u = (uint32_t)b.bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__float2bfloat16(a), __float2bfloat16(b)}; }
struct uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return {a, b, c, d}; }

// WMMA needs 256-bit aligned tile pointers and a leading dimension that is a multiple of 16
// bytes; checked for shared memory (global tiles here are the partials, aligned by construction
// on the GPU; the host vectors here are not, hence only shared memory).
inline void check_tile(const void* p, unsigned ld, size_t elem) {
    const auto a = reinterpret_cast<uintptr_t>(p), base = reinterpret_cast<uintptr_t>(ctx->smem);
    if (a >= base && a < base + ctx->smem_bytes && ((a - base) % 32 != 0 || (ld * elem) % 16 != 0)) {
        std::fprintf(stderr, "misaligned WMMA tile: smem offset %zu, ld %u\n", (size_t)(a - base), ld);
        std::abort();
    }
}

namespace nvcuda::wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    float v[16][16];  // the whole tile, element (row, col)
};
template <class Use, class T, class Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const __nv_bfloat16* p, unsigned ld) {
    check_tile(p, ld, 2);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            f.v[r][c] = __bfloat162float(std::is_same_v<Layout, row_major> ? p[r * ld + c] : p[r + c * ld]);
}
template <class T>
void load_matrix_sync(fragment<accumulator, 16, 16, 16, T>& f, const float* p, unsigned ld, layout_t) {
    check_tile(p, ld, 4);
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.v[r][c] = p[r * ld + c];
}
template <class T>
void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, T>& f, unsigned ld, layout_t) {
    check_tile(p, ld, 4);
    __syncwarp();
    if (threadIdx.x % 32 == 0)
        for (int r = 0; r < 16; r++)
            for (int c = 0; c < 16; c++) p[r * ld + c] = f.v[r][c];
    __syncwarp();
}
template <class T>
void fill_fragment(fragment<accumulator, 16, 16, 16, T>& f, float x) {
    for (auto& row : f.v)
        for (auto& e : row) e = x;
}
template <class A, class B, class C>
void mma_sync(C& d, const A& a, const B& b, const C& c) {
    float out[16][16];
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 16; n++) {
            float s = c.v[r][n];
            for (int k = 0; k < 16; k++) s += a.v[r][k] * b.v[k][n];
            out[r][n] = s;
        }
    std::memcpy(d.v, out, sizeof out);
}
}  // namespace nvcuda::wmma

// Runs `kernel` over the grid, one block at a time, with `smem_bytes` of shared memory.
inline void launch(Dim3 grid, unsigned threads, size_t smem_bytes, const std::function<void()>& kernel) {
    gridDim = grid;
    blockDim = Dim3{threads, 1, 1};
    // Shared memory starts 128-byte aligned on the device; exactly sized here, so a carve-up
    // larger than the launch's size is an out-of-bounds access (visible under -fsanitize=address).
    unsigned char* smem = static_cast<unsigned char*>(std::aligned_alloc(128, (smem_bytes + 127) / 128 * 128 + 128 * (smem_bytes == 0)));
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                std::barrier<> block((std::ptrdiff_t)threads);
                std::vector<std::barrier<>*> warps;
                BlockCtx c;
                c.block = &block;
                // Poison shared memory: reads of what nobody wrote show up as NaN/garbage.
                std::memset(smem, 0xff, smem_bytes);
                c.smem = smem;
                c.smem_bytes = smem_bytes;
                for (unsigned w = 0; w < threads / 32; w++) c.warps[w] = new std::barrier<>(32);
                std::vector<std::thread> ts;
                for (unsigned t = 0; t < threads; t++)
                    ts.emplace_back([&, t] {
                        threadIdx = Dim3{t, 0, 0};
                        blockIdx = Dim3{x, y, z};
                        ctx = &c;
                        kernel();
                    });
                for (auto& t : ts) t.join();
                for (unsigned w = 0; w < threads / 32; w++) delete c.warps[w];
            }
    std::free(smem);
}
